"""The gateway over real servers: identity and crm (and a test-only echo service with every
binding shape and a server stream, tests/gateway_echo.py) behind the gateway served by a real
uvicorn on an ephemeral port, called with httpx."""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import socket
import uuid
from dataclasses import dataclass

import httpx
import pytest
import uvicorn
from openapi_spec_validator import OpenAPIV30SpecValidator, OpenAPIV31SpecValidator

from libs import registry
from libs.authz import public_methods
from libs.server.bootstrap import Resources, start_server
from libs.settings import Settings
from libs.tenancy.tokens import TokenVerifier, load_public_keys
from services.gateway import errors as gateway_errors
from services.gateway.app import create_app
from services.gateway.openapi import ERROR_RESPONSES
from services.gateway.routes import AnnotationError, parse_template
from services.gateway.upstreams import Comments, Upstream, discover
from tests import gateway_echo

ORIGIN = "https://app.example"
MAX_BODY = 64 * 1024


@dataclass
class Gateway:
    url: str
    app: object
    echo: gateway_echo.Echo
    settings: Settings


class Uvicorn(uvicorn.Server):
    """uvicorn in the test's event loop, leaving the process's signal handlers alone."""

    @contextlib.contextmanager
    def capture_signals(self):
        yield


@contextlib.asynccontextmanager
async def serve_http(app):
    # IPPROTO_TCP named: asyncio sets TCP_NODELAY only then (else small replies wait ~40 ms on Nagle)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    server = Uvicorn(uvicorn.Config(app, log_config=None, access_log=False, lifespan="on"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:  # noqa: ASYNC110 - uvicorn exposes a flag, not an event
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await task
        sock.close()


@pytest.fixture(scope="module")
async def gateway(stack, app_db, keys_dir):
    """The gateway in front of every registry service of the in-process stack (conftest) and
    of the echo service."""
    echo = gateway_echo.load()
    definition = echo.definition()
    echo_server = await start_server(definition, Resources(
        db=app_db, verifier=TokenVerifier(load_public_keys(keys_dir)), settings=Settings(keys_dir=keys_dir)))
    settings = Settings(service_addresses={name: f"127.0.0.1:{port}" for name, port in stack.items()},
                        gateway_cors_origins=[ORIGIN], gateway_max_body_bytes=MAX_BODY)
    upstreams = [*discover(settings), Upstream(
        "gatewaytest", f"127.0.0.1:{echo_server.port}", tuple(echo.file.services_by_name.values()),
        public_methods(definition.policies))]
    app = create_app(settings, upstreams, Comments.load(extra=[echo.source]))
    try:
        async with serve_http(app) as url:
            yield Gateway(url, app, echo, settings)
    finally:
        await echo_server.stop(0)


@pytest.fixture
async def http(gateway):
    async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as client:
        yield client


@dataclass
class Account:
    slug: str
    email: str
    token: str
    user_id: str

    @property
    def headers(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.token}"}


PASSWORD = "correct horse battery"


async def sign_up(http: httpx.AsyncClient, label: str = "gw") -> Account:
    slug = f"{label}-{secrets.token_hex(4)}"
    email = f"admin@{slug}.example.com"
    reply = await http.post("/v1/auth:signUp", json={"organizationName": f"Org {slug}", "organizationSlug": slug,
                                                     "email": email, "password": PASSWORD, "firstName": "Ada"})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    return Account(slug, email, body["accessToken"], body["user"]["id"])


@pytest.fixture
async def account(http) -> Account:
    return await sign_up(http)


def phone() -> str:
    return "+99655" + str(secrets.randbelow(10**7)).zfill(7)


def details(body: dict, kind: str) -> dict:
    [found] = [d for d in body["details"] if d["@type"] == f"type.googleapis.com/google.rpc.{kind}"]
    return found


# --- discovery and templates -----------------------------------------------------------------

def test_every_registered_service_with_a_generated_module_is_fronted_and_the_others_skipped(monkeypatch):
    ghost = registry.ServiceEntry("ghost", 50099, "soulkg.ghost.v1", "soulkg_ghost", ())
    monkeypatch.setattr(registry, "existing", lambda: [*registry.SERVICES, ghost])
    found = {upstream.name: upstream for upstream in discover(Settings(service_addresses={}, services_host="127.0.0.1"))}
    assert {"identity", "crm"} <= set(found)
    assert "ghost" not in found
    for entry in registry.SERVICES:  # fronted exactly when its soulkg.<name>.v1.<name>_pb2 exists
        from services.gateway.upstreams import generated_module

        assert (entry.name in found) == (generated_module(entry.name) is not None)
    assert found["crm"].address == "127.0.0.1:50052"
    assert "/soulkg.identity.v1.AuthService/Login" in found["identity"].public_methods


