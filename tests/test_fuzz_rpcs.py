"""Every RPC of every service, driven with random and mutated requests: no call may answer
INTERNAL or UNKNOWN. Requests are built from the method's own descriptor (so a new service or
RPC is fuzzed with no change here), as an admin of a real organization and with no token."""

from __future__ import annotations

import importlib
import uuid
from collections import Counter

import grpc
import pytest
from google.protobuf import descriptor as d
from google.protobuf import json_format
from google.protobuf.message_factory import GetMessageClass
from grpc import aio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from libs import registry
from tests.identity_helpers import sign_up

FORBIDDEN = {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN}
# Reasonable shapes first, then anything: most calls should reach the service's own checks.
TEXT = st.one_of(st.just(""), st.uuids().map(str), st.sampled_from(["+996555123456", "+1 415 555 0100",
                                                                   "a@b.example", "ru", "*", "true"]),
                 st.text(max_size=40), st.text(alphabet=st.characters(codec="utf-8"), max_size=300))
JSON = st.recursive(st.none() | st.booleans() | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=20),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
                    max_leaves=8)


def _methods() -> list[tuple[str, d.MethodDescriptor]]:
    found = []
    for entry in registry.existing():
        module = importlib.import_module(f"soulkg.{entry.name}.v1.{entry.name}_pb2")
        for service in module.DESCRIPTOR.services_by_name.values():
            for method in service.methods:
                if not method.client_streaming:
                    found.append((entry.name, method))
    return found


METHODS = _methods()


def _scalar(field: d.FieldDescriptor) -> st.SearchStrategy:
    t = field.type
    if t == d.FieldDescriptor.TYPE_STRING:
        return TEXT
    if t == d.FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    if t == d.FieldDescriptor.TYPE_ENUM:
        numbers = [v.number for v in field.enum_type.values]
        return st.one_of(st.sampled_from(numbers), st.integers(-3, 40))
    if t in (d.FieldDescriptor.TYPE_INT32, d.FieldDescriptor.TYPE_SINT32, d.FieldDescriptor.TYPE_SFIXED32):
        return st.one_of(st.integers(-5, 2000), st.integers(-2**31, 2**31 - 1))
    if t in (d.FieldDescriptor.TYPE_UINT32, d.FieldDescriptor.TYPE_FIXED32):
        return st.integers(0, 2**32 - 1)
    if t in (d.FieldDescriptor.TYPE_INT64, d.FieldDescriptor.TYPE_SINT64, d.FieldDescriptor.TYPE_SFIXED64):
        return st.integers(-2**63, 2**63 - 1)
    if t in (d.FieldDescriptor.TYPE_UINT64, d.FieldDescriptor.TYPE_FIXED64):
        return st.integers(0, 2**64 - 1)
    if t in (d.FieldDescriptor.TYPE_DOUBLE, d.FieldDescriptor.TYPE_FLOAT):
        return st.floats(allow_nan=True, allow_infinity=True, width=32 if t == d.FieldDescriptor.TYPE_FLOAT else 64)
    if t == d.FieldDescriptor.TYPE_BYTES:
        return st.binary(max_size=40)
    raise AssertionError(field.full_name)


@st.composite
def message(draw, descriptor: d.Descriptor, depth: int = 0):
    cls = GetMessageClass(descriptor)
    name = descriptor.full_name
    if name == "google.protobuf.Struct":
        struct = cls()
        struct.update(draw(st.dictionaries(st.text(max_size=10), JSON, max_size=4)))
        return struct
    if name == "google.protobuf.Value":
        value = cls()
        json_format.ParseDict(draw(JSON), value)
        return value
    if name == "google.protobuf.FieldMask":
        return cls(paths=draw(st.lists(st.one_of(TEXT, st.sampled_from(["phone", "email", "first_name", "name",
                                                                        "status", "role", "is_active", "*"])),
                                       max_size=3)))
    if name == "google.protobuf.Timestamp":
        return cls(seconds=draw(st.integers(-62135596800, 253402300799)), nanos=draw(st.integers(0, 999_999_999)))
    result = cls()
    for field in descriptor.fields:
        if not draw(st.booleans()):
            continue
        if field.type == d.FieldDescriptor.TYPE_MESSAGE:
            if depth >= 3:
                continue
            if field.message_type.GetOptions().map_entry:
                continue
            if field.is_repeated:
                for item in draw(st.lists(message(field.message_type, depth + 1), max_size=2)):
                    getattr(result, field.name).add().CopyFrom(item)
            else:
                getattr(result, field.name).CopyFrom(draw(message(field.message_type, depth + 1)))
        elif field.is_repeated:
            getattr(result, field.name).extend(draw(st.lists(_scalar(field), max_size=3)))
        else:
            try:
                setattr(result, field.name, draw(_scalar(field)))
            except (ValueError, TypeError):
                pass  # e.g. a float out of range for a float field: leave it unset
    return result


