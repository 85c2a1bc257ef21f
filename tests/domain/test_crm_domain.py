"""crm's rules without a database: validation of every request, status-change actors, the
agreement between the domain's lists and the repository's SQL for them."""

from __future__ import annotations

import uuid

import pytest

from libs.errors import FailedPrecondition, InvalidArgument, PermissionDenied
from services.crm import domain, repository
from services.crm.domain import ClientFields, CreateClient, PhoneContact, UpdateClient


def violations(exc: pytest.ExceptionInfo) -> set[str]:
    return {field for field, _ in exc.value.violations}


# --- create ------------------------------------------------------------------------------------

def test_create_normalises_and_keeps_only_given_fields():
    new = domain.validate_create(CreateClient(ClientFields(
        phone="+996 (555) 12-34.56", email=" Traveller@Example.com ", first_name="  Aibek ",
        preferred_language="RU", cultural_context={"halal": True}, assigned_partner_id=str(uuid.UUID(int=1)))))
    assert new.values == {"phone": "+996555123456", "email": "traveller@example.com", "first_name": "Aibek",
                          "preferred_language": "ru", "cultural_context": '{"halal": true}',
                          "assigned_partner_id": uuid.UUID(int=1)}
    assert new.request_id is None


def test_create_reports_every_violation_at_once():
    with pytest.raises(InvalidArgument) as caught:
        domain.validate_create(CreateClient(
            ClientFields(phone="bad", email="bad", preferred_language="xx", assigned_partner_id="nope",
                         metadata={"blob": "x" * 20_000}, status="SOLD"), request_id="not-a-uuid"))
    assert violations(caught) == {"client.phone", "client.email", "client.preferred_language",
                                  "client.assigned_partner_id", "client.metadata", "client.status", "request_id"}


def test_create_takes_a_request_id():
    request_id = uuid.uuid4()
    new = domain.validate_create(CreateClient(ClientFields(phone="+996555123456"), str(request_id)))
    assert new.request_id == request_id


@pytest.mark.parametrize("email,language", [("", None), ("   ", ""), (None, "  ")])
def test_blank_optional_values_are_left_out(email, language):
    new = domain.validate_create(CreateClient(ClientFields(phone="+996555123456", email=email,
                                                           preferred_language=language)))
    assert new.values == {"phone": "+996555123456"}


# --- update ------------------------------------------------------------------------------------

def _update(paths, **fields) -> UpdateClient:
    return UpdateClient(str(uuid.UUID(int=7)), ClientFields(**fields), tuple(paths), etag="abc")


def test_update_takes_masked_fields_and_clears_unset_ones():
    update = domain.validate_update(_update(["first_name", "email", "first_name"], first_name="New"))
    assert update.id == uuid.UUID(int=7) and update.etag == "abc"
    assert update.changes == {"first_name": "New", "email": None}


@pytest.mark.parametrize("paths,field", [
    ([], "update_mask"), (["*"], "update_mask.paths"), (["nope"], "update_mask.paths"),
    (["status"], "update_mask"), (["id"], "update_mask.paths"), (["etag"], "update_mask.paths"),
])
def test_update_mask_rules(paths, field):
    with pytest.raises(InvalidArgument) as caught:
        domain.validate_update(_update(paths))
    assert field in violations(caught)


def test_update_reports_the_mask_the_id_and_the_values_at_once():
    with pytest.raises(InvalidArgument) as caught:
        domain.validate_update(UpdateClient("12345", ClientFields(phone="bad"), ("phone", "status", "nope")))
    assert violations(caught) == {"client.id", "client.phone", "update_mask", "update_mask.paths"}


def test_contact_for_get_or_create():
    assert domain.validate_contact(PhoneContact("+996 555 123 456", first_name=" Wa ", preferred_language="")) == {
        "phone": "+996555123456", "first_name": "Wa"}
    with pytest.raises(InvalidArgument) as caught:
        domain.validate_contact(PhoneContact("abc", preferred_language="xx"))
    assert violations(caught) == {"phone", "preferred_language"}


# --- lists -------------------------------------------------------------------------------------

@pytest.mark.parametrize("order_by,expected", [
    ("", ("create_time", True, "create_time desc")),
    ("  Update_Time   DESC ", ("update_time", True, "update_time desc")),
    ("create_time", ("create_time", False, "create_time")),
])
def test_order_by(order_by, expected):
    assert domain.parse_order_by(order_by) == expected


@pytest.mark.parametrize("order_by", ["phone desc", "create_time sideways", "id"])
def test_bad_order_by(order_by):
    with pytest.raises(InvalidArgument):
        domain.parse_order_by(order_by)


def test_the_repository_has_sql_for_every_field_the_domain_names():
    assert tuple(repository.FILTER_FIELDS) == domain.FILTERABLE
    assert set(repository.WRITABLE) == set(domain.WRITABLE)
    assert {field for field, _ in domain.ORDERINGS.values()} == set(repository.ORDER_COLUMNS)
    assert domain.DEFAULT_ORDER in domain.ORDERINGS


# --- status changes ----------------------------------------------------------------------------

@pytest.mark.parametrize("is_user,requested,agent,expected", [
    (True, None, None, ("HUMAN", None)),
    (True, "HUMAN", None, ("HUMAN", None)),
    (False, None, None, ("SYSTEM", None)),
    (False, "SYSTEM", None, ("SYSTEM", None)),
    (False, "AI", "QUALIFICATION", ("AI", "QUALIFICATION")),
])
def test_status_change_actor(is_user, requested, agent, expected):
    assert domain.status_change_actor(is_user, requested, agent) == expected


@pytest.mark.parametrize("is_user,requested,agent,error", [
    (True, "AI", "QUALIFICATION", PermissionDenied),
    (True, "SYSTEM", None, PermissionDenied),
    (True, None, "QUALIFICATION", InvalidArgument),
    (False, "HUMAN", None, PermissionDenied),
    (False, "AI", None, InvalidArgument),
    (False, "SYSTEM", "QUALIFICATION", InvalidArgument),
])
def test_status_change_actor_refusals(is_user, requested, agent, error):
    with pytest.raises(error) as caught:
        domain.status_change_actor(is_user, requested, agent)
    if error is PermissionDenied:
        assert caught.value.reason == "CHANGED_BY_NOT_ALLOWED"


def test_status_change_validation_collects_violations():
    request = domain.ChangeStatus(uuid.UUID(int=1), None, "x" * (domain.MAX_REASON + 1), "AI", None)
    with pytest.raises(InvalidArgument) as caught:
        domain.validate_status_change(request, caller_is_user=False)
    assert violations(caught) == {"status", "agent_type", "reason"}
    change = domain.validate_status_change(domain.ChangeStatus(uuid.UUID(int=1), "SOLD", "  ", None, None), True)
    assert (change.status, change.reason, change.changed_by, change.agent_type) == ("SOLD", None, "HUMAN", None)


def test_same_status_is_a_failed_precondition():
    domain.check_status_change("NEW_LEAD", "QUALIFIED")
    with pytest.raises(FailedPrecondition) as caught:
        domain.check_status_change("SOLD", "SOLD")
    assert caught.value.reason == "STATUS_UNCHANGED"


def test_who_the_first_history_row_names():
    user = uuid.uuid4()
    assert domain.creation_actor(user) == ("HUMAN", user)
    assert domain.creation_actor(None) == ("SYSTEM", None)


def test_constraint_errors():
    assert domain.phone_taken().reason == "PHONE_TAKEN"
    assert domain.unknown_reference("prompt_variant_id").violations[0][0] == "client.prompt_variant_id"
