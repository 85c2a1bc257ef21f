"""libs/validation: JSON objects and text fields give a clear INVALID_ARGUMENT naming the field."""

from __future__ import annotations

import json

import pytest

from libs.errors import InvalidArgument
from libs.validation import MAX_JSON_BYTES, json_object_text, optional_text


@pytest.mark.parametrize("number", [float("nan"), float("inf"), float("-inf")])
def test_nan_and_infinity_are_refused_naming_the_field(number):
    with pytest.raises(InvalidArgument) as caught:
        json_object_text({"a": {"b": [1, number]}}, "client.metadata")
    assert caught.value.violations[0][0] == "client.metadata"


def test_the_size_cap_counts_utf8_bytes_not_escapes():
    cyrillic = {"note": "я" * 5000}  # 10,000 bytes of UTF-8; 30,000 as \\u escapes
    assert json.loads(json_object_text(cyrillic, "f")) == cyrillic
    with pytest.raises(InvalidArgument):
        json_object_text({"note": "я" * (MAX_JSON_BYTES // 2)}, "f")


def test_nul_characters_are_refused_naming_the_field():
    for call in (lambda: json_object_text({"a": "x\x00y"}, "client.metadata"),
                 lambda: optional_text("Ai\x00bek", "client.first_name")):
        with pytest.raises(InvalidArgument) as caught:
            call()
        assert "NUL" in caught.value.violations[0][1]
