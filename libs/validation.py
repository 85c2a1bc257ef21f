"""Input checks shared by services' domains: plain values in, normalised values out; each
raises InvalidArgument with a field violation. No protobuf, no I/O: domain code uses them.

`Violations` collects the violations of one request so that the caller gets all of them in
one INVALID_ARGUMENT instead of one per attempt.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from typing import TypeVar
from uuid import UUID

import phonenumbers
from email_validator import EmailNotValidError, validate_email

from libs.errors import InvalidArgument

T = TypeVar("T")

# Maximum lengths of text every service takes the same way (documented in the protos).
EMAIL_MAX = 254  # RFC 5321's limit on a forward path
PHONE_MAX = 32  # E.164 has at most 15 digits; the rest is room for separators
ETAG_MAX = 64

# What a person types between digits: spaces, dashes, dots, parentheses (`+996 (555) 12-34.56`).
_PHONE_SEPARATORS = re.compile(r"[\s\-().]")
_PLUS_DIGITS = re.compile(r"^\+[0-9]+$")
PHONE_EXAMPLE = "+996555123456"


class Violations:
    """Every violation of one request, raised together:

        v = Violations()
        email = v.check(normalize_email, raw_email, "user.email")   # None when invalid
        v.add("user.role", "is required")
        v.raise_if_any("invalid user")
    """

    def __init__(self) -> None:
        self.items: list[tuple[str, str]] = []

    def check(self, rule: Callable[..., T], *args, **kwargs) -> T | None:
        """`rule(*args, **kwargs)`, or None after recording its violations."""
        try:
            return rule(*args, **kwargs)
        except InvalidArgument as exc:
            self.items.extend(exc.violations or [("", exc.message)])
            return None

    def add(self, field: str, description: str) -> None:
        self.items.append((field, description))

    def raise_if_any(self, message: str) -> None:
        if self.items:
            raise InvalidArgument(message, self.items)


def bounded_text(value: str, field: str, max_length: int) -> str:
    """Text taken as it is (a password, a token, an etag): at most `max_length` characters
    and no NUL character, or INVALID_ARGUMENT naming the field."""
    if len(value) > max_length:
        raise InvalidArgument.field(field, f"must be at most {max_length} characters")
    if "\x00" in value:
        raise InvalidArgument.field(field, "must not contain NUL characters")
    return value


def etag(value: str, field: str = "etag") -> str:
    """An AIP-154 etag as a request sends it back (empty: no check)."""
    return bounded_text(value, field, ETAG_MAX)


def normalize_email(email: str, field: str = "email") -> str:
    """The one form an email is stored and looked up in: syntax-checked (no DNS lookups),
    Unicode-normalised (NFC) and lowercased, surrounding spaces dropped. At most EMAIL_MAX
    characters."""
    if len(email) > EMAIL_MAX:
        raise InvalidArgument.field(field, f"must be at most {EMAIL_MAX} characters")
    try:
        result = validate_email(email.strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise InvalidArgument.field(field, str(exc)) from None
    return result.normalized.lower()


def normalize_phone(phone: str, field: str = "phone") -> str:
    """A phone number in E.164 (`+996555123456`), parsed by `phonenumbers` with no default
    region: the number must start with `+` and its country code. Spaces, dashes, dots and
    parentheses between digits are dropped; any other character (letters included: no
    `+1 800 FLOWERS`) is rejected.

    The check is `is_possible_number` (the length fits the country's numbering plan), not
    `is_valid_number` (the number also lies in a range the library's metadata knows as
    assigned). Clients reach us through WhatsApp: their number exists, and rejecting it
    because a carrier's new range is newer than our copy of the metadata would lose a real
    lead. Wrong lengths, unknown country codes and local-only numbers are still rejected.
    """
    if len(phone or "") > PHONE_MAX:
        raise InvalidArgument.field(field, f"must be at most {PHONE_MAX} characters")
    compact = _PHONE_SEPARATORS.sub("", phone or "")
    invalid = InvalidArgument.field(field, f"must be an E.164 phone number such as {PHONE_EXAMPLE}")
    if not _PLUS_DIGITS.match(compact):
        raise invalid
    try:
        number = phonenumbers.parse(compact, None)
    except phonenumbers.NumberParseException:
        raise invalid from None
    if phonenumbers.is_possible_number_with_reason(number) != phonenumbers.ValidationResult.IS_POSSIBLE:
        raise invalid
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def optional_text(value: str | None, field: str, max_length: int = 200) -> str | None:
    """Trimmed text, None when empty; too long or holding a NUL character (PostgreSQL text
    cannot) -> INVALID_ARGUMENT naming the field."""
    if value is None:
        return None
    value = value.strip()
    if len(value) > max_length:
        raise InvalidArgument.field(field, f"must be at most {max_length} characters")
    if "\x00" in value:
        raise InvalidArgument.field(field, "must not contain NUL characters")
    return value or None


def parse_uuid(value: str, field: str) -> UUID:
    """A resource id from a request; malformed → INVALID_ARGUMENT (never a database error)."""
    if not value:
        raise InvalidArgument.field(field, "is required")
    try:
        return UUID(value)
    except (ValueError, AttributeError, TypeError):
        raise InvalidArgument.field(field, "must be a UUID") from None


def optional_uuid(value: str | None, field: str) -> UUID | None:
    """A UUID, or None when the value is empty or absent."""
    return parse_uuid(value, field) if value else None


def mask_paths(paths: Iterable[str], allowed: Iterable[str], *, field: str = "update_mask") -> list[str]:
    """AIP-134, the same in every service: the update mask is REQUIRED. Its paths (once each,
    in order), each one of `allowed`; an empty mask is INVALID_ARGUMENT (callers say what
    they change), `*` is not supported, and an unknown path is INVALID_ARGUMENT."""
    allowed = set(allowed)
    paths = list(dict.fromkeys(paths))
    if not paths:
        raise InvalidArgument.field(field, "must name the fields to update: " + ", ".join(sorted(allowed)))
    if "*" in paths:
        raise InvalidArgument.field(f"{field}.paths", "'*' (replace everything) is not supported: name the fields")
    unknown = [p for p in paths if p not in allowed]
    if unknown:
        raise InvalidArgument(f"{field} has fields that cannot be updated: {', '.join(unknown)}",
                              [(f"{field}.paths", f"'{p}' is not one of: {', '.join(sorted(allowed))}")
                               for p in unknown])
    return paths


MAX_JSON_BYTES = 16 * 1024


def json_object_text(value: dict, field: str, max_bytes: int = MAX_JSON_BYTES) -> str:
    """A JSON object (from a google.protobuf.Struct) as text for a jsonb column, size-capped
    by its UTF-8 bytes (not escaped ones: 5,000 Cyrillic letters fit). NaN and infinities
    (a Struct can carry them, JSON and jsonb cannot) and NUL characters -> INVALID_ARGUMENT."""
    try:
        text = json.dumps(value, ensure_ascii=False, allow_nan=False)
    except ValueError:
        raise InvalidArgument.field(field, "must not contain NaN or infinite numbers") from None
    if "\\u0000" in text:
        raise InvalidArgument.field(field, "must not contain NUL characters")
    if len(text.encode()) > max_bytes:
        raise InvalidArgument.field(field, f"must be at most {max_bytes // 1024} KiB of JSON")
    return text
