"""Waiting for a server to report SERVING on grpc.health.v1 (used by make run and bench)."""

from __future__ import annotations

import time

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


def wait_serving(port: int, timeout: float = 60.0, host: str = "127.0.0.1",
                 credentials: grpc.ChannelCredentials | None = None) -> bool:
    """True once the server's overall health is SERVING; False if `timeout` passes first.
    `credentials`: for a server that speaks TLS (with a client certificate for mTLS)."""
    deadline = time.monotonic() + timeout
    target = f"{host}:{port}"
    with (grpc.secure_channel(target, credentials) if credentials else grpc.insecure_channel(target)) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            try:
                reply = stub.Check(health_pb2.HealthCheckRequest(), timeout=1)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return True
            except grpc.RpcError:
                pass
            time.sleep(0.2)
    return False
