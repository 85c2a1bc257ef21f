"""A test-only gRPC service for the gateway tests: every binding shape the real services do not
use yet (additional bindings, response_body, multi-segment variables, repeated, enum,
timestamp and nested query parameters), a server stream, and failures with any status.

Its proto is compiled at test time (grpc_tools.protoc, with source info for the comments)
and loaded into the default descriptor pool; nothing is generated into the repository.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from google.api import annotations_pb2, field_behavior_pb2  # noqa: F401 - the proto's imports, in the pool
from google.protobuf import (  # noqa: F401 - the proto's imports, in the pool
    any_pb2,
    descriptor_pb2,
    descriptor_pool,
    duration_pb2,
    empty_pb2,
    field_mask_pb2,
    message_factory,
    timestamp_pb2,
    wrappers_pb2,
)
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc import aio
from grpc_status import rpc_status

from libs.authz import ANY_USER, PUBLIC
from libs.server.bootstrap import Resources, ServiceDefinition
from tools.gen_protos import include_paths

PACKAGE = "gatewaytest.v1"
SERVICE = f"{PACKAGE}.EchoService"
PROTO = """
syntax = "proto3";

package gatewaytest.v1;

import "google/api/annotations.proto";
import "google/api/field_behavior.proto";
import "google/protobuf/duration.proto";
import "google/protobuf/empty.proto";
import "google/protobuf/field_mask.proto";
import "google/protobuf/timestamp.proto";
import "google/protobuf/wrappers.proto";

// Echoes what it gets: every binding shape the gateway transcodes.
service EchoService {
  // Returns the request it got.
  rpc Echo(EchoRequest) returns (EchoRequest) {
    option (google.api.http) = {
      get: "/test/echo/{id}"
      additional_bindings {post: "/test/echo/{id}:post" body: "*"}
      additional_bindings {put: "/test/echo/{id}/nested" body: "nested"}
      additional_bindings {patch: "/test/echo/{id}" body: "nested"}
      additional_bindings {get: "/test/{name=shelves/*/books/*}"}
      additional_bindings {get: "/test/echo/{id}/tags" response_body: "tags"}
      additional_bindings {get: "/test/labels/{nested.label}"}
    };
  }

  // Returns what the gateway passed on: metadata and deadline.
  rpc WhoAmI(WhoAmIRequest) returns (Caller) {
    option (google.api.http) = {get: "/test/whoami"};
  }

  // Fails with the status named in the path, with ErrorInfo, BadRequest and RetryInfo.
  rpc Fail(FailRequest) returns (google.protobuf.Empty) {
    option (google.api.http) = {get: "/test/fail/{code}"};
  }

  // Streams `count` events, then ends, fails with `fail`, or holds until cancelled.
  rpc Watch(WatchRequest) returns (stream Event) {
    option (google.api.http) = {get: "/test/watch"};
  }
}

// A color.
enum Color {
  COLOR_UNSPECIFIED = 0;
  // Red.
  COLOR_RED = 1;
  // Blue.
  COLOR_BLUE = 2;
}

// A nested message.
message Nested {
  // A label.
  string label = 1;
  // A level.
  int32 level = 2;
  // Notes.
  repeated string notes = 3;
}

// Every kind of field.
message EchoRequest {
  // The id.
  string id = 1 [(google.api.field_behavior) = REQUIRED];
  // A resource name.
  string name = 2;
  int32 count = 3;
  int64 big = 4;
  bool flag = 5;
  double ratio = 6;
  repeated string tags = 7;
  Color color = 8;
  repeated Color colors = 9;
  google.protobuf.Timestamp when = 10;
  google.protobuf.FieldMask update_mask = 11;
  google.protobuf.Duration wait = 12;
  Nested nested = 13;
  map<string, string> labels = 14;
  google.protobuf.Int32Value maybe = 15;
  bytes blob = 16;
  optional string note = 17;
  // Set by the server.
  string server_note = 18 [(google.api.field_behavior) = OUTPUT_ONLY];
}

message WhoAmIRequest {}

// What reached the service.
message Caller {
  string authorization = 1;
  string request_id = 2;
  // Seconds left of the call's deadline; 0 when it has none.
  double deadline_seconds = 3;
}

message FailRequest {
  // A gRPC status code name, e.g. NOT_FOUND.
  string code = 1;
}

message WatchRequest {
  int32 count = 1;
  bool hold = 2;
  string fail = 3;
}

