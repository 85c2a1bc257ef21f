"""Calls between services (libs/clients.py) over real servers: a relay server calls the real
crm server with the caller's token and deadline, and crm's errors come back as the relay's
own, with their code, reason and field violations but not crm's message text."""

from __future__ import annotations

import json

import grpc
import pytest
from grpc import aio

from libs import clients as service_clients
from libs.authz import ANY_USER
from libs.server.bootstrap import Resources, ServiceDefinition, start_server
from libs.settings import Settings
from libs.tenancy.tokens import TokenVerifier, load_public_keys
from soulkg.crm.v1 import crm_pb2, crm_pb2_grpc
from tests.helpers import error_info, field_violations
from tests.identity_helpers import sign_up

RELAY = "soulkg.test.v1.RelayService"


def _register(server: aio.Server, resources: Resources) -> None:
    crm = resources.clients.stub("crm", crm_pb2_grpc.ClientServiceStub)

    async def get_client(request: bytes, context) -> bytes:
        body = json.loads(request)
        client = await service_clients.call("crm", crm.GetClient(crm_pb2.GetClientRequest(id=body["id"])))
        return json.dumps({"id": client.id, "phone": client.phone}).encode()

    server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(
        RELAY, {"GetClient": grpc.unary_unary_rpc_method_handler(get_client)})])


@pytest.fixture(scope="module")
async def relay(app_db, keys_dir):
    from services.crm.server import DEFINITION as CRM

    verifier = TokenVerifier(load_public_keys(keys_dir))
    crm = await start_server(CRM, Resources(db=app_db, verifier=verifier))
    settings = Settings(service_addresses={"crm": f"127.0.0.1:{crm.port}"}, default_call_timeout_seconds=5)
    definition = ServiceDefinition(name="relay", register=_register, extra_service_names=[RELAY],
                                   policies={RELAY: {"GetClient": ANY_USER}})
    resources = Resources(db=app_db, verifier=verifier, settings=settings)
    running = await start_server(definition, resources)
    channel = aio.insecure_channel(f"127.0.0.1:{running.port}")
    channel.crm_port = crm.port
    yield channel
    await channel.close()
    await resources.clients.close()
    await running.stop(0)
    await crm.stop(0)


async def _relay(channel, account, body: dict, timeout: float = 5) -> dict:
    reply = await channel.unary_unary(f"/{RELAY}/GetClient")(json.dumps(body).encode(), metadata=account.metadata,
                                                             timeout=timeout)
    return json.loads(reply)


async def test_the_call_carries_the_callers_organization(relay, identity_channel):
    a = await sign_up(identity_channel, "relay-a")
    b = await sign_up(identity_channel, "relay-b")
    async with aio.insecure_channel(f"127.0.0.1:{relay.crm_port}") as crm_channel:
        created = await crm_pb2_grpc.ClientServiceStub(crm_channel).CreateClient(
            crm_pb2.CreateClientRequest(client=crm_pb2.Client(phone="+996555770001")), metadata=a.metadata)
    assert (await _relay(relay, a, {"id": created.id}))["phone"] == "+996555770001"
    with pytest.raises(aio.AioRpcError) as caught:  # B's token reaches crm as B: A's client does not exist
        await _relay(relay, b, {"id": created.id})
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    info = error_info(caught.value)
    assert info.domain == "soulkg.dev" and info.metadata["service"] == "crm"  # the relay's error, crm's reason
    assert info.reason.endswith("NOT_FOUND")


async def _stand_in_crm(app_db, keys_dir):
    """A server answering crm's GetClient with what reached it: the caller's organization
    and the deadline it was given (crm itself does not echo those)."""
    from libs.tenancy import context as tenancy_context

    async def get_client(request: crm_pb2.GetClientRequest, context) -> crm_pb2.Client:
        principal = tenancy_context.require_principal()
        return crm_pb2.Client(id=str(principal.organization_id), first_name=f"{context.time_remaining():.3f}",
                              last_name=dict(context.invocation_metadata()).get("x-request-id", ""))

    def register(server: aio.Server, resources: Resources) -> None:
        server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(
            "soulkg.crm.v1.ClientService", {"GetClient": grpc.unary_unary_rpc_method_handler(
                get_client, request_deserializer=crm_pb2.GetClientRequest.FromString,
                response_serializer=crm_pb2.Client.SerializeToString)})])

    definition = ServiceDefinition(name="stand-in", register=register,
                                   extra_service_names=["soulkg.crm.v1.ClientService"],
                                   policies={"soulkg.crm.v1.ClientService": {"GetClient": ANY_USER}})
    return await start_server(definition, Resources(db=app_db, verifier=TokenVerifier(load_public_keys(keys_dir))))


