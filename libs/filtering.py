"""AIP-160 list filters, the subset we support, compiled to a parameterised SQL condition.

    status = QUALIFIED AND (preferred_language = "ru" OR NOT create_time < "2026-01-01T00:00:00Z")

Syntax (a lark LALR grammar, built once at import):

- a comparison is `field OP value` with OP one of `= != < <= > >= :`; a field is an
  identifier, dotted names (`a.b`) included; only the fields a service declares exist.
- a value is a bare word (`QUALIFIED`, `42`, `-1.5`, `true`, `2026-01-01T00:00:00Z`) or a
  double-quoted string in which a backslash escapes the next character (`\\"` is `"`,
  `\\\\` is a backslash, `\\x` is `x`), so `search = "a\\\\"` is the text `a\\`.
- comparisons combine with `AND`, `OR`, `NOT` (or a leading `-`) and parentheses. The
  keywords are upper case. Precedence: NOT binds tighter than AND, AND tighter than OR, so
  `a OR b AND NOT c` is `a OR (b AND (NOT c))`. (AIP-160 itself ranks OR above AND; we
  use the precedence every other language uses: write parentheses when in doubt.)

Semantics: `NOT x` matches exactly the rows `x` does not match, and `f != v` those `f = v`
does not match; a row whose field is NULL (no language, no partner) is "not equal" to
every value. The operator `:` is equality unless the field's template gives it a meaning.

Each service declares its filterable fields (`FilterField`: the SQL expression, the
operators allowed, how to convert the value). `compile_filter` returns the condition with
numbered asyncpg placeholders ($n, from `first_param`) and the parameters: values are
always bound, never spliced into the SQL.

Limits, so that a hostile filter costs neither the stack nor the planner: at most
MAX_LENGTH (2000) characters, MAX_TERMS (50) comparisons and MAX_DEPTH (16) nested
AND/OR/NOT groups (redundant parentheses do not count). The parser is table-driven (no
recursion); the compiler recurses at most MAX_DEPTH levels.

Every failure (syntax with its position, unknown field, operator not allowed, a value the
field's converter rejects with any exception, a limit) is InvalidArgument with reason
INVALID_FILTER and a violation on the field `filter`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from uuid import UUID

from lark import Lark, Token, Tree
from lark.exceptions import LarkError, UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from libs.errors import InvalidArgument

MAX_LENGTH = 2000
MAX_TERMS = 50
MAX_DEPTH = 16

EQUALITY = frozenset({"=", "!="})
ORDERING = frozenset({"=", "!=", "<", "<=", ">", ">="})
# `!=` is the exact complement of `=` (NULL included), like NOT.
_SQL_OPERATORS = {"=": "=", ":": "=", "!=": "IS DISTINCT FROM", "<": "<", "<=": "<=", ">": ">", ">=": ">="}

log = logging.getLogger("soulkg.filtering")

_GRAMMAR = r"""
?start: or_expr
?or_expr: and_expr (_OR and_expr)*
?and_expr: unary (_AND unary)*
?unary: _NOT unary        -> not_expr
      | "-" unary         -> not_expr
      | "(" or_expr ")"
      | comparison
comparison: FIELD OP (WORD | STRING)

