"""The service registry is the one list of services, and every method of every service has a
declared authorization rule (libs/authz.py)."""

from __future__ import annotations

import importlib

import pytest

from libs import registry
from libs.authz import ANY_USER, PUBLIC, SERVICES, method_rules, undeclared

EXISTING = [entry.name for entry in registry.existing()]


def _definition(name: str):
    return importlib.import_module(registry.service(name).module).DEFINITION


def test_registry_names_ports_roles_and_tables_are_unique():
    names = [e.name for e in registry.SERVICES]
    ports = [e.port for e in registry.SERVICES] + [registry.GATEWAY_PORT]
    roles = [e.db_role for e in registry.SERVICES]
    tables = [t for e in registry.SERVICES for t in e.tables]
    for values in (names, ports, roles, tables):
        assert len(values) == len(set(values))
    assert all(e.proto_package == f"soulkg.{e.name}.v1" for e in registry.SERVICES)


@pytest.mark.parametrize("name", EXISTING)
def test_each_service_module_defines_its_registered_server(name):
    definition = _definition(name)
    assert definition.name == name
    assert definition.service_names
    assert all(s.startswith(registry.service(name).proto_package + ".") for s in definition.service_names)


@pytest.mark.parametrize("name", EXISTING)
def test_every_method_of_every_service_has_a_declared_policy(name):
    definition = _definition(name)
    module = importlib.import_module(f"soulkg.{name}.v1.{name}_pb2")
    assert undeclared(definition.policies, [module.DESCRIPTOR]) == []
    declared = set(method_rules(definition.policies))
    real = {f"/{s.full_name}/{m.name}" for s in module.DESCRIPTOR.services_by_name.values() for m in s.methods}
    assert declared == real, "policies name methods that do not exist"


def test_undeclared_finds_a_method_with_no_rule():
    module = importlib.import_module("soulkg.crm.v1.crm_pb2")
    policies = {"soulkg.crm.v1.ClientService": {"GetClient": ANY_USER}}
    missing = undeclared(policies, [module.DESCRIPTOR])
    assert "/soulkg.crm.v1.ClientService/CreateClient" in missing
    assert "/soulkg.crm.v1.ClientService/GetClient" not in missing


def test_rules_combine_roles_and_services():
    from uuid import uuid4

    from libs.tenancy.context import Principal

    def principal(kind: str, subject: str, role: str | None = None) -> Principal:
        return Principal(uuid4(), subject, kind, role, "t", 0)

    rule = ANY_USER | SERVICES("agents")
    assert rule.admits(principal("user", str(uuid4()), "MANAGER"))
    assert rule.admits(principal("service", "service:agents"))
    assert not rule.admits(principal("service", "service:webhook"))
    assert not rule.admits(principal("user", str(uuid4()), "SUPER_ADMIN"))
    assert not rule.admits(None)
    assert PUBLIC.admits(None)


async def test_a_server_with_an_undeclared_method_refuses_to_start(app_db):
    from libs.server.bootstrap import Resources, ServiceDefinition, start_server

    crm = _definition("crm")
    partial = {"soulkg.crm.v1.ClientService": {"GetClient": ANY_USER}}
    definition = ServiceDefinition(name="crm", register=crm.register, policies=partial,
                                   file_descriptors=crm.file_descriptors)
    with pytest.raises(RuntimeError, match="no authorization policy"):
        await start_server(definition, Resources(db=app_db, verifier=None))
