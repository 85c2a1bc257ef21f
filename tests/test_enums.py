"""The seed's enums, the PostgreSQL enum types and the proto enums carry the same values, in order.

Seed `enum X { A B }`  ->  PostgreSQL type `x` with labels ('A', 'B')
                       ->  proto `soulkg.<service>.v1.X` with X_UNSPECIFIED = 0, X_A = 1, X_B = 2
"""

from __future__ import annotations

import importlib
import json
import os
import re
from functools import cache
from pathlib import Path

import psycopg
import pytest

# Seed enum -> (PostgreSQL type, service whose proto package defines it).
ENUMS: dict[str, tuple[str, str]] = {
    "UserRole": ("user_role", "identity"),
    "ClientStatus": ("client_status", "crm"),
    "StatusChangedBy": ("status_changed_by", "crm"),
    "CommunicationChannel": ("communication_channel", "messaging"),
    "ConversationStatus": ("conversation_status", "messaging"),
    "ConversationManager": ("conversation_manager", "messaging"),
    "MessageDirection": ("message_direction", "messaging"),
    "MessageSender": ("message_sender", "messaging"),
    "MessageStatus": ("message_status", "messaging"),
    "WhatsAppSessionStatus": ("whatsapp_session_status", "messaging"),
    "ProductType": ("product_type", "catalog"),
    "ClientProductStatus": ("client_product_status", "catalog"),
    "TourStatus": ("tour_status", "catalog"),
    "ClientTourStatus": ("client_tour_status", "catalog"),
    "AgentType": ("agent_type", "agents"),
    "ExperimentStatus": ("experiment_status", "agents"),
    "AnalysisType": ("analysis_type", "agents"),
}


# The seed's enum labels, kept in the repository so that every clone checks the database and
# the protos against them; test_the_repository_copy_matches_the_seed_document checks this copy
# against the seed document itself wherever the document is at hand.
SEED_ENUMS_FILE = Path(__file__).parent / "data" / "seed_enums.json"


def seed_schema_path() -> Path | None:
    candidates = [Path(__file__).resolve().parents[2] / "shared" / "seed" / "database-schema.ru.md"]
    if os.environ.get("SOULKG_SEED_SCHEMA"):
        candidates.append(Path(os.environ["SOULKG_SEED_SCHEMA"]))
    return next((path for path in candidates if path.is_file()), None)


@cache
def seed_enums() -> dict[str, list[str]]:
    return json.loads(SEED_ENUMS_FILE.read_text())


def enums_of_document(path: Path) -> dict[str, list[str]]:
    """`enum Name { VALUE // comment ... }` blocks of the seed's Prisma schema, in order."""
    enums = {}
    for name, body in re.findall(r"^enum\s+(\w+)\s*\{(.*?)^\}", path.read_text(), re.M | re.S):
        lines = (line.split("//", 1)[0].strip() for line in body.splitlines())
        enums[name] = [line for line in lines if line]
    return enums


def test_the_repository_copy_matches_the_seed_document():
    path = seed_schema_path()
    if path is None:
        pytest.skip("seed document not found (../shared/seed/database-schema.ru.md or SOULKG_SEED_SCHEMA); "
                    "the other enum tests use the repository's copy, tests/data/seed_enums.json")
    assert enums_of_document(path) == seed_enums()


def upper_snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).upper()


@pytest.mark.parametrize("enum", ENUMS)
def test_seed_database_and_proto_enums_agree(database, enum):
    seed = seed_enums()
    assert sorted(seed) == sorted(ENUMS), "the seed's enums are the 17 mapped here"
    assert len(seed) == 17

    pg_type, service = ENUMS[enum]
    with psycopg.connect(database.service("crm")) as conn:
        labels = [label for (label,) in conn.execute(
            "select e.enumlabel from pg_enum e join pg_type t on t.oid = e.enumtypid"
            " where t.typname = %s and t.typnamespace = 'public'::regnamespace"
            " order by e.enumsortorder", [pg_type])]

    module = importlib.import_module(f"soulkg.{service}.v1.enums_pb2")
    descriptor = module.DESCRIPTOR.enum_types_by_name[enum]
    proto = [(value.name, value.number) for value in descriptor.values]
    prefix = upper_snake(enum)
    expected_proto = [(f"{prefix}_UNSPECIFIED", 0)] + [
        (f"{prefix}_{value}", number) for number, value in enumerate(seed[enum], start=1)]

    assert labels == seed[enum]
    assert proto == expected_proto