async def test_the_call_inherits_the_callers_deadline_organization_and_request_id(app_db, keys_dir,
                                                                               identity_channel):
    stand_in = await _stand_in_crm(app_db, keys_dir)
    settings = Settings(service_addresses={"crm": f"127.0.0.1:{stand_in.port}"}, default_call_timeout_seconds=30)
    captured = {}

    async def forward(request: bytes, context) -> bytes:
        crm = resources.clients.stub("crm", crm_pb2_grpc.ClientServiceStub)
        client = await service_clients.call("crm", crm.GetClient(crm_pb2.GetClientRequest(id="x")))
        captured.update(org=client.id, remaining=float(client.first_name), request_id=client.last_name)
        return b""

    def register(server: aio.Server, _resources: Resources) -> None:
        server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(
            RELAY, {"Forward": grpc.unary_unary_rpc_method_handler(forward)})])

    definition = ServiceDefinition(name="relay", register=register, extra_service_names=[RELAY],
                                   policies={RELAY: {"Forward": ANY_USER}})
    resources = Resources(db=app_db, verifier=TokenVerifier(load_public_keys(keys_dir)), settings=settings)
    running = await start_server(definition, resources)
    a = await sign_up(identity_channel, "relay-deadline")
    try:
        async with aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            await channel.unary_unary(f"/{RELAY}/Forward")(b"", timeout=2, metadata=[
                *a.metadata, ("x-request-id", "req-123")])
            assert captured["org"] == a.organization.id
            assert 0 < captured["remaining"] <= 2.1  # the caller's 2 s (the wire rounds up), not 30 s
            assert captured["request_id"] == "req-123"
            await channel.unary_unary(f"/{RELAY}/Forward")(b"", metadata=a.metadata)  # no caller deadline
            assert 10 < captured["remaining"] <= 30.1  # the settings' default call timeout
    finally:
        await resources.clients.close()
        await running.stop(0)
        await stand_in.stop(0)


async def test_invalid_input_comes_back_with_the_field_violations_but_not_the_text(relay, identity_channel):
    a = await sign_up(identity_channel, "relay-bad")
    with pytest.raises(aio.AioRpcError) as caught:
        await _relay(relay, a, {"id": "not-a-uuid"})
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(field_violations(caught.value)) == {"id"}
    assert caught.value.details() == "crm rejected the request as invalid"


def test_only_idempotent_reads_are_retried():
    config = json.loads(service_clients.service_config("crm"))
    [method_config] = config["methodConfig"]
    retried = {name["method"] for name in method_config["name"]}
    assert {"GetClient", "ListClients", "FindClientByPhone"} <= retried
    assert not retried & {"CreateClient", "UpdateClient", "DeleteClient", "ChangeClientStatus"}
    assert method_config["retryPolicy"]["retryableStatusCodes"] == ["UNAVAILABLE"]


async def test_an_unavailable_service_is_unavailable_not_internal(app_db, keys_dir, identity_channel):
    """crm is not listening: the relay answers UNAVAILABLE (retryable), not INTERNAL."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead_port = sock.getsockname()[1]
    settings = Settings(service_addresses={"crm": f"127.0.0.1:{dead_port}"}, default_call_timeout_seconds=2)
    definition = ServiceDefinition(name="relay", register=_register, extra_service_names=[RELAY],
                                   policies={RELAY: {"GetClient": ANY_USER}})
    resources = Resources(db=app_db, verifier=TokenVerifier(load_public_keys(keys_dir)), settings=settings)
    running = await start_server(definition, resources)
    a = await sign_up(identity_channel, "relay-dead")
    try:
        async with aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            with pytest.raises(aio.AioRpcError) as caught:
                await _relay(channel, a, {"id": "00000000-0000-0000-0000-000000000000"})
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        await resources.clients.close()
        await running.stop(0)