_OR.2: /OR\b/
_AND.2: /AND\b/
_NOT.2: /NOT\b/
FIELD: /[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*/
OP: "<=" | ">=" | "!=" | "=" | "<" | ">" | ":"
WORD: /[^\s()"\\=<>!]+/
STRING: /"(?:[^"\\]|\\.)*"/s
_WS: /\s+/
%ignore _WS
"""
# LALR with lark's contextual lexer: after an operator only a value is lexed (so `-1` is a
# number, not NOT 1), and where a comparison may start only fields, keywords, `-` and `(`.
_PARSER = Lark(_GRAMMAR, parser="lalr", lexer="contextual")

_TOKEN_NAMES = {"FIELD": "a field", "OP": "an operator (= != < <= > >= :)", "WORD": "a value",
                "STRING": "a value", "_AND": "AND", "_OR": "OR", "_NOT": "NOT", "MINUS": "'-'",
                "LPAR": "'('", "RPAR": "')'", "$END": "the end"}
_KEYWORDS = {"and", "or", "not"}
_ESCAPE = re.compile(r"\\(.)", re.DOTALL)


@dataclass(frozen=True)
class FilterField:
    sql: str  # column or expression; for `search`-like fields, a template with {p} for the parameter
    operators: frozenset[str]
    convert: Callable[[str], object]
    template: bool = False  # sql is a whole condition with {p} placeholders (operator ignored)


def _invalid(message: str) -> InvalidArgument:
    return InvalidArgument(f"invalid filter: {message}", [("filter", message)], reason="INVALID_FILTER")


def compile_filter(text: str, fields: Mapping[str, FilterField], first_param: int) -> tuple[str, list]:
    """(SQL condition or "", parameters) for `text`; parameters are numbered from first_param.

    The condition is safe to join to others with AND (anything compound is parenthesised)."""
    if len(text) > MAX_LENGTH:
        raise _invalid(f"is too long (at most {MAX_LENGTH} characters)")
    if not text.strip():
        return "", []
    try:
        tree = _PARSER.parse(text)
    except UnexpectedInput as exc:
        raise _invalid(_syntax_error(exc, text)) from None
    except LarkError as exc:  # not expected from an LALR parse; still the caller's filter
        raise _invalid(f"cannot parse: {exc}") from None
    compiler = _Compiler(fields, first_param)
    return compiler.condition(tree, 0), compiler.params


def _syntax_error(exc: UnexpectedInput, text: str) -> str:
    if isinstance(exc, UnexpectedCharacters):
        position = exc.pos_in_stream
        if text[position] == '"':
            return f"unterminated quoted string at character {position + 1}"
        found = repr(text[position])
        expected = exc.allowed
    elif isinstance(exc, UnexpectedToken):
        if exc.token.type == "$END":
            position, found = len(text), "end of filter"
        else:
            position, found = exc.token.start_pos or 0, repr(str(exc.token))
        expected = exc.accepts or exc.expected
    elif isinstance(exc, UnexpectedEOF):
        position, found, expected = len(text), "end of filter", exc.expected
    else:
        return "cannot parse"
    names = sorted({_TOKEN_NAMES.get(name, name) for name in expected or ()})
    message = f"syntax error at character {position + 1}: unexpected {found}"
    if names:
        message += "; expected " + (", ".join(names[:-1]) + " or " if len(names) > 1 else "") + names[-1]
    word = re.match(r"\w+", text[position:]) if position < len(text) else None
    if word and word.group().lower() in _KEYWORDS and word.group() != word.group().upper():
        message += " (AND, OR and NOT are upper case)"
    return message


class _Compiler:
    def __init__(self, fields: Mapping[str, FilterField], first_param: int) -> None:
        self.fields = fields
        self.first_param = first_param
        self.params: list = []
        self.terms = 0

    def condition(self, node: Tree, depth: int) -> str:
        if node.data == "comparison":
            return self.comparison(*node.children)
        if depth >= MAX_DEPTH:
            raise _invalid(f"is nested too deeply (at most {MAX_DEPTH} levels of AND, OR, NOT)")
        parts = [self.condition(child, depth + 1) for child in node.children]
        if node.data == "not_expr":
            return f"({parts[0]}) IS NOT TRUE"  # NULL (unknown) counts as not matching
        joiner = " AND " if node.data == "and_expr" else " OR "
        return "(" + joiner.join(parts) + ")"

    def comparison(self, name: Token, op: Token, raw: Token) -> str:
        self.terms += 1
        if self.terms > MAX_TERMS:
            raise _invalid(f"has too many comparisons (at most {MAX_TERMS})")
        field = self.fields.get(str(name))
        if field is None:
            raise _invalid(f"unknown field '{name}' at character {name.start_pos + 1}; "
                           f"filterable: {', '.join(sorted(self.fields))}")
        if str(op) not in field.operators:
            raise _invalid(f"'{name}' does not support '{op}'; use {' '.join(sorted(field.operators))}")
        text = _ESCAPE.sub(r"\1", raw[1:-1]) if raw.type == "STRING" else str(raw)
        if "\x00" in text:
            raise _invalid(f"bad value for '{name}': must not contain NUL characters")
        value = _convert(field, str(name), text)
        placeholder = f"${self.first_param + len(self.params)}"
        self.params.append(value)
        if field.template:
            return "(" + field.sql.format(p=placeholder) + ")"
        return f"{field.sql} {_SQL_OPERATORS[str(op)]} {placeholder}"


def _convert(field: FilterField, name: str, text: str) -> object:
    """The field's converter; whatever it raises is the caller's bad value."""
    try:
        return field.convert(text)
    except InvalidArgument as exc:
        detail = exc.violations[0][1] if exc.violations else exc.message
    except (ValueError, TypeError, KeyError, ArithmeticError) as exc:
        detail = str(exc) or "not a valid value"
    except Exception:
        log.warning("filter converter for %r failed unexpectedly", name, exc_info=True)
        detail = "not a valid value"
    raise _invalid(f"bad value for '{name}': {detail}")


# Value converters. Each takes the unquoted text and raises (ValueError, ...) on bad input.

def to_uuid(value: str) -> UUID:
    return UUID(value)


def to_timestamp(value: str) -> datetime:
    """RFC 3339 with a zone, normalised to UTC (so every value binds as timestamptz)."""
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        raise ValueError("timestamps need a time zone, e.g. 2026-01-01T00:00:00Z")
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        raise ValueError("timestamp out of range") from None


def to_enum_label(labels: frozenset[str], prefix: str) -> Callable[[str], str]:
    def convert(value: str) -> str:
        label = value.removeprefix(prefix)
        if label not in labels:
            raise ValueError(f"must be one of {', '.join(sorted(labels))}")
        return label
    return convert


def to_like_pattern(value: str) -> str:
    """A substring pattern for ILIKE with LIKE's wildcards escaped."""
    if not value.strip():
        raise ValueError("must not be empty")
    escaped = value.strip().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def to_bool(value: str) -> bool:
    lowered = value.lower()
    if lowered not in ("true", "false"):
        raise ValueError("true or false")
    return lowered == "true"


_INT = re.compile(r"[+-]?[0-9]{1,19}")
_DECIMAL = re.compile(r"[+-]?(?:[0-9]{1,18}(?:\.[0-9]{0,18})?|\.[0-9]{1,18})")


def to_int(value: str) -> int:
    """A 64-bit integer (what bigint and integer columns compare with)."""
    if not _INT.fullmatch(value) or not -2**63 <= int(value) < 2**63:
        raise ValueError("a whole number within 64 bits")
    return int(value)


def to_decimal(value: str) -> Decimal:
    """A plain decimal number such as 1250.50 (prices: numeric(12,2)); no exponent, NaN or
    infinity, at most 18 digits on each side of the point."""
    if not _DECIMAL.fullmatch(value):
        raise ValueError("a decimal number such as 1250.50")
    return Decimal(value)
