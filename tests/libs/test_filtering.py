"""libs.filtering without a database: the grammar, the SQL it compiles to, every error class,
the converters, and properties over generated and arbitrary filter text."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from libs.errors import InvalidArgument
from libs.filtering import (
    EQUALITY,
    MAX_DEPTH,
    MAX_LENGTH,
    MAX_TERMS,
    ORDERING,
    FilterField,
    compile_filter,
    to_bool,
    to_decimal,
    to_enum_label,
    to_int,
    to_like_pattern,
    to_timestamp,
    to_uuid,
)


def only_en_or_ru(value: str) -> str:
    """Like crm's check_language: a converter that raises InvalidArgument itself."""
    if value not in ("en", "ru"):
        raise InvalidArgument.field("filter", "must be en or ru")
    return value


def broken(value: str) -> str:
    raise RuntimeError("a bug in a converter")


FIELDS = {
    "status": FilterField("status", EQUALITY, to_enum_label(frozenset({"NEW", "DONE"}), "STATUS_")),
    "language": FilterField("language", EQUALITY, only_en_or_ru),
    "partner_id": FilterField("partner_id", EQUALITY, to_uuid),
    "create_time": FilterField("created_at", ORDERING, to_timestamp),
    "price": FilterField("price", ORDERING, to_decimal),
    "count": FilterField("n", ORDERING | {":"}, to_int),
    "is_active": FilterField("is_active", EQUALITY, to_bool),
    "name": FilterField("name", EQUALITY | {":"}, str),
    "tour.title": FilterField("tour_title", EQUALITY, str),
    "search": FilterField("a ILIKE {p} OR b ILIKE {p}", frozenset({"=", ":"}), to_like_pattern, template=True),
    "lookup": FilterField("lookup", EQUALITY, lambda v: {"x": 1}[v]),
    "typed": FilterField("typed", EQUALITY, lambda v: int(None) if v == "none" else v),
    "broken": FilterField("broken", EQUALITY, broken),
}


def compile_(text: str, first_param: int = 1) -> tuple[str, list]:
    return compile_filter(text, FIELDS, first_param)


def filter_error(text: str) -> str:
    """The `filter` violation of an invalid filter (and it is INVALID_FILTER)."""
    with pytest.raises(InvalidArgument) as caught:
        compile_(text)
    assert caught.value.reason == "INVALID_FILTER"
    assert [field for field, _ in caught.value.violations] == ["filter"]
    return caught.value.violations[0][1]


def quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


# --- the language ------------------------------------------------------------------------------

@pytest.mark.parametrize("text", ["", "   ", "\n\t"])
def test_empty_filter_is_no_condition(text):
    assert compile_(text) == ("", [])


def test_one_comparison_and_numbering_from_first_param():
    assert compile_("status = NEW") == ("status = $1", ["NEW"])
    assert compile_("status = STATUS_DONE AND name = bob", first_param=7) == (
        "(status = $7 AND name = $8)", ["DONE", "bob"])


@pytest.mark.parametrize(("text", "sql"), [
    # NOT binds tighter than AND, AND tighter than OR.
    ("name = a OR name = b AND name = c", "(name = $1 OR (name = $2 AND name = $3))"),
    ("name = a AND name = b OR name = c", "((name = $1 AND name = $2) OR name = $3)"),
    ("NOT name = a AND name = b", "((name = $1) IS NOT TRUE AND name = $2)"),
    ("NOT name = a OR name = b", "((name = $1) IS NOT TRUE OR name = $2)"),
    # Parentheses override it; redundant ones cost nothing.
    ("(name = a OR name = b) AND name = c", "((name = $1 OR name = $2) AND name = $3)"),
    ("NOT (name = a OR name = b)", "((name = $1 OR name = $2)) IS NOT TRUE"),
    ("((((name = a))))", "name = $1"),
    # Chains are flat, not nested.
    ("name = a OR name = b OR name = c", "(name = $1 OR name = $2 OR name = $3)"),
    # `-` is NOT where a comparison starts; after an operator it is part of a value.
    ("-name = a", "(name = $1) IS NOT TRUE"),
    ("- (name = a) AND count > -5", "((name = $1) IS NOT TRUE AND n > $2)"),
    ("NOT NOT name = a", "((name = $1) IS NOT TRUE) IS NOT TRUE"),
    # Keywords need word boundaries; whitespace is optional around operators.
    ("name=NOTE AND name=ORDER", "(name = $1 AND name = $2)"),
    ("name=a AND(name=b)", "(name = $1 AND name = $2)"),
])
def test_precedence_parentheses_and_not(text, sql):
    assert compile_(text)[0] == sql


