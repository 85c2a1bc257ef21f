"""libs/persistence.py without a database: keyset page tokens (round trip, tampering, another
organization or query), the SQL text of masked updates and inserts, found(), etags."""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from libs.errors import Aborted, InvalidArgument, NotFound
from libs.pagination import MAX_PAGE_SIZE, PageTokenCodec
from libs.persistence import (
    IN_ORG,
    ORG_ROW,
    KeysetPager,
    check_etag,
    etag_of,
    found,
    insert_sql,
    keyset_after,
    order_by,
    update_sql,
)

ORG, OTHER_ORG = uuid.UUID(int=1), uuid.UUID(int=2)
QUERY = ("clients", 'status = SOLD', "create_time desc")
KEYS = (datetime, uuid.UUID)
T0 = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)


@dataclass
class Row:
    create_time: datetime
    id: uuid.UUID


def _rows(n: int) -> list[Row]:
    return [Row(T0 - timedelta(seconds=i), uuid.UUID(int=100 + i)) for i in range(n)]


@pytest.fixture
def pager() -> KeysetPager:
    return KeysetPager(PageTokenCodec(b"k" * 32))


def _first_page(pager: KeysetPager, size: int = 2):
    request = pager.request(ORG, query=QUERY, page_token="", requested_size=size, key_types=KEYS)
    return request, pager.page(request, _rows(request.limit), key=lambda r: (r.create_time, r.id))


def test_the_extra_row_decides_whether_a_next_page_exists(pager):
    request = pager.request(ORG, query=QUERY, page_token="", requested_size=2, key_types=KEYS)
    assert (request.size, request.limit, request.after) == (2, 3, None)
    last = pager.page(request, _rows(2), key=lambda r: (r.create_time, r.id))
    assert len(last.items) == 2 and last.next_page_token == ""
    more = pager.page(request, _rows(3), key=lambda r: (r.create_time, r.id))
    assert len(more.items) == 2 and more.next_page_token


def test_a_token_round_trips_to_the_typed_last_key(pager):
    _, page = _first_page(pager)
    following = pager.request(ORG, query=QUERY, page_token=page.next_page_token, requested_size=2, key_types=KEYS)
    assert following.after == (page.items[-1].create_time, page.items[-1].id)
    assert isinstance(following.after[0], datetime) and isinstance(following.after[1], uuid.UUID)


@pytest.mark.parametrize("requested,size", [(0, 50), (7, 7), (10**6, MAX_PAGE_SIZE)])
def test_page_size(pager, requested, size):
    assert pager.request(ORG, query=QUERY, page_token="", requested_size=requested, key_types=KEYS).size == size


def test_negative_page_size(pager):
    with pytest.raises(InvalidArgument):
        pager.request(ORG, query=QUERY, page_token="", requested_size=-1, key_types=KEYS)


def _tampered(token: str) -> str:
    raw = bytearray(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    raw[-3] ^= 1
    return base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()


@pytest.mark.parametrize("case", ["tampered", "other organization", "other query", "other secret", "garbage",
                                  "wrong key shape"])
def test_a_token_is_refused_unless_made_for_this_request(pager, case):
    _, page = _first_page(pager)
    token, org, query, key_types, used = page.next_page_token, ORG, QUERY, KEYS, pager
    if case == "tampered":
        token = _tampered(token)
    elif case == "other organization":
        org = OTHER_ORG
    elif case == "other query":
        query = ("clients", "", "create_time desc")
    elif case == "other secret":
        used = KeysetPager(PageTokenCodec(b"z" * 32))
    elif case == "garbage":
        token = "garbage"
    elif case == "wrong key shape":
        key_types = (datetime, uuid.UUID, int)
    with pytest.raises(InvalidArgument) as caught:
        used.request(org, query=query, page_token=token, requested_size=2, key_types=key_types)
    assert caught.value.violations[0][0] == "page_token"


# --- SQL text ------------------------------------------------------------------------------------

def test_update_sql_sets_exactly_the_masked_fields():
    sql, args = update_sql("clients", {"first_name": "Ada", "metadata": "{}"},
                           {"first_name": "", "metadata": "::jsonb"}, returning="id")
    assert sql == f"UPDATE clients SET first_name = $2, metadata = $3::jsonb WHERE {IN_ORG} AND id = $1 RETURNING id"
    assert args == ["Ada", "{}"]


def test_update_sql_text_is_stable_per_mask_shape():
    casts = {"a": "", "b": ""}
    one, _ = update_sql("t", {"a": 1, "b": 2}, casts, returning="id")
    two, _ = update_sql("t", {"a": 3, "b": 4}, casts, returning="id")
    assert one == two


def test_update_sql_of_the_organization_row():
    sql, args = update_sql("organizations", {"name": "N"}, {"name": ""}, returning="id", where=ORG_ROW,
                           key_params=0)
    assert sql == f"UPDATE organizations SET name = $1 WHERE {ORG_ROW} RETURNING id"
    assert args == ["N"]


def test_update_sql_needs_a_change():
    with pytest.raises(ValueError):
        update_sql("clients", {}, {}, returning="id")


def test_insert_sql_states_the_organization():
    sql, args = insert_sql("clients", {"phone": "+1", "metadata": "{}"}, {"phone": "", "metadata": "::jsonb"},
                           returning="id", on_conflict="ON CONFLICT DO NOTHING")
    assert sql == ("INSERT INTO clients (organization_id, phone, metadata) VALUES ((SELECT app.current_org()), $1, "
                   "$2::jsonb) ON CONFLICT DO NOTHING RETURNING id")
    assert args == ["+1", "{}"]


def test_keyset_and_order():
    assert keyset_after(("created_at", "id"), True, 3) == "(created_at, id) < ($3, $4)"
    assert keyset_after(("created_at", "id"), False, 1) == "(created_at, id) > ($1, $2)"
    assert order_by(("created_at", "id"), True) == "created_at DESC, id DESC"


# --- found, etags ------------------------------------------------------------------------------

def test_found():
    assert found(0, "client") == 0
    with pytest.raises(NotFound) as caught:
        found(None, "prompt_variant")
    assert caught.value.reason == "PROMPT_VARIANT_NOT_FOUND"
    assert caught.value.message == "prompt variant not found"


def test_etag_follows_updated_at():
    assert etag_of(T0) == etag_of(T0.astimezone(UTC))
    assert etag_of(T0) != etag_of(T0 + timedelta(microseconds=1))


def test_check_etag():
    check_etag("", etag_of(T0))  # no etag: no check
    check_etag(etag_of(T0), etag_of(T0))
    with pytest.raises(Aborted) as caught:
        check_etag(etag_of(T0), etag_of(T0 + timedelta(seconds=1)))
    assert caught.value.reason == "ETAG_MISMATCH"
    assert caught.value.metadata == {"current_etag": etag_of(T0 + timedelta(seconds=1))}
