"""Wire ↔ Python conversions every servicer needs: ids, times, JSON structs, field masks."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime

from google.protobuf import field_mask_pb2, json_format, struct_pb2, timestamp_pb2

from libs import validation
from libs.errors import InvalidArgument
from libs.validation import parse_uuid

__all__ = ["enum_label", "enum_value", "json_to_struct", "mask_paths", "parse_uuid", "required_enum_label",
           "timestamp"]


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
    """AIP-134 on a FieldMask message: see libs.validation.mask_paths (REQUIRED, no `*`)."""
    return validation.mask_paths(mask.paths, allowed, field=field)


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


def struct_to_dict(struct: struct_pb2.Struct, field: str) -> dict:
    """A google.protobuf.Struct as a plain dict. A Struct can hold NaN or an infinity, which
    JSON (and so jsonb) cannot: INVALID_ARGUMENT naming the field, not a converter's error."""
    try:
        return json_format.MessageToDict(struct)
    except ValueError:
        raise InvalidArgument.field(field, "must not contain NaN or infinite numbers") from None
