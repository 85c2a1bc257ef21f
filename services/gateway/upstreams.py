"""Which gRPC services the gateway fronts, read from the service registry at start.

For every registered service whose package exists (`registry.existing()`), the gateway loads
its generated module `soulkg.<name>.v1.<name>_pb2` and fronts every service that module's
proto file declares, at `Settings.address_of(name)`. A service whose generated module does not
exist yet is skipped (logged), so services land in the gateway by landing their protos and
packages: no gateway code names a service or a route.

Comments for the OpenAPI document come from gen/descriptors/ (each proto file's descriptor
with source info, written by `make protos`): the generated modules carry none.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from google.protobuf import descriptor_pb2
from google.protobuf.descriptor import ServiceDescriptor

from libs import registry
from libs.authz import public_methods
from libs.clients import service_config
from libs.settings import Settings

log = logging.getLogger("soulkg.gateway")

DESCRIPTORS_DIR = Path(__file__).resolve().parents[2] / "gen" / "descriptors"


@dataclass(frozen=True)
class Upstream:
    """One gRPC server behind the gateway and the proto services it serves."""

    name: str  # "crm"
    address: str  # "host:port"
    services: tuple[ServiceDescriptor, ...]
    public_methods: frozenset[str] = frozenset()  # "/package.Service/Method" callable with no token
    service_config: str | None = None  # gRPC service config of its channel (retries of reads)


def generated_module(name: str):
    """`soulkg.<name>.v1.<name>_pb2`, or None when it has not been generated yet."""
    module_name = f"soulkg.{name}.v1.{name}_pb2"
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and (exc.name == module_name or module_name.startswith(exc.name + ".")):
            return None
        raise  # the module exists but is broken: not something to skip quietly


def _public_methods(name: str) -> frozenset[str]:
    try:
        return public_methods(registry.policies(name))
    except ModuleNotFoundError:
        return frozenset()  # no authorization table yet: document every method as needing a token


def discover(settings: Settings) -> list[Upstream]:
    upstreams = []
    for entry in registry.existing():
        module = generated_module(entry.name)
        if module is None:
            log.info("gateway: %s has no generated module yet, skipped", entry.name)
            continue
        services = tuple(module.DESCRIPTOR.services_by_name.values())
        if not services:
            log.info("gateway: %s declares no gRPC service yet, skipped", entry.name)
            continue
        upstreams.append(Upstream(entry.name, settings.address_of(entry.name), services,
                                  _public_methods(entry.name), service_config(entry.name)))
    return upstreams


@dataclass
class Comments:
    """Leading comments of proto elements by full name (`soulkg.crm.v1.Client.phone`; enum
    values as `<enum full name>.<VALUE>`)."""

    by_name: dict[str, str] = field(default_factory=dict)

    @classmethod
    def load(cls, directory: Path = DESCRIPTORS_DIR,
             extra: Iterable[descriptor_pb2.FileDescriptorProto] = ()) -> Comments:
        comments = cls()
        if directory.is_dir():
            for path in sorted(directory.rglob("*.binpb")):
                comments.add(descriptor_pb2.FileDescriptorProto.FromString(path.read_bytes()))
        for file in extra:
            comments.add(file)
        return comments

    def get(self, full_name: str) -> str:
        return self.by_name.get(full_name, "")

    def add(self, file: descriptor_pb2.FileDescriptorProto) -> None:
        texts = {tuple(location.path): _clean(location.leading_comments or location.trailing_comments)
                 for location in file.source_code_info.location
                 if location.leading_comments or location.trailing_comments}
        if not texts:
            return
        prefix = f"{file.package}." if file.package else ""

        def put(name: str, path: tuple[int, ...]) -> None:
            if texts.get(path):
                self.by_name[name] = texts[path]

        def enum(proto, name: str, path: tuple[int, ...]) -> None:
            put(name, path)
            for k, value in enumerate(proto.value):
                put(f"{name}.{value.name}", (*path, 2, k))

        def message(proto, name: str, path: tuple[int, ...]) -> None:
            put(name, path)
            for k, item in enumerate(proto.field):
                put(f"{name}.{item.name}", (*path, 2, k))
            for k, nested in enumerate(proto.nested_type):
                message(nested, f"{name}.{nested.name}", (*path, 3, k))
            for k, nested in enumerate(proto.enum_type):
                enum(nested, f"{name}.{nested.name}", (*path, 4, k))

        for i, proto in enumerate(file.message_type):
            message(proto, prefix + proto.name, (4, i))
        for i, proto in enumerate(file.enum_type):
            enum(proto, prefix + proto.name, (5, i))
        for i, service in enumerate(file.service):
            put(prefix + service.name, (6, i))
            for k, method in enumerate(service.method):
                put(f"{prefix}{service.name}.{method.name}", (6, i, 2, k))


def _clean(comment: str) -> str:
    lines = [line[1:] if line.startswith(" ") else line for line in comment.rstrip().split("\n")]
    return "\n".join(line.rstrip() for line in lines).strip()

