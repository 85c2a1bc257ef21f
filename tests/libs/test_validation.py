"""libs/validation.py without a database: phones (phonenumbers), emails, masks, violations."""

from __future__ import annotations

import unicodedata

import pytest

from libs.errors import InvalidArgument
from libs.validation import Violations, mask_paths, normalize_email, normalize_phone, parse_uuid
from tests.helpers import new_phone
from tools import demo_data


@pytest.mark.parametrize("typed,e164", [
    ("+996555123456", "+996555123456"),
    ("+996 555-12 34 56", "+996555123456"),
    ("+996 (555) 12.34.56", "+996555123456"),
    (" +1 415 555 0009 ", "+14155550009"),
    ("+44 (0)20 7946 0958", "+442079460958"),  # the national trunk 0 is dropped
    ("+4915100000005", "+4915100000005"),
])
def test_phones_are_e164(typed, e164):
    assert normalize_phone(typed) == e164


@pytest.mark.parametrize("typed", [
    "", "996555123456", "+996 555 abc", "+1 800 FLOWERS", "++996555123456", "+996555123456 ext. 7",
    "+0996555123456", "+999555123456",  # no such country code
    "+99655", "+9965551234567890",  # too short, too long for Kyrgyzstan
    "+1 555 0100",  # a local-only number
])
def test_anything_else_is_refused(typed):
    with pytest.raises(InvalidArgument) as caught:
        normalize_phone(typed, "client.phone")
    assert caught.value.violations[0][0] == "client.phone"


def test_every_phone_the_tests_and_the_demo_use_passes():
    phones = [client.phone for client in demo_data.CLIENTS] + [p[1] for p in demo_data.PARTNERS]
    phones += [new_phone() for _ in range(50)]  # what the crm tests create clients with
    for phone in phones:
        assert normalize_phone(phone) == phone


def test_email_is_trimmed_composed_and_lowercased():
    typed = " " + unicodedata.normalize("NFD", "Zoë@Example.COM") + " "
    assert normalize_email(typed) == unicodedata.normalize("NFC", "zoë@example.com")
    with pytest.raises(InvalidArgument):
        normalize_email("nope", "user.email")


def test_mask_paths():
    assert mask_paths(["b", "a", "b"], ["a", "b"]) == ["b", "a"]
    for paths, field in (([], "update_mask"), (["*"], "update_mask.paths"), (["a", "z"], "update_mask.paths")):
        with pytest.raises(InvalidArgument) as caught:
            mask_paths(paths, ["a", "b"])
        assert caught.value.violations[0][0] == field


def test_violations_are_collected_and_raised_together():
    violations = Violations()
    assert violations.check(parse_uuid, "nope", "a") is None
    assert violations.check(normalize_phone, "+996555123456") == "+996555123456"
    violations.add("b", "is wrong")
    with pytest.raises(InvalidArgument) as caught:
        violations.raise_if_any("invalid request")
    assert [field for field, _ in caught.value.violations] == ["a", "b"]
    Violations().raise_if_any("nothing to say")
