"""crm's ListClients filters: the API docs name exactly the fields and orderings the code
supports, and no filter string, valid or garbage, gets past the service as anything but
OK or INVALID_FILTER (no INTERNAL, no database error)."""

from __future__ import annotations

import re
from datetime import timedelta, timezone
from pathlib import Path

import grpc
import pytest
from grpc import aio
from hypothesis import event, given, settings
from hypothesis import strategies as st

from services.crm.domain import CLIENT_STATUSES, ORDERINGS, SUPPORTED_LANGUAGES
from services.crm.repository import FILTER_FIELDS
from soulkg.crm.v1 import crm_pb2, crm_pb2_grpc
from tests.helpers import error_info, new_phone
from tests.identity_helpers import sign_up

ROOT = Path(__file__).resolve().parents[1]
OPERATOR = r"(?:=|!=|<|<=|>|>=|:)"

# --- the docs list exactly what the code supports ---------------------------------------------


def proto_comment(field: str) -> str:
    """The comment above ListClientsRequest.<field> in crm.proto, as one line."""
    proto = (ROOT / "protos/soulkg/crm/v1/crm.proto").read_text()
    message = re.search(r"\nmessage ListClientsRequest \{\n(.*?)\n\}", proto, re.DOTALL).group(1)
    lines = message.splitlines()
    end = next(i for i, line in enumerate(lines) if re.match(rf"\s*string {field} = \d+", line))
    start = end
    while start > 0 and lines[start - 1].strip().startswith("//"):
        start -= 1
    return " ".join(" ".join(line.strip().removeprefix("//") for line in lines[start:end]).split())


def readme_filters() -> str:
    """The README's ListClients paragraph(s), from "`ListClients` filters" to "Errors carry"."""
    readme = (ROOT / "README.md").read_text()
    return " ".join(readme[readme.index("`ListClients` filters"):readme.index("Errors carry")].split())


DOCS = {"crm.proto ListClientsRequest.filter": lambda: proto_comment("filter"),
        "README.md": readme_filters}
ORDER_DOCS = {"crm.proto ListClientsRequest.order_by": lambda: proto_comment("order_by"),
              "README.md": readme_filters}


@pytest.mark.parametrize("doc", sorted(DOCS))
def test_filter_docs_name_exactly_the_filterable_fields(doc):
    text = DOCS[doc]()
    documented = set(re.findall(rf"`([A-Za-z_][\w.]*) ?{OPERATOR}", text))  # `field OP ...`
    assert documented == set(FILTER_FIELDS), f"{doc} documents {sorted(documented)}"
    for word in ("`AND`", "`OR`", "`NOT`", "parenthes"):
        assert word in text, f"{doc} does not mention {word}"


@pytest.mark.parametrize("doc", sorted(ORDER_DOCS))
def test_order_by_docs_name_every_ordering(doc):
    text = ORDER_DOCS[doc]()
    for key in ORDERINGS:
        assert f"`{key}`" in text, f"{doc} does not mention order_by `{key}`"


# --- any filter through the real service -------------------------------------------------------

UTF8 = st.characters(codec="utf-8")


def quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


OFFSETS = st.timedeltas(min_value=timedelta(hours=-23, minutes=-59), max_value=timedelta(hours=23, minutes=59))
# Edges that once broke a layer below the filter compiler: timestamps that leave Python's
# range when converted to UTC (asyncpg would fail to encode them), NUL (PostgreSQL text
# cannot hold it).
TIMESTAMPS = st.one_of(
    st.builds(lambda d, offset: d.replace(tzinfo=timezone(offset)).isoformat(), st.datetimes(),
              OFFSETS.map(lambda o: timedelta(minutes=o // timedelta(minutes=1)))),
    st.sampled_from(["0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00", "2026-01-01T00:00:00Z"]))
TEXT = st.one_of(st.text(UTF8, max_size=30), st.sampled_from(["a\x00b", "\x00", "100%_", "back\\"]))
BARE = st.text(st.characters(codec="utf-8", exclude_characters=' ()"\\=<>!\t\n\r\x0b\x0c'), min_size=1,
               max_size=15)
GOOD_VALUES = {
    "status": st.sampled_from(sorted(CLIENT_STATUSES) + ["CLIENT_STATUS_SOLD"]),
    "preferred_language": st.sampled_from(sorted(SUPPORTED_LANGUAGES) + ["RU", " en "]).map(quote),
    "assigned_partner_id": st.uuids().map(lambda u: quote(str(u))),
    "prompt_variant_id": st.uuids().map(lambda u: quote(str(u))),
    "create_time": st.one_of(TIMESTAMPS.map(quote), TIMESTAMPS),
    "update_time": TIMESTAMPS.map(quote),
    "search": TEXT.map(quote),
}
ANY_VALUE = st.one_of(TEXT.map(quote), BARE, TIMESTAMPS, st.sampled_from(["true", "-1", "1.5", "null", '""']))
VALID_COMPARISONS = st.sampled_from(sorted(FILTER_FIELDS)).flatmap(lambda name: st.tuples(
    st.just(name), st.sampled_from(sorted(FILTER_FIELDS[name].operators)),
    GOOD_VALUES.get(name, ANY_VALUE))).map(" ".join)
ANY_COMPARISONS = st.tuples(
    st.sampled_from(sorted(FILTER_FIELDS) + ["nope", "client.status", "phone", "STATUS"]),
    st.sampled_from(["=", "!=", "<", "<=", ">", ">=", ":"]),
    st.one_of(ANY_VALUE, *GOOD_VALUES.values())).map(" ".join)


def _combine(inner):
    pairs = st.tuples(inner, inner)
    return st.one_of(pairs.map(" AND ".join), pairs.map(" OR ".join), inner.map("NOT {}".format),
                     inner.map("-{}".format), inner.map("({})".format))


FILTERS = st.one_of(
    st.recursive(VALID_COMPARISONS, _combine, max_leaves=8),
    st.recursive(st.one_of(VALID_COMPARISONS, ANY_COMPARISONS), _combine, max_leaves=8),
    st.text(UTF8, max_size=80),
    st.text(alphabet='()"\\-=<>!: ANDORTstu', max_size=60),
)


@pytest.fixture(scope="module")
async def crm(identity_channel, crm_channel):
    """An organization with a few clients to filter, and the stub acting as its admin."""
    account = await sign_up(identity_channel, "crm-filters")
    stub = crm_pb2_grpc.ClientServiceStub(crm_channel)
    for fields in ({"preferred_language": "ru", "first_name": "Aibek"},
                   {"preferred_language": "en", "email": "jane@example.com", "last_name": "Back\\"},
                   {"first_name": "100%_"}):
        await stub.CreateClient(crm_pb2.CreateClientRequest(client=crm_pb2.Client(phone=new_phone(), **fields)),
                                metadata=account.metadata)
    return stub, account.metadata


@settings(max_examples=150)
@given(filter_text=FILTERS)
async def test_any_filter_is_ok_or_invalid_filter(crm, filter_text):
    stub, metadata = crm
    try:
        await stub.ListClients(crm_pb2.ListClientsRequest(filter=filter_text, page_size=5), metadata=metadata)
        event("OK")
    except aio.AioRpcError as error:
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, (filter_text, error.code(), error.details())
        assert error_info(error).reason == "INVALID_FILTER", (filter_text, error.details())
        event("INVALID_FILTER")
