"""AIP-160 list filters, the subset we support: comparisons joined by AND.

    status = QUALIFIED AND preferred_language = "ru" AND create_time >= "2026-01-01T00:00:00Z"

Each service declares its filterable fields (`FilterField`: the SQL expression, the
operators allowed, how to convert the value); `compile_filter` turns a filter string into a
SQL condition with numbered parameters. Values are always bound parameters, never spliced.
Anything unknown or malformed is INVALID_ARGUMENT on `filter`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from libs.errors import InvalidArgument

_TERM = re.compile(r'\s*([a-z_]+)\s*(<=|>=|!=|=|<|>|:)\s*("(?:[^"\\]|\\.)*"|[^\s"]+)\s*')
_SQL_OPERATORS = {"=": "=", "!=": "<>", "<": "<", "<=": "<=", ">": ">", ">=": ">="}
EQUALITY = frozenset({"=", "!="})
ORDERING = frozenset({"=", "!=", "<", "<=", ">", ">="})


@dataclass(frozen=True)
class FilterField:
    sql: str  # column or expression; for `search`-like fields, a template with {p} for the parameter
    operators: frozenset[str]
    convert: Callable[[str], object]
    template: bool = False  # sql is a whole condition with {p} placeholders (operator ignored)


def _invalid(message: str) -> InvalidArgument:
    return InvalidArgument(f"invalid filter: {message}", [("filter", message)], reason="INVALID_FILTER")


def _unquote(raw: str) -> str:
    if raw.startswith('"'):
        return re.sub(r"\\(.)", r"\1", raw[1:-1])
    return raw


def split_terms(text: str) -> list[str]:
    """Split on the AND keyword outside quotes."""
    parts, current, quoted, i = [], [], False, 0
    while i < len(text):
        char = text[i]
        if char == '"' and (i == 0 or text[i - 1] != "\\"):
            quoted = not quoted
        if not quoted and text[i:i + 5] == " AND " :
            parts.append("".join(current))
            current, i = [], i + 5
            continue
        current.append(char)
        i += 1
    if quoted:
        raise _invalid("unterminated quoted string")
    parts.append("".join(current))
    return parts


def compile_filter(text: str, fields: Mapping[str, FilterField], first_param: int) -> tuple[str, list]:
    """(SQL condition or "", parameters) for `text`; parameters are numbered from first_param."""
    text = text.strip()
    if not text:
        return "", []
    if len(text) > 2000:
        raise _invalid("is too long")
    conditions: list[str] = []
    params: list = []
    for term in split_terms(text):
        match = _TERM.fullmatch(term)
        if not match:
            raise _invalid(f"cannot parse '{term.strip()}'; expected <field> <op> <value> joined by AND")
        name, op, raw = match.groups()
        field = fields.get(name)
        if field is None:
            raise _invalid(f"unknown field '{name}'; filterable: {', '.join(sorted(fields))}")
        if op not in field.operators:
            raise _invalid(f"'{name}' does not support '{op}'")
        try:
            value = field.convert(_unquote(raw))
        except (ValueError, TypeError, KeyError) as exc:
            raise _invalid(f"bad value for '{name}': {exc}") from None
        placeholder = f"${first_param + len(params)}"
        params.append(value)
        if field.template:
            conditions.append(field.sql.format(p=placeholder))
        else:
            conditions.append(f"{field.sql} {_SQL_OPERATORS[op]} {placeholder}")
    return " AND ".join(conditions), params


# Value converters.

def to_uuid(value: str) -> UUID:
    return UUID(value)


def to_timestamp(value: str) -> datetime:
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        raise ValueError("timestamps need a time zone, e.g. 2026-01-01T00:00:00Z")
    return parsed


def to_enum_label(labels: frozenset[str], prefix: str) -> Callable[[str], str]:
    def convert(value: str) -> str:
        label = value.removeprefix(prefix)
        if label not in labels:
            raise ValueError(f"one of {', '.join(sorted(labels))}")
        return label
    return convert


def to_like_pattern(value: str) -> str:
    """A substring pattern for ILIKE with LIKE's wildcards escaped."""
    if not value.strip():
        raise ValueError("must not be empty")
    escaped = value.strip().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"