def test_templates():
    template = parse_template("/v1/clients/{client.id}:changeStatus")
    assert template.match("/v1/clients/a%2Fb:changeStatus") == {"client.id": "a/b"}
    assert template.match("/v1/clients/a/b:changeStatus") is None
    assert template.openapi_path == "/v1/clients/{client_id}:changeStatus"
    multi = parse_template("/v1/{name=shelves/*/books/*}")
    assert multi.match("/v1/shelves/s1/books/b%201") == {"name": "shelves/s1/books/b 1"}
    assert multi.match("/v1/shelves%2Fs1%2Fbooks%2Fb1") == {"name": "shelves/s1/books/b1"}
    assert multi.match("/v1/shelves/s1") is None
    assert parse_template("/v1/auth:signUp").match("/v1/auth:signUp") == {}
    for bad in ("v1/x", "/v1/{a", "/v1/{a b}", "/v1/x:a:b", "/v1/a b"):
        with pytest.raises(AnnotationError):
            parse_template(bad)


# --- OpenAPI and /docs ---------------------------------------------------------------------

async def test_openapi_document_is_valid_31_and_covers_every_route(http, gateway):
    doc = (await http.get("/openapi.json")).json()
    OpenAPIV31SpecValidator(doc).validate()
    assert doc["openapi"].startswith("3.1")
    operations = {op["x-grpc-method"] for ops in doc["paths"].values() for op in ops.values()}
    routes = gateway.app.state.gateway.routes
    assert operations == {route.rpc_path for route in routes}
    assert len([op for ops in doc["paths"].values() for op in ops.values()]) == len(routes)
    schemas = doc["components"]["schemas"]
    client = schemas["soulkg.crm.v1.Client"]
    assert "E.164" in client["properties"]["phone"]["description"]  # proto comments (gen/descriptors/)
    assert client["required"] == ["phone"]  # field_behavior REQUIRED
    assert client["properties"]["id"]["readOnly"] is True  # OUTPUT_ONLY
    assert client["properties"]["createTime"]["format"] == "date-time"
    assert "CLIENT_STATUS_QUALIFIED" in schemas["soulkg.crm.v1.ClientStatus"]["enum"]
    assert "- `CLIENT_STATUS_NEW_LEAD`: New lead." in schemas["soulkg.crm.v1.ClientStatus"]["description"]
    get_client = doc["paths"]["/v1/clients/{id}"]["get"]
    assert get_client["operationId"] == "ClientService_GetClient"
    assert get_client["summary"].startswith("Returns a client.")
    assert [p["name"] for p in get_client["parameters"]] == ["id"]
    assert set(get_client["responses"]) == {"200", *map(str, ERROR_RESPONSES)} - {"413", "415"}
    assert "security" not in get_client  # the document's default: bearer
    assert doc["paths"]["/v1/auth:login"]["post"]["security"] == []  # public
    list_clients = doc["paths"]["/v1/clients"]["get"]
    assert [p["name"] for p in list_clients["parameters"]] == ["pageSize", "pageToken", "filter", "orderBy"]
    update = doc["paths"]["/v1/clients/{id}"]["patch"]  # {client.id}: one path with GET /v1/clients/{id}
    assert [p["name"] for p in update["parameters"]] == ["id", "updateMask"]
    assert update["parameters"][0]["description"].startswith("`client.id` of the request. Identifier (UUID).")
    assert update["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("soulkg.crm.v1.Client")
    change = doc["paths"]["/v1/clients/{id}:changeStatus"]["post"]["requestBody"]["content"]["application/json"]
    assert "id" not in change["schema"]["properties"] and change["schema"]["required"] == ["status"]
    find = doc["paths"]["/v1/clients:findByPhone"]["get"]["parameters"]
    assert find[0]["name"] == "phone" and find[0]["required"] is True
    assert doc["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    watch = doc["paths"]["/test/watch"]["get"]
    assert "text/event-stream" in watch["responses"]["200"]["content"]
    echo = doc["paths"]["/test/echo/{id}"]["get"]["parameters"]
    assert {"tags", "color", "colors", "when", "nested.label", "nested.notes", "maybe"} <= {p["name"] for p in echo}
    assert "labels" not in {p["name"] for p in echo}  # maps cannot come from a query string
    assert doc["paths"]["/test/echo/{id}/tags"]["get"]["responses"]["200"]["content"]["application/json"][
        "schema"] == {"type": "array", "items": {"type": "string"}}


async def test_docs_are_swagger_ui_with_bundled_assets(http):
    page = await http.get("/docs")
    assert page.status_code == 200 and "/docs/assets/swagger-ui-bundle.js" in page.text
    assert "//cdn" not in page.text and "https://" not in page.text
    script = await http.get("/docs/assets/swagger-ui-bundle.js")
    assert script.status_code == 200 and len(script.content) > 100_000
    assert (await http.get("/docs/assets/swagger-ui.css")).status_code == 200
    assert "/docs/openapi.json" in (await http.get("/docs/init.js")).text
    doc30 = (await http.get("/docs/openapi.json")).json()  # Swagger UI 4 renders 3.0 only
    OpenAPIV30SpecValidator(doc30).validate()
    assert doc30["paths"].keys() == (await http.get("/openapi.json")).json()["paths"].keys()


def test_error_responses_document_every_mapped_status():
    assert set(ERROR_RESPONSES) >= {s for s in gateway_errors.HTTP_STATUS.values() if s >= 400}


# --- the crm session ---------------------------------------------------------------------

async def test_crm_session_over_http(http, account):
    auth = account.headers
    number = phone()
    created = await http.post("/v1/clients", headers=auth, json={
        "phone": number, "firstName": "Aibek", "preferredLanguage": "ru", "culturalContext": {"halal": True}})
    assert created.status_code == 200, created.text
    client = created.json()
    assert client["phone"] == number and client["status"] == "CLIENT_STATUS_NEW_LEAD"
    assert client["culturalContext"] == {"halal": True} and client["createTime"].endswith("Z")
    cid = client["id"]

    fetched = await http.get(f"/v1/clients/{cid}", headers=auth)
    assert fetched.status_code == 200 and fetched.json() == client

    changed = await http.post(f"/v1/clients/{cid}:changeStatus", headers=auth,
                              json={"status": "CLIENT_STATUS_QUALIFIED", "reason": "dates and budget known"})
    assert changed.status_code == 200 and changed.json()["status"] == "CLIENT_STATUS_QUALIFIED"

    history = (await http.get(f"/v1/clients/{cid}/statusHistory", headers=auth, params={"pageSize": 10})).json()
    assert [c["newStatus"] for c in history["changes"]] == ["CLIENT_STATUS_QUALIFIED", "CLIENT_STATUS_NEW_LEAD"]
    assert history["changes"][0]["reason"] == "dates and budget known"
    assert history["nextPageToken"] == ""

    listed = (await http.get("/v1/clients", headers=auth, params={
        "filter": 'status = QUALIFIED AND preferred_language = "ru"', "page_size": 20})).json()  # proto name too
    assert [c["id"] for c in listed["clients"]] == [cid]

    found = await http.get("/v1/clients:findByPhone", headers=auth, params={"phone": number})
    assert found.status_code == 200 and found.json()["id"] == cid

    # body "client", the mask from the query string, in JSON (camel) or proto (snake) form
    updated = await http.patch(f"/v1/clients/{cid}", headers=auth, params={"updateMask": "firstName,email"},
                               json={"firstName": "Aibek-2", "email": "aibek@example.com", "lastName": "ignored"})
    assert updated.status_code == 200, updated.text
    assert updated.json()["firstName"] == "Aibek-2" and "lastName" not in updated.json()
    updated = await http.patch(f"/v1/clients/{cid}", headers=auth, params={"update_mask": "last_name"},
                               json={"last_name": "Uulu"})
    assert updated.json()["lastName"] == "Uulu" and updated.json()["firstName"] == "Aibek-2"
    # no mask: the fields the body names (grpc-gateway's PATCH behaviour)
    updated = await http.patch(f"/v1/clients/{cid}", headers=auth, json={"preferredLanguage": "en"})
    assert updated.status_code == 200 and updated.json()["preferredLanguage"] == "en"
    assert updated.json()["lastName"] == "Uulu"

    got = await http.post("/v1/clients:getOrCreateByPhone", headers=auth, json={"phone": number})
    assert got.json()["created"] is False and got.json()["client"]["id"] == cid
    deleted = await http.delete(f"/v1/clients/{cid}", headers=auth)
    assert deleted.status_code == 200 and deleted.json() == {}
    assert (await http.get(f"/v1/clients/{cid}", headers=auth)).status_code == 404


async def test_identity_over_http(http, account):
    org = await http.get("/v1/organization", headers=account.headers)
    assert org.status_code == 200 and org.json()["slug"] == account.slug
    renamed = await http.patch("/v1/organization", headers=account.headers, json={"name": "Renamed"})
    assert renamed.json()["name"] == "Renamed"
    user = await http.post("/v1/users", headers=account.headers, json={
        "user": {"email": f"bek@{account.slug}.example.com", "firstName": "Bek", "role": "USER_ROLE_MANAGER"},
        "password": "another long one 2"})
    assert user.status_code == 200 and user.json()["role"] == "USER_ROLE_MANAGER"
    users = (await http.get("/v1/users", headers=account.headers)).json()["users"]
    assert {u["email"] for u in users} == {account.email, f"bek@{account.slug}.example.com"}
    keys = await http.get("/v1/auth/publicKeys")  # public: no token
    assert keys.status_code == 200 and keys.json()["keys"][0]["algorithm"] == "EdDSA"


# --- every binding shape (echo) ------------------------------------------------------------

async def test_path_query_and_well_known_types(http):
    reply = await http.get("/test/echo/a%20b", params=[
        ("count", "7"), ("big", "9007199254740993"), ("flag", "true"), ("ratio", "0.25"),
        ("tags", "x"), ("tags", "y"), ("color", "COLOR_RED"), ("colors", "COLOR_BLUE"), ("colors", "1"),
        ("when", "2026-01-02T03:04:05Z"), ("updateMask", "nested.label,first_name"), ("wait", "1.5s"),
        ("nested.label", "L"), ("nested.level", "2"), ("nested.notes", "n1"), ("nested.notes", "n2"),
        ("maybe", "0"), ("blob", "aGk="), ("note", ""), ("name", "shelves/1")])
    assert reply.status_code == 200, reply.text
    assert reply.json() == {
        "id": "a b", "name": "shelves/1", "count": 7, "big": "9007199254740993", "flag": True, "ratio": 0.25,
        "tags": ["x", "y"], "color": "COLOR_RED", "colors": ["COLOR_BLUE", "COLOR_RED"],
        "when": "2026-01-02T03:04:05Z", "updateMask": "nested.label,firstName", "wait": "1.500s",
        "nested": {"label": "L", "level": 2, "notes": ["n1", "n2"]}, "labels": {}, "maybe": 0, "blob": "aGk=",
        "note": "", "serverNote": "echoed"}


async def test_bodies_additional_bindings_and_response_body(http):
    star = await http.post("/test/echo/p1:post", json={"id": "from-body", "count": 3, "labels": {"k": "v"},
                                                       "nested": {"label": "n"}})
    assert star.status_code == 200  # the path wins over the body
    assert star.json()["id"] == "p1" and star.json()["labels"] == {"k": "v"} and star.json()["count"] == 3
    field = await http.put("/test/echo/p2/nested", params={"count": 4}, json={"label": "only-nested", "level": 1})
    assert field.json()["nested"] == {"label": "only-nested", "level": 1, "notes": []} and field.json()["count"] == 4
    tags = await http.get("/test/echo/p3/tags", params=[("tags", "a"), ("tags", "b")])
    assert tags.json() == ["a", "b"]  # response_body: "tags"
    nested_path = await http.get("/test/labels/lab%2Fel")
    assert nested_path.json()["nested"]["label"] == "lab/el"
    multi = await http.get("/test/shelves/s1/books/b2")
    assert multi.json()["name"] == "shelves/s1/books/b2"
    assert (await http.get("/test/shelves/s1")).status_code == 404


async def test_patch_without_a_mask_updates_the_fields_of_the_body(http):
    auto = await http.patch("/test/echo/p4", json={"label": "x", "notes": ["a"]})
    assert auto.json()["updateMask"] == "label,notes"
    given = await http.patch("/test/echo/p4", params={"updateMask": "level"}, json={"label": "x"})
    assert given.json()["updateMask"] == "level"


@pytest.mark.parametrize("params,reason", [
    ({"nope": "1"}, "UNKNOWN_QUERY_PARAMETER"),
    ({"id": "x"}, "UNKNOWN_QUERY_PARAMETER"),  # bound by the path
    ({"labels": "x"}, "INVALID_QUERY_PARAMETER"),  # a map
    ({"nested": "x"}, "INVALID_QUERY_PARAMETER"),  # a message
    ({"count.x": "1"}, "INVALID_QUERY_PARAMETER"),
    ({"flag": "yes"}, "INVALID_QUERY_PARAMETER"),
    ({"count": "seven"}, "INVALID_QUERY_PARAMETER"),
    ({"count": "99999999999"}, "INVALID_QUERY_PARAMETER"),
    ({"color": "PURPLE"}, "INVALID_QUERY_PARAMETER"),
    ({"when": "yesterday"}, "INVALID_QUERY_PARAMETER"),
    ([("count", "1"), ("count", "2")], "INVALID_QUERY_PARAMETER"),
])
async def test_bad_query_parameters_are_400(http, params, reason):
    reply = await http.get("/test/echo/q", params=params)
    assert reply.status_code == 400, reply.text
    body = reply.json()
    assert body["status"] == "INVALID_ARGUMENT" and details(body, "ErrorInfo")["reason"] == reason
    assert details(body, "ErrorInfo")["domain"] == "gateway.soulkg.dev"


@pytest.mark.parametrize("method,path,kwargs,status,reason", [
    ("POST", "/test/echo/x:post", {"content": b"{not json"}, 400, "INVALID_JSON"),
    ("POST", "/test/echo/x:post", {"content": b"\xff\xfe"}, 400, "INVALID_JSON"),
    ("POST", "/test/echo/x:post", {"json": [1, 2]}, 400, "INVALID_BODY"),
    ("POST", "/test/echo/x:post", {"json": {"unknownField": 1}}, 400, "INVALID_BODY"),
    ("POST", "/test/echo/x:post", {"json": {"count": "many"}}, 400, "INVALID_BODY"),
    ("POST", "/test/echo/x:post", {"json": {"count": 1.5}}, 400, "INVALID_BODY"),
    ("POST", "/test/echo/x:post", {"json": {"nested": [1]}}, 400, "INVALID_BODY"),
    ("POST", "/test/echo/x:post", {"json": {"tags": "not-a-list"}}, 400, "INVALID_BODY"),
    ("POST", "/test/echo/x:post", {"json": {"when": 5}}, 400, "INVALID_BODY"),
    ("POST", "/test/echo/x:post", {"json": {}, "params": {"count": "1"}}, 400, "UNKNOWN_QUERY_PARAMETER"),
    ("PUT", "/test/echo/x/nested", {"json": "text"}, 400, "INVALID_BODY"),
    ("POST", "/test/echo/x:post", {"content": b"a=b", "headers": {"content-type": "application/x-www-form-urlencoded"}},
     415, "UNSUPPORTED_MEDIA_TYPE"),
    ("GET", "/v1/nothing-here", {}, 404, "ROUTE_NOT_FOUND"),
    ("GET", "/", {}, 404, "ROUTE_NOT_FOUND"),
    ("GET", "/test/echo/x/y/z", {}, 404, "ROUTE_NOT_FOUND"),
    ("GET", "/test/echo/x", {"headers": {"x-request-timeout": "soon"}}, 400, "INVALID_TIMEOUT"),
    ("GET", "/test/echo/x", {"headers": {"x-request-timeout": "-1"}}, 400, "INVALID_TIMEOUT"),
    ("GET", "/test/echo/x", {"headers": {"grpc-timeout": "5 seconds"}}, 400, "INVALID_TIMEOUT"),
])
async def test_malformed_requests_are_4xx_never_5xx(http, method, path, kwargs, status, reason):
    reply = await http.request(method, path, **kwargs)
    assert reply.status_code == status, reply.text
    assert reply.headers["content-type"] == "application/json"
    assert details(reply.json(), "ErrorInfo")["reason"] == reason
    assert reply.json()["message"]


async def test_wrong_method_is_405_with_allow(http):
    reply = await http.post("/v1/clients/x")
    assert reply.status_code == 405 and reply.headers["allow"] == "GET, PATCH, DELETE"
    assert details(reply.json(), "ErrorInfo")["reason"] == "METHOD_NOT_ALLOWED"


async def test_body_size_limit(http, account):
    big = {"phone": phone(), "metadata": {"blob": "x" * MAX_BODY}}
    reply = await http.post("/v1/clients", headers=account.headers, json=big)
    assert reply.status_code == 413 and details(reply.json(), "ErrorInfo")["reason"] == "BODY_TOO_LARGE"

    async def chunks():  # no content-length: counted while reading
        for _ in range(MAX_BODY // 1024 + 1):
            yield b" " * 1024

    reply = await http.post("/test/echo/x:post", content=chunks(), headers={"content-type": "application/json"})
    assert reply.status_code == 413
    ok = await http.post("/test/echo/x:post", json={"name": "x" * (MAX_BODY // 2)})
    assert ok.status_code == 200


# --- errors ----------------------------------------------------------------------------------

@pytest.mark.parametrize("code,status", [
    ("CANCELLED", 499), ("UNKNOWN", 500), ("INVALID_ARGUMENT", 400), ("DEADLINE_EXCEEDED", 504),
    ("NOT_FOUND", 404), ("ALREADY_EXISTS", 409), ("PERMISSION_DENIED", 403), ("UNAUTHENTICATED", 401),
    ("RESOURCE_EXHAUSTED", 429), ("FAILED_PRECONDITION", 400), ("ABORTED", 409), ("OUT_OF_RANGE", 400),
    ("UNIMPLEMENTED", 501), ("INTERNAL", 500), ("UNAVAILABLE", 503), ("DATA_LOSS", 500),
])
async def test_every_grpc_status_maps_to_its_http_status_with_the_details(http, code, status):
    reply = await http.get(f"/test/fail/{code}")
    assert reply.status_code == status
    body = reply.json()
    assert body["status"] == code and body["message"] == f"failed with {code}"
    assert body["code"] == getattr(__import__("grpc").StatusCode, code).value[0]
    assert details(body, "ErrorInfo") == {"@type": "type.googleapis.com/google.rpc.ErrorInfo",
                                          "reason": f"TEST_{code}", "domain": "gatewaytest.soulkg.dev",
                                          "metadata": {"code": code}}
    assert details(body, "BadRequest")["fieldViolations"] == [{"field": "code", "description": "as asked"}]
    assert details(body, "RetryInfo")["retryDelay"] == "3s"


async def test_real_service_errors(http, account):
    auth = account.headers
    missing = await http.get(f"/v1/clients/{uuid.uuid4()}", headers=auth)
    assert missing.status_code == 404 and details(missing.json(), "ErrorInfo")["domain"] == "crm.soulkg.dev"
    invalid = await http.get("/v1/clients/not-a-uuid", headers=auth)
    assert invalid.status_code == 400
    assert [v["field"] for v in details(invalid.json(), "BadRequest")["fieldViolations"]] == ["id"]
    number = phone()
    assert (await http.post("/v1/clients", headers=auth, json={"phone": number})).status_code == 200
    duplicate = await http.post("/v1/clients", headers=auth, json={"phone": number})
    assert duplicate.status_code == 409 and duplicate.json()["status"] == "ALREADY_EXISTS"
    assert (await http.get("/v1/clients", headers={})).status_code == 401
    bad_token = await http.get("/v1/clients", headers={"authorization": "Bearer nope"})
    assert bad_token.status_code == 401 and bad_token.json()["status"] == "UNAUTHENTICATED"
    latin = await http.get("/v1/clients", headers={"authorization": "Bearer caf\u00e9".encode("latin-1")})
    assert latin.status_code == 401 and details(latin.json(), "ErrorInfo")["reason"] == "MALFORMED_AUTHORIZATION"
    client = (await http.get("/v1/clients:findByPhone", headers=auth, params={"phone": number})).json()
    same = await http.post(f"/v1/clients/{client['id']}:changeStatus", headers=auth,
                           json={"status": "CLIENT_STATUS_NEW_LEAD"})
    assert same.status_code == 400 and same.json()["status"] == "FAILED_PRECONDITION"  # 400, as grpc-gateway
    # a manager may not rename the organization
    await http.post("/v1/users", headers=auth, json={"user": {"email": f"m@{account.slug}.example.com",
                                                              "role": "USER_ROLE_MANAGER"}, "password": PASSWORD})
    login = await http.post("/v1/auth:login", json={"organizationSlug": account.slug, "email":
                                                    f"m@{account.slug}.example.com", "password": PASSWORD})
    manager = {"authorization": f"Bearer {login.json()['accessToken']}"}
    denied = await http.patch("/v1/organization", headers=manager, json={"name": "Mine"})
    assert denied.status_code == 403 and denied.json()["status"] == "PERMISSION_DENIED"
    wrong = await http.post("/v1/auth:login", json={"organizationSlug": account.slug, "email": account.email,
                                                    "password": "wrong password"})
    assert wrong.status_code == 401


async def test_an_unreachable_service_is_503():
    dead = socket.socket()
    dead.bind(("127.0.0.1", 0))
    port = dead.getsockname()[1]
    dead.close()
    settings = Settings(service_addresses={entry.name: f"127.0.0.1:{port}" for entry in registry.SERVICES},
                        default_call_timeout_seconds=2)
    app = create_app(settings)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as client:
        reply = await client.get(f"/v1/clients/{uuid.uuid4()}", headers={"authorization": "Bearer x"})
        assert reply.status_code == 503 and reply.json()["status"] == "UNAVAILABLE"
        health = await client.get("/healthz")
        assert health.status_code == 503
        assert health.json()["status"] == "NOT_SERVING"
        assert set(health.json()["services"].values()) == {"UNAVAILABLE"}
        assert {"identity", "crm"} <= set(health.json()["services"])
    await app.state.gateway.close()


# --- what a call carries ---------------------------------------------------------------------

async def test_authorization_request_id_and_deadline_are_forwarded(http, gateway):
    reply = await http.get("/test/whoami", headers={"authorization": "Bearer abc.def", "x-request-id": "req-42",
                                                    "x-request-timeout": "2.5"})
    caller = reply.json()
    assert caller["authorization"] == "Bearer abc.def" and caller["requestId"] == "req-42"
    assert 0 < caller["deadlineSeconds"] <= 2.6  # the wire rounds up
    assert reply.headers["x-request-id"] == "req-42"

    reply = await http.get("/test/whoami")  # none given: made here, no authorization of the gateway's own
    caller = reply.json()
    assert caller["authorization"] == "" and len(caller["requestId"]) == 16
    assert reply.headers["x-request-id"] == caller["requestId"]
    default = gateway.settings.default_call_timeout_seconds
    assert default - 1 < caller["deadlineSeconds"] <= default + 0.2  # the wire rounds up

    assert 0 < (await http.get("/test/whoami", headers={"grpc-timeout": "1500m"})).json()["deadlineSeconds"] <= 1.6
    capped = (await http.get("/test/whoami", headers={"x-request-timeout": "100000"})).json()["deadlineSeconds"]
    assert gateway.settings.gateway_max_timeout_seconds - 5 < capped <= gateway.settings.gateway_max_timeout_seconds + 0.2
    invalid_id = await http.get("/test/whoami", headers={"x-request-id": "x" * 200})
    assert invalid_id.headers["x-request-id"] != "x" * 200
    assert invalid_id.json()["requestId"] == invalid_id.headers["x-request-id"]
    assert (await http.get("/v1/nowhere", headers={"x-request-id": "r-404"})).headers["x-request-id"] == "r-404"


# --- Server-Sent Events ----------------------------------------------------------------------

async def read_events(response: httpx.Response, stop_after: int | None = None) -> list[tuple[str, dict]]:
    events, name, data = [], "message", None
    async for line in response.aiter_lines():
        if line.startswith("event: "):
            name = line[len("event: "):]
        elif line.startswith("data: "):
            data = json.loads(line[len("data: "):])
        elif line == "" and data is not None:
            events.append((name, data))
            name, data = "message", None
            if stop_after is not None and len(events) >= stop_after:
                break
    return events


async def test_server_stream_as_sse(http, account):
    async with http.stream("GET", "/test/watch", params={"count": 3}, headers=account.headers) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = await read_events(response)
    assert events == [("message", {"seq": 0, "text": "event 0"}), ("message", {"seq": 1, "text": "event 1"}),
                      ("message", {"seq": 2, "text": "event 2"}),
                      ("end", {"code": 0, "status": "OK", "message": "", "details": []})]
    # EventSource sends no headers: the token may come as ?access_token=
    async with http.stream("GET", "/test/watch", params={"count": 1, "access_token": account.token}) as response:
        assert response.status_code == 200
        assert [name for name, _ in await read_events(response)] == ["message", "end"]


async def test_a_stream_refused_before_it_opens_is_an_http_error(http):
    reply = await http.get("/test/watch", params={"count": 1})  # Watch needs a user
    assert reply.status_code == 401 and reply.json()["status"] == "UNAUTHENTICATED"


async def test_a_stream_failing_midway_ends_with_an_error_event(http, account):
    async with http.stream("GET", "/test/watch", params={"count": 1, "fail": "ABORTED"},
                           headers=account.headers) as response:
        events = await read_events(response)
    assert events[0] == ("message", {"seq": 0, "text": "event 0"})
    assert events[1][0] == "error" and events[1][1]["status"] == "ABORTED"
    assert events[1][1]["message"] == "stream failed with ABORTED"


async def test_the_upstream_stream_ends_when_the_browser_goes_away(gateway, account):
    echo = gateway.echo
    echo.watch_cancelled.clear()
    async with httpx.AsyncClient(base_url=gateway.url) as client:
        async with client.stream("GET", "/test/watch", params={"count": 1, "hold": "true"},
                                 headers=account.headers) as response:
            assert await read_events(response, stop_after=1) == [("message", {"seq": 0, "text": "event 0"})]
            assert not echo.watch_cancelled.is_set()
    # the connection is closed: the gateway cancels the call, the service's handler ends
    await asyncio.wait_for(echo.watch_cancelled.wait(), timeout=10)


# --- CORS and health -------------------------------------------------------------------------

async def test_cors_for_configured_origins(http):
    preflight = await http.options("/v1/clients", headers={
        "origin": ORIGIN, "access-control-request-method": "POST",
        "access-control-request-headers": "authorization, content-type, x-request-id"})
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == ORIGIN
    assert "authorization" in preflight.headers["access-control-allow-headers"].lower()
    simple = await http.get("/v1/auth/publicKeys", headers={"origin": ORIGIN})
    assert simple.headers["access-control-allow-origin"] == ORIGIN
    assert "x-request-id" in simple.headers["access-control-expose-headers"].lower()
    other = await http.get("/v1/auth/publicKeys", headers={"origin": "https://evil.example"})
    assert "access-control-allow-origin" not in other.headers
    refused = await http.options("/v1/clients", headers={"origin": "https://evil.example",
                                                         "access-control-request-method": "POST"})
    assert refused.status_code == 400 and "access-control-allow-origin" not in refused.headers


async def test_healthz_reflects_the_upstreams(http, stack):
    for _ in range(100):  # the services turn SERVING once their database answers
        reply = await http.get("/healthz")
        if reply.status_code == 200:
            break
        await asyncio.sleep(0.05)
    assert reply.status_code == 200
    assert reply.json() == {"status": "SERVING",
                            "services": {name: "SERVING" for name in [*stack, "gatewaytest"]}}


# --- the contract: schemathesis over every operation -----------------------------------------

# A budget of cases for the whole run (the API grows; the run must stay short), at least
# MIN_EXAMPLES per operation and generation mode.
CONTRACT_CASES, MIN_EXAMPLES, MAX_EXAMPLES = 1000, 5, 15


def contract_run(document: dict, base_url: str, token: str) -> dict:
    """schemathesis (hypothesis strategies from the OpenAPI document, deterministic) against a
    running gateway: positive and negative cases of every operation, each response checked for
    no 5xx, a documented status, content type and headers, and a body that fits its schema."""
    import requests
    import schemathesis
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis.errors import Unsatisfiable
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        response_headers_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

    checks = [not_a_server_error, status_code_conformance, content_type_conformance,
              response_headers_conformance, response_schema_conformance]
    schema = schemathesis.openapi.from_dict(document)
    operations = sum(len(ops) for ops in document["paths"].values())
    examples = max(MIN_EXAMPLES, min(MAX_EXAMPLES, CONTRACT_CASES // (2 * operations)))
    headers = {"Authorization": f"Bearer {token}"}
    report = {"operations": [], "cases": 0, "failures": []}
    with requests.Session() as session:
        for result in schema.get_all_operations():
            operation = result.ok()
            report["operations"].append(operation.label)
            for mode in (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE):

                @settings(max_examples=examples, derandomize=True, deadline=None, database=None, print_blob=False,
                          phases=[Phase.explicit, Phase.generate, Phase.shrink],
                          suppress_health_check=list(HealthCheck))
                @given(case=operation.as_strategy(generation_mode=mode))
                def check(case):
                    report["cases"] += 1
                    case.call_and_validate(base_url=base_url, session=session, headers=headers, checks=checks,
                                           timeout=10)

                try:
                    check()
                except Unsatisfiable:  # nothing to make invalid: no parameters, no body
                    continue
                except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - reported together below
                    report["failures"].append(f"{operation.label} ({mode.value}): {exc}")
    return report


def real_services_only(document: dict) -> dict:
    """The document without the test service and without streams (SSE is tested above)."""
    doc = json.loads(json.dumps(document))
    for path, operations in list(doc["paths"].items()):
        for method, operation in list(operations.items()):
            if operation["x-grpc-method"].startswith("/gatewaytest.") or \
                    "text/event-stream" in operation["responses"]["200"].get("content", {}):
                del operations[method]
        if not operations:
            del doc["paths"][path]
    return doc


async def test_schemathesis_contract_over_every_operation(http, gateway, account):
    document = real_services_only((await http.get("/openapi.json")).json())
    report = await asyncio.to_thread(contract_run, document, gateway.url, account.token)
    print(f"\nschemathesis: {len(report['operations'])} operations, {report['cases']} cases, "
          f"{len(report['failures'])} failures")
    assert len(report["operations"]) == sum(len(ops) for ops in document["paths"].values()) > 0
    assert not report["failures"], "\n\n".join(report["failures"])