// One event of a stream.
message Event {
  int32 seq = 1;
  string text = 2;
}
"""


@dataclass
class Echo:
    file: object  # FileDescriptor
    source: descriptor_pb2.FileDescriptorProto
    classes: dict
    watch_cancelled: asyncio.Event = field(default_factory=asyncio.Event)
    watch_started: asyncio.Event = field(default_factory=asyncio.Event)

    def definition(self) -> ServiceDefinition:
        return ServiceDefinition(name="gatewaytest", register=self.register, file_descriptors=[self.file],
                                 policies={SERVICE: {"Echo": PUBLIC, "WhoAmI": PUBLIC, "Fail": PUBLIC,
                                                     "Watch": ANY_USER}})

    def register(self, server: aio.Server, resources: Resources) -> None:
        c = self.classes

        async def echo(request, context):
            reply = c["EchoRequest"]()
            reply.CopyFrom(request)
            reply.server_note = "echoed"
            return reply

        async def who_am_i(request, context):
            metadata = dict(context.invocation_metadata())
            remaining = context.time_remaining()
            return c["Caller"](authorization=metadata.get("authorization", ""),
                               request_id=metadata.get("x-request-id", ""),
                               deadline_seconds=remaining if remaining is not None else 0.0)

        async def fail(request, context):
            details = [error_details_pb2.ErrorInfo(reason="TEST_" + request.code, domain="gatewaytest.soulkg.dev",
                                                   metadata={"code": request.code}),
                       error_details_pb2.BadRequest(field_violations=[
                           error_details_pb2.BadRequest.FieldViolation(field="code", description="as asked")]),
                       error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(seconds=3))]
            packed = []
            for detail in details:
                item = any_pb2.Any()
                item.Pack(detail)
                packed.append(item)
            status = status_pb2.Status(code=getattr(code_pb2, request.code), message=f"failed with {request.code}",
                                       details=packed)
            await context.abort_with_status(rpc_status.to_status(status))

        async def watch(request, context):
            await context.send_initial_metadata(())
            self.watch_started.set()
            for seq in range(request.count):
                yield c["Event"](seq=seq, text=f"event {seq}")
            if request.fail:
                await context.abort(grpc.StatusCode[request.fail], f"stream failed with {request.fail}")
            if request.hold:
                try:
                    await asyncio.Event().wait()
                except asyncio.CancelledError:
                    self.watch_cancelled.set()
                    raise

        def unary(behavior, request: str, reply: str):
            return grpc.unary_unary_rpc_method_handler(behavior, request_deserializer=c[request].FromString,
                                                       response_serializer=c[reply].SerializeToString)

        server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(SERVICE, {
            "Echo": unary(echo, "EchoRequest", "EchoRequest"),
            "WhoAmI": unary(who_am_i, "WhoAmIRequest", "Caller"),
            "Fail": grpc.unary_unary_rpc_method_handler(fail, request_deserializer=c["FailRequest"].FromString,
                                                        response_serializer=empty_pb2.Empty.SerializeToString),
            "Watch": grpc.unary_stream_rpc_method_handler(watch, request_deserializer=c["WatchRequest"].FromString,
                                                          response_serializer=c["Event"].SerializeToString),
        })])


def load() -> Echo:
    """Compile the proto (with source info) and add it to the default descriptor pool."""
    pool = descriptor_pool.Default()
    name = "gatewaytest/v1/echo.proto"
    with tempfile.TemporaryDirectory() as tmp:
        source_dir = Path(tmp) / "src"
        (source_dir / "gatewaytest" / "v1").mkdir(parents=True)
        (source_dir / name).write_text(PROTO)
        out = Path(tmp) / "echo.binpb"
        subprocess.run([sys.executable, "-m", "grpc_tools.protoc", f"--proto_path={source_dir}",
                        *(f"--proto_path={p}" for p in include_paths()), "--include_source_info",
                        f"--descriptor_set_out={out}", name], check=True, cwd=source_dir)
        [source] = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes()).file
    try:
        file = pool.FindFileByName(name)
    except KeyError:
        stripped = descriptor_pb2.FileDescriptorProto()
        stripped.CopyFrom(source)
        stripped.ClearField("source_code_info")
        file = pool.AddSerializedFile(stripped.SerializeToString())
    classes = {message: message_factory.GetMessageClass(file.message_types_by_name[message])
               for message in file.message_types_by_name}
    return Echo(file, source, classes)