def test_operators():
    assert compile_("count != 3") == ("n IS DISTINCT FROM $1", [3])  # the complement of =, NULL included
    assert compile_("count : 3") == ("n = $1", [3])
    for op in ("<", "<=", ">", ">="):
        assert compile_(f"count {op} 3") == (f"n {op} $1", [3])


def test_template_fields_use_one_parameter_however_often_it_appears():
    assert compile_('search = "x" AND search : y') == (
        "((a ILIKE $1 OR b ILIKE $1) AND (a ILIKE $2 OR b ILIKE $2))", ["%x%", "%y%"])


def test_dotted_field_names():
    assert compile_('tour.title = "Issyk-Kul"') == ("tour_title = $1", ["Issyk-Kul"])
    assert "unknown field 'tour.name'" in filter_error("tour.name = x")


@pytest.mark.parametrize(("text", "value"), [
    (r'name = "a\\"', "a\\"),                  # an escaped backslash ends the string
    (r'name = "say \"hi\""', 'say "hi"'),
    (r'name = "\x\y"', "xy"),                  # any escaped character is itself
    (r'name = "\\\""', '\\"'),
    ('name = "AND OR NOT ( ) = \'"', "AND OR NOT ( ) = '"),
    ('name = ""', ""),
    ('name = "multi\nline"', "multi\nline"),
    ("name = Нурлан", "Нурлан"),                # bare words are not only ASCII
])
def test_quoted_values_and_escapes(text, value):
    assert compile_(text)[1] == [value]


def test_a_string_ending_in_an_escaped_backslash_is_followed_by_more_terms():
    sql, params = compile_(r'search = "a\\" AND status = NEW')
    assert sql == "((a ILIKE $1 OR b ILIKE $1) AND status = $2)"
    assert params == ["%a\\\\%", "NEW"]  # the backslash itself escaped for LIKE


def test_like_wildcards_are_escaped():
    assert compile_('search = "100%_off"')[1] == ["%100\\%\\_off%"]


# --- errors ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "message"), [
    ("status =", "syntax error at character 9: unexpected end of filter; expected a value"),
    ("status = NEW name = a", "syntax error at character 14: unexpected 'name'"),
    ("(status = NEW", "syntax error at character 14: unexpected end of filter; expected ')'"),
    ("status = NEW)", "syntax error at character 13: unexpected ')'"),
    ("()", "syntax error at character 2: unexpected ')'"),
    ("status = NEW AND", "syntax error at character 17"),
    ("status == NEW", "syntax error at character 9"),
    ("= NEW", "syntax error at character 1"),
    ('"NEW"', "syntax error at character 1"),
    ("status NEW", "syntax error at character 8: unexpected 'NEW'; expected an operator"),
    ('name = "unterminated', "unterminated quoted string at character 8"),
    (r'name = "a\" AND status = NEW', "unterminated quoted string at character 8"),
    ("status = NEW and name = a", "(AND, OR and NOT are upper case)"),
])
def test_syntax_errors_say_where(text, message):
    assert message in filter_error(text)


@pytest.mark.parametrize(("text", "message"), [
    ("nope = 1", "unknown field 'nope' at character 1; filterable: broken, count, create_time,"),
    ("status > NEW", "'status' does not support '>'; use != ="),
    ("search != x", "'search' does not support '!='"),
    ("status = BOGUS", "bad value for 'status': must be one of DONE, NEW"),
    ('partner_id = "not-a-uuid"', "bad value for 'partner_id'"),
    ('create_time >= "2026-01-01T00:00:00"', "bad value for 'create_time': timestamps need a time zone"),
    ('create_time >= "yesterday"', "bad value for 'create_time'"),
    ("create_time < 0001-01-01T00:00:00+01:00", "bad value for 'create_time': timestamp out of range"),
    ("language = xx", "bad value for 'language': must be en or ru"),  # a converter's InvalidArgument
    ("lookup = y", "bad value for 'lookup'"),                           # KeyError
    ("typed = none", "bad value for 'typed'"),                          # TypeError
    ("broken = x", "bad value for 'broken': not a valid value"),       # anything else, not leaked
    ('search = "  "', "bad value for 'search': must not be empty"),
    ('name = "a\x00b"', "must not contain NUL characters"),
    ("count = 1.5", "bad value for 'count': a whole number within 64 bits"),
    ("count = 9223372036854775808", "a whole number within 64 bits"),
    ("price < 1e5", "bad value for 'price': a decimal number"),
    ("price < NaN", "a decimal number"),
    ("is_active = yes", "bad value for 'is_active': true or false"),
])
def test_semantic_errors(text, message):
    assert message in filter_error(text)


