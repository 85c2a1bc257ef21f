"""TLS from settings: a server with a certificate and a client CA accepts only callers that
present a certificate that CA signed (mTLS between services), and libs/clients.py calls it
with the settings' CA and client certificate. make run stays plaintext (no TLS settings)."""

from __future__ import annotations

import datetime
import ipaddress
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from grpc import aio
from grpc_health.v1 import health_pb2, health_pb2_grpc

from libs import clients as service_clients
from libs.server.bootstrap import Resources, start_server
from libs.settings import Settings
from libs.tenancy.tokens import TokenVerifier, load_public_keys
from soulkg.crm.v1 import crm_pb2, crm_pb2_grpc
from tests.identity_helpers import sign_up


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _issue(directory: Path, label: str, subject: str, issuer_key, issuer_name, *, ca: bool = False,
           usage=None) -> tuple:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    builder = (x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(issuer_name or _name(subject))
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=1)).not_valid_after(now + datetime.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if not ca:
        builder = builder.add_extension(x509.SubjectAlternativeName(
            [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    cert = builder.sign(issuer_key or key, hashes.SHA256())
    (directory / f"{label}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (directory / f"{label}.key").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return key, cert


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("pki")
    ca_key, ca_cert = _issue(directory, "ca", "soulkg test CA", None, None, ca=True)
    _issue(directory, "server", "crm", ca_key, ca_cert.subject, usage=ExtendedKeyUsageOID.SERVER_AUTH)
    _issue(directory, "client", "messaging", ca_key, ca_cert.subject, usage=ExtendedKeyUsageOID.CLIENT_AUTH)
    other_key, other_cert = _issue(directory, "other-ca", "someone else", None, None, ca=True)
    _issue(directory, "stranger", "stranger", other_key, other_cert.subject, usage=ExtendedKeyUsageOID.CLIENT_AUTH)
    return directory


@pytest.fixture(scope="module")
async def tls_crm(pki, service_dbs, keys_dir):
    from services.crm.server import DEFINITION

    settings = Settings(keys_dir=keys_dir, tls_cert_file=pki / "server.pem", tls_key_file=pki / "server.key",
                        tls_client_ca_file=pki / "ca.pem")
    running = await start_server(DEFINITION, Resources(db=service_dbs["crm"],
                                                       verifier=TokenVerifier(load_public_keys(keys_dir)),
                                                       settings=settings))
    yield running.port
    await running.stop(0)


def _credentials(pki: Path, client: str | None, ca: str = "ca") -> grpc.ChannelCredentials:
    return grpc.ssl_channel_credentials(
        root_certificates=(pki / f"{ca}.pem").read_bytes(),
        private_key=(pki / f"{client}.key").read_bytes() if client else None,
        certificate_chain=(pki / f"{client}.pem").read_bytes() if client else None)


async def _health(channel: aio.Channel) -> int:
    reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=3)
    return reply.status


async def test_mtls_admits_a_certificate_the_ca_signed_and_nothing_else(pki, tls_crm):
    async with aio.secure_channel(f"127.0.0.1:{tls_crm}", _credentials(pki, "client")) as channel:
        assert await _health(channel) in (health_pb2.HealthCheckResponse.SERVING,
                                          health_pb2.HealthCheckResponse.NOT_SERVING)
    for credentials in (_credentials(pki, None), _credentials(pki, "stranger")):  # no cert; another CA's
        async with aio.secure_channel(f"127.0.0.1:{tls_crm}", credentials) as channel:
            with pytest.raises(aio.AioRpcError) as caught:
                await _health(channel)
            assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    async with aio.insecure_channel(f"127.0.0.1:{tls_crm}") as channel:  # plaintext
        with pytest.raises(aio.AioRpcError):
            await _health(channel)


async def test_service_clients_call_over_mtls_from_settings(pki, tls_crm, identity_channel, keys_dir):
    account = await sign_up(identity_channel, "tls")
    settings = Settings(service_addresses={"crm": f"localhost:{tls_crm}"}, tls_ca_file=pki / "ca.pem",
                        tls_client_cert_file=pki / "client.pem", tls_client_key_file=pki / "client.key")
    clients = service_clients.ServiceClients(settings)
    try:
        crm = clients.stub("crm", crm_pb2_grpc.ClientServiceStub)
        created = await crm.CreateClient(crm_pb2.CreateClientRequest(client=crm_pb2.Client(phone="+996555880011")),
                                         metadata=account.metadata)
        assert created.phone == "+996555880011"
    finally:
        await clients.close()


def test_make_run_settings_are_plaintext():
    settings = Settings()
    assert settings.server_credentials() is None and settings.channel_credentials() is None


async def test_the_health_probe_speaks_mtls_from_settings(pki, tls_crm):
    import asyncio

    from libs.server.probe import wait_serving

    credentials = Settings(tls_ca_file=pki / "ca.pem", tls_client_cert_file=pki / "client.pem",
                           tls_client_key_file=pki / "client.key").channel_credentials()
    # The probe is blocking code (docker's health check runs it as a process): off the event loop.
    assert await asyncio.to_thread(wait_serving, tls_crm, 10, "localhost", credentials)
    assert not await asyncio.to_thread(wait_serving, tls_crm, 1)  # plaintext gets nowhere