@pytest.fixture(scope="module")
async def channels(stack):
    opened = {name: aio.insecure_channel(f"127.0.0.1:{port}") for name, port in stack.items()}
    yield opened
    for channel in opened.values():
        await channel.close()


@pytest.fixture(scope="module")
async def admin(identity_channel):
    return await sign_up(identity_channel, "fuzz")


async def _call(channel: aio.Channel, method: d.MethodDescriptor, request, metadata) -> grpc.StatusCode:
    path = f"/{method.containing_service.full_name}/{method.name}"
    response_class = GetMessageClass(method.output_type)
    try:
        if method.server_streaming:
            call = channel.unary_stream(path, response_deserializer=response_class.FromString)(
                request.SerializeToString(), metadata=metadata, timeout=0.5)
            async for _ in call:
                break
            call.cancel()
        else:
            await channel.unary_unary(path, response_deserializer=response_class.FromString)(
                request.SerializeToString(), metadata=metadata, timeout=5)
    except aio.AioRpcError as error:
        if method.server_streaming and error.code() in (grpc.StatusCode.DEADLINE_EXCEEDED,
                                                        grpc.StatusCode.CANCELLED):
            return grpc.StatusCode.OK  # a live stream that simply had nothing to say
        return error.code()
    return grpc.StatusCode.OK


OUTCOMES: Counter = Counter()


IDS = [f"{s}.{m.name}" for s, m in METHODS]


@pytest.mark.parametrize(("service", "method"), METHODS, ids=IDS)
@settings(max_examples=30, suppress_health_check=list(HealthCheck), deadline=None)
@given(data=st.data())
async def test_random_requests_never_answer_internal(channels, admin, service, method, data):
    request = data.draw(message(method.input_type), label="request")
    metadata = admin.metadata if data.draw(st.booleans(), label="with token") else None
    code = await _call(channels[service], method, request, metadata)
    OUTCOMES[code.name] += 1
    assert code not in FORBIDDEN, (method.full_name, request)


@pytest.mark.parametrize(("service", "method"), METHODS, ids=IDS)
@settings(max_examples=15, suppress_health_check=list(HealthCheck), deadline=None)
@given(flips=st.lists(st.tuples(st.integers(0, 4096), st.integers(0, 255)), min_size=1, max_size=4),
       cut=st.integers(0, 4096))
async def test_mutated_bytes_never_answer_internal(channels, admin, service, method, flips, cut):
    path = f"/{method.containing_service.full_name}/{method.name}"
    seed = GetMessageClass(method.input_type)()
    for field in method.input_type.fields:  # a plausible request to mutate: ids filled in
        if field.type == d.FieldDescriptor.TYPE_STRING and not field.is_repeated:
            setattr(seed, field.name, str(uuid.UUID(int=cut)))
    data = bytearray(seed.SerializeToString() or b"\x0a\x00")
    for position, value in flips:
        data[position % len(data)] = value
    data = bytes(data[:max(1, cut % (len(data) + 1))])
    channel = channels[service]
    try:
        if method.server_streaming:
            call = channel.unary_stream(path)(data, metadata=admin.metadata, timeout=0.5)
            async for _ in call:
                break
            call.cancel()
        else:
            await channel.unary_unary(path)(data, metadata=admin.metadata, timeout=5)
    except aio.AioRpcError as error:
        assert error.code() not in FORBIDDEN, (method.full_name, data)


@pytest.fixture(scope="module", autouse=True)
def _report_outcomes():
    yield
    print(f"\nfuzzed calls by outcome: {dict(OUTCOMES)}")