def test_limits():
    assert "too long" in filter_error("name = " + "x" * MAX_LENGTH)
    assert compile_("name = " + "x" * (MAX_LENGTH - 7))[1] == ["x" * (MAX_LENGTH - 7)]

    terms = " AND ".join(["count = 1"] * MAX_TERMS)
    assert len(compile_(terms)[1]) == MAX_TERMS
    assert f"too many comparisons (at most {MAX_TERMS})" in filter_error(terms + " AND count = 1")

    assert compile_("NOT " * MAX_DEPTH + "count = 1")[0].count("IS NOT TRUE") == MAX_DEPTH
    assert "nested too deeply" in filter_error("NOT " * (MAX_DEPTH + 1) + "count = 1")
    nested = "count = 1"
    for _ in range(MAX_DEPTH + 1):
        nested = f"count = 1 OR (count = 2 AND ({nested}))"
    assert "nested too deeply" in filter_error(nested[:MAX_LENGTH])


def test_hostile_nesting_does_not_reach_the_stack():
    half = (MAX_LENGTH - 9) // 2
    assert compile_("(" * half + "count = 1" + ")" * half) == ("n = $1", [1])  # parentheses alone are free
    assert "nested too deeply" in filter_error("NOT " * ((MAX_LENGTH - 9) // 4) + "count = 1")
    assert "nested too deeply" in filter_error("-" * (MAX_LENGTH - 9) + "count = 1")
    assert "syntax error" in filter_error("(" * MAX_LENGTH)


# --- converters --------------------------------------------------------------------------------

def test_converters():
    assert to_uuid("6f1c0a4e-6b0e-4d43-9a8e-0d6d1f1f2a11") == uuid.UUID("6f1c0a4e-6b0e-4d43-9a8e-0d6d1f1f2a11")
    assert to_timestamp("2026-01-01T06:00:00+06:00") == datetime(2026, 1, 1, tzinfo=UTC)
    assert to_timestamp("2026-01-01T00:00:00Z").tzinfo is UTC
    assert to_enum_label(frozenset({"NEW"}), "S_")("S_NEW") == "NEW"
    assert to_like_pattern(" a%b_c\\ ") == "%a\\%b\\_c\\\\%"
    assert (to_bool("true"), to_bool("FALSE")) == (True, False)
    assert (to_int("-42"), to_int("+7"), to_int(str(2**63 - 1))) == (-42, 7, 2**63 - 1)
    assert (to_decimal("1250.50"), to_decimal("-.5"), to_decimal("3.")) == (
        Decimal("1250.50"), Decimal("-0.5"), Decimal("3"))
    for convert, bad in [(to_int, str(-2**63 - 1)), (to_int, "0x10"), (to_int, "1_000"), (to_decimal, "inf"),
                         (to_decimal, "1" * 19), (to_decimal, "1,5"), (to_bool, "1"), (to_timestamp, "")]:
        with pytest.raises(ValueError):
            convert(bad)


# --- properties --------------------------------------------------------------------------------

SENTINEL = "\u00a7"  # in every text value below; never in any SQL we write
TEXT_VALUES = st.text(alphabet=st.characters(exclude_characters="\x00"), max_size=20).map(lambda s: SENTINEL + s)
VALUES = {
    "status": st.sampled_from(["NEW", "DONE", "STATUS_NEW", '"DONE"']),
    "language": st.sampled_from(["en", '"ru"']),
    "partner_id": st.uuids().map(lambda u: quote(str(u))),
    "create_time": st.datetimes(timezones=st.just(UTC)).map(lambda d: quote(d.isoformat())),
    "price": st.decimals(min_value=-10**6, max_value=10**6, places=2).map(lambda d: format(d, "f")),
    "count": st.integers(-2**63, 2**63 - 1).map(str),
    "is_active": st.sampled_from(["true", "false"]),
    "name": TEXT_VALUES.map(quote),
    "tour.title": TEXT_VALUES.map(quote),
    "search": TEXT_VALUES.map(quote),
}
COMPARISONS = st.sampled_from(sorted(VALUES)).flatmap(lambda name: st.tuples(
    st.just(name), st.sampled_from(sorted(FIELDS[name].operators)), VALUES[name])).map(" ".join)


def _combine(inner):
    pairs = st.tuples(inner, inner)
    return st.one_of(pairs.map(" AND ".join), pairs.map(" OR ".join), inner.map("NOT {}".format),
                     inner.map("-{}".format), inner.map("({})".format))


VALID_FILTERS = st.recursive(COMPARISONS, _combine, max_leaves=10)

TOKENS = ["status", "name", "count", "search", "tour.title", "nope", "a.b", "=", "!=", "<", "<=", ">", ">=",
          ":", "AND", "OR", "NOT", "and", "-", "(", ")", '"', "\\", '"a\\\\"', '"x"', "NEW", "-5", "1.5",
          "true", "2026-01-01T00:00:00Z", " ", "\n", "\x00", "!", "ANDROID", "§"]
TOKEN_SOUP = st.lists(st.sampled_from(TOKENS), max_size=25).flatmap(
    lambda tokens: st.sampled_from([" ".join(tokens), "".join(tokens)]))


@st.composite
def mutated_filters(draw):
    """A valid filter with a few characters deleted, inserted or duplicated."""
    text = draw(VALID_FILTERS)
    for _ in range(draw(st.integers(1, 3))):
        i = draw(st.integers(0, len(text)))
        edit = draw(st.sampled_from(["delete", "insert", "duplicate"]))
        if edit == "delete":
            text = text[:i] + text[i + 1:]
        elif edit == "insert":
            text = text[:i] + draw(st.sampled_from(TOKENS)) + text[i:]
        else:
            text = text[:i] + text[i:i + draw(st.integers(1, 12))] + text[i:]
    return text


ANY_TEXT = st.one_of(st.text(), st.text(alphabet='()"\\-=<>!: ANDORTstu', max_size=60), TOKEN_SOUP,
                     mutated_filters(), VALID_FILTERS)


@given(text=ANY_TEXT, first_param=st.integers(1, 5))
def test_any_text_compiles_or_is_invalid_filter(text, first_param):
    try:
        compile_filter(text, FIELDS, first_param)
    except InvalidArgument as exc:
        assert exc.reason == "INVALID_FILTER"
        assert [field for field, _ in exc.violations] == ["filter"]


SQL_WORDS = {"AND", "OR", "IS", "NOT", "TRUE", "DISTINCT", "FROM", "ILIKE", "a", "b"} | {
    field.sql for field in FIELDS.values() if not field.template}


def assert_parameterised(sql: str, params: list, first_param: int) -> None:
    numbers = {int(n) for n in re.findall(r"\$(\d+)", sql)}
    assert numbers == set(range(first_param, first_param + len(params)))
    assert SENTINEL not in sql
    for token in re.findall(r"[A-Za-z_][A-Za-z0-9_]*|[^\sA-Za-z0-9_$]+", re.sub(r"\$\d+", " ", sql)):
        assert token in SQL_WORDS or set(token) <= set("()=<>"), token


@given(text=VALID_FILTERS, first_param=st.integers(1, 5))
def test_generated_filters_bind_every_value(text, first_param):
    try:
        sql, params = compile_filter(text, FIELDS, first_param)
    except InvalidArgument as exc:  # generated filters are valid but may nest too deeply
        assert "nested too deeply" in exc.message
        return
    assert_parameterised(sql, params, first_param)


@given(text=ANY_TEXT)
def test_whatever_compiles_binds_every_value(text):
    try:
        sql, params = compile_filter(text, FIELDS, 3)
    except InvalidArgument:
        return
    assert_parameterised(sql, params, 3)


@given(value=st.text(alphabet=st.characters(exclude_characters="\x00"), max_size=200))
def test_quoting_round_trips(value):
    assert compile_filter(f"name = {quote(value)} AND status = NEW", FIELDS, 1) == (
        "(name = $1 AND status = $2)", [value, "NEW"])
