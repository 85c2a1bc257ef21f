"""Input checks shared by services (each raises InvalidArgument with a field violation)."""

from __future__ import annotations

import json
import re

from email_validator import EmailNotValidError, validate_email

from libs.errors import InvalidArgument

E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
_PHONE_SEPARATORS = re.compile(r"[\s\-().]")


def normalize_email(email: str, field: str = "email") -> str:
    """Syntax-checked, lowercased email (no DNS lookups)."""
    try:
        result = validate_email(email.strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise InvalidArgument.field(field, str(exc)) from None
    return result.normalized.lower()


def normalize_phone(phone: str, field: str = "phone") -> str:
    """E.164 (`+996555123456`): spaces, dashes, dots and parentheses are dropped; anything
    else that is not `+` and 7 to 15 digits (first one not 0) is rejected."""
    compact = _PHONE_SEPARATORS.sub("", phone or "")
    if not E164.match(compact):
        raise InvalidArgument.field(field, "must be an E.164 phone number such as +996555123456")
    return compact


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
