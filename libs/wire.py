"""Wire ↔ Python conversions every servicer needs: ids, times, JSON structs, field masks."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from uuid import UUID

from google.protobuf import field_mask_pb2, struct_pb2, timestamp_pb2

from libs.errors import InvalidArgument


def parse_uuid(value: str, field: str) -> UUID:
    """A resource id from a request; malformed → INVALID_ARGUMENT (never a database error)."""
    if not value:
        raise InvalidArgument.field(field, "is required")
    try:
        return UUID(value)
    except (ValueError, AttributeError, TypeError):
        raise InvalidArgument.field(field, "must be a UUID") from None


def timestamp(value: datetime | None) -> timestamp_pb2.Timestamp | None:
    # Straight from the epoch seconds: Timestamp.FromDatetime is pure Python and showed up in
    # GetClient's profile. Database times are always timezone-aware.
    if value is None:
        return None
    seconds = value.timestamp()
    whole = int(seconds // 1)
    return timestamp_pb2.Timestamp(seconds=whole, nanos=value.microsecond * 1000)


def json_to_struct(value: str | dict | None) -> struct_pb2.Struct | None:
    if value is None:
        return None
    data = json.loads(value) if isinstance(value, str) else value
    if not isinstance(data, dict):
        return None
    struct = struct_pb2.Struct()
    struct.update(data)
    return struct


def mask_paths(mask: field_mask_pb2.FieldMask, allowed: Iterable[str], *, field: str = "update_mask") -> list[str]:
    """AIP-134: the masked paths, each one of `allowed`; an empty mask is an error here
    (callers must say what they change), and so is an unknown path."""
    allowed = set(allowed)
    paths = list(dict.fromkeys(mask.paths))
    if not paths:
        raise InvalidArgument.field(field, "must name the fields to update: " + ", ".join(sorted(allowed)))
    unknown = [p for p in paths if p not in allowed]
    if unknown:
        raise InvalidArgument(f"{field} has fields that cannot be updated: {', '.join(unknown)}",
                              [(f"{field}.paths", f"'{p}' is not one of: {', '.join(sorted(allowed))}")
                               for p in unknown])
    return paths


def _enum_prefix(enum) -> str:
    return enum.Name(0).removesuffix("UNSPECIFIED")


def enum_label(enum, value: int, field: str) -> str | None:
    """Proto enum value → the PostgreSQL enum label (USER_ROLE_ADMIN → 'ADMIN');
    UNSPECIFIED → None; a number the enum does not have → INVALID_ARGUMENT."""
    if value == 0:
        return None
    try:
        return enum.Name(value).removeprefix(_enum_prefix(enum))
    except ValueError:
        raise InvalidArgument.field(field, f"unknown value {value}") from None


def required_enum_label(enum, value: int, field: str) -> str:
    label = enum_label(enum, value, field)
    if label is None:
        raise InvalidArgument.field(field, "is required (UNSPECIFIED is not allowed)")
    return label


def enum_value(enum, label: str | None) -> int:
    """PostgreSQL enum label → proto enum value (None → UNSPECIFIED)."""
    return 0 if label is None else enum.Value(_enum_prefix(enum) + label)
