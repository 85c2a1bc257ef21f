"""Assignment of clients to variants (services/agents/assignment.py), without a database:
deterministic across processes, faithful to the weights over 10,000 synthetic clients (a
chi-square test with a fixed seed), blind to the order the variants are listed in."""

from __future__ import annotations

import json
import math
import os
import random
import subprocess
import sys
import uuid
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.agents.assignment import choose, point, unit

ROOT = Path(__file__).resolve().parents[2]


def _ids(seed: int, count: int) -> list[uuid.UUID]:
    rng = random.Random(seed)
    return [uuid.UUID(int=rng.getrandbits(128), version=4) for _ in range(count)]


EXPERIMENT = uuid.UUID("6f1c1f0e-8c1a-4a43-9d55-3f2d0c1b7a11")
A, B, C = (uuid.UUID(int=n) for n in (1, 2, 3))


def test_the_same_client_gets_the_same_variant_in_another_process():
    """Another interpreter, with another hash seed: the same 200 answers (nothing depends on
    Python's salted hash() or on process state)."""
    clients = _ids(1, 200)
    weights = [(A, 50), (B, 30), (C, 20)]
    here = [str(choose(EXPERIMENT, client, weights)) for client in clients]
    script = ("import json, sys, uuid; from services.agents.assignment import choose\n"
              "clients, weights = json.load(sys.stdin)\n"
              "print(json.dumps([str(choose(uuid.UUID(sys.argv[1]), uuid.UUID(c), "
              "[(uuid.UUID(v), w) for v, w in weights])) for c in clients]))")
    there = subprocess.run(
        [sys.executable, "-c", script, str(EXPERIMENT)], input=json.dumps(
            [[str(c) for c in clients], [[str(v), w] for v, w in weights]]),
        capture_output=True, text=True, check=True, cwd=ROOT,
        env={**os.environ, "PYTHONHASHSEED": "12345", "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'gen' / 'python'}"})
    assert json.loads(there.stdout) == here


def test_a_known_point_never_changes():
    """The hash is part of the contract: a stored assignment and a fresh computation must agree
    across versions of this code. (SHA-256 of the two ids' 32 bytes, first 8 bytes big-endian.)"""
    import hashlib

    client = uuid.UUID("00000000-0000-4000-8000-000000000001")
    digest = hashlib.sha256(EXPERIMENT.bytes + client.bytes).digest()
    assert point(EXPERIMENT, client) == int.from_bytes(digest[:8], "big")
    assert 0 <= unit(EXPERIMENT, client) < 1


@pytest.mark.parametrize("weights", [[50, 50], [50, 30, 20], [1, 1, 1, 7], [90, 10]])
def test_weights_hold_over_10000_synthetic_clients(weights):
    """Chi-square goodness of fit of the counts against the weights, computed here; with a
    fixed seed the test is deterministic, and a correct assignment passes it with
    probability 0.999 per weight set (critical values below)."""
    variants = [uuid.UUID(int=n + 1) for n in range(len(weights))]
    clients = _ids(2026, 10_000)
    counts = Counter(choose(EXPERIMENT, client, list(zip(variants, weights, strict=True))) for client in clients)
    total = sum(weights)
    statistic = sum((counts[v] - 10_000 * w / total) ** 2 / (10_000 * w / total)
                    for v, w in zip(variants, weights, strict=True))
    critical_at_0_001 = {1: 10.828, 2: 13.816, 3: 16.266}[len(weights) - 1]
    assert statistic < critical_at_0_001, (counts, statistic)
    for v, w in zip(variants, weights, strict=True):  # and each share within 1.5 points
        assert abs(counts[v] / 10_000 - w / total) < 0.015


def test_points_are_uniform():
    """Ten equal bins of 10,000 points: chi-square with 9 degrees of freedom below 27.877 (0.001)."""
    bins = Counter(int(unit(EXPERIMENT, client) * 10) for client in _ids(7, 10_000))
    assert sum((bins[b] - 1000) ** 2 / 1000 for b in range(10)) < 27.877


def test_experiments_assign_independently():
    """The same clients in two experiments at 50/50: the four combinations each near a quarter."""
    other = uuid.UUID("a0000000-0000-4000-8000-000000000000")
    pairs = Counter((choose(EXPERIMENT, c, [(A, 1), (B, 1)]), choose(other, c, [(A, 1), (B, 1)]))
                    for c in _ids(3, 10_000))
    assert sum((n - 2500) ** 2 / 2500 for n in pairs.values()) < 16.266  # 3 degrees of freedom, 0.001


def test_a_variant_with_weight_zero_gets_nobody():
    clients = _ids(4, 2000)
    assert {choose(EXPERIMENT, c, [(A, 0), (B, 3), (C, 1)]) for c in clients} == {B, C}
    assert {choose(EXPERIMENT, c, [(A, 0), (B, 1)]) for c in clients} == {B}
    with pytest.raises(ValueError):
        choose(EXPERIMENT, clients[0], [(A, 0), (B, 0)])


@given(st.lists(st.integers(0, 1000), min_size=2, max_size=6).filter(lambda w: sum(w) > 0), st.uuids(),
       st.randoms(use_true_random=False))
def test_the_order_the_variants_are_listed_in_does_not_matter(weights, client, rng):
    pairs = [(uuid.UUID(int=n + 1), w) for n, w in enumerate(weights)]
    shuffled = list(pairs)
    rng.shuffle(shuffled)
    chosen = choose(EXPERIMENT, client, pairs)
    assert chosen == choose(EXPERIMENT, client, shuffled)
    assert dict(pairs)[chosen] > 0


def test_raising_a_weight_moves_only_clients_towards_it():
    """From 50/50 to 25/75 the clients that change variant all move to B: the stretches are
    laid out in id order, so A's stretch shrinks and nobody goes from B to A. (The recorded
    assignment keeps even those clients where they were: tests/test_agents.py.)"""
    clients = _ids(5, 5000)
    before = {c: choose(EXPERIMENT, c, [(A, 50), (B, 50)]) for c in clients}
    after = {c: choose(EXPERIMENT, c, [(A, 25), (B, 75)]) for c in clients}
    moved = [c for c in clients if before[c] != after[c]]
    assert moved and all(before[c] == A and after[c] == B for c in moved)
    assert math.isclose(len(moved) / 5000, 0.25, abs_tol=0.03)
