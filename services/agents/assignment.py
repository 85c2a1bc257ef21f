"""Deterministic, weighted assignment of a client to an experiment's variant. Pure, no I/O.

A client's point is the first 8 bytes of SHA-256(experiment id bytes || client id bytes),
a 64-bit integer spread uniformly; scaled to the sum of the weights it falls into one
variant's stretch of the cumulative weights, the variants in the order of their ids. So the
same (experiment, client) gives the same variant in every process, on every machine and
after every restart (no Python `hash()`, which is salted per process), and two processes
assigning one client at the same time pick the same variant without asking each other.
Different experiments hash the same client independently.

What makes an assignment sticky when the weights change is its recorded row
(experiment_assignments), not this function: with new weights the function may give an
old client another variant, and the record wins.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from uuid import UUID


def point(experiment_id: UUID, client_id: UUID) -> int:
    """The client's 64-bit point in this experiment."""
    digest = hashlib.sha256(experiment_id.bytes + client_id.bytes).digest()
    return int.from_bytes(digest[:8], "big")


def unit(experiment_id: UUID, client_id: UUID) -> float:
    """The point as a number in [0, 1)."""
    return point(experiment_id, client_id) / 2**64


def choose(experiment_id: UUID, client_id: UUID, weights: Sequence[tuple[UUID, int]]) -> UUID:
    """The variant for the client: variant i with probability weight_i / sum(weights).
    Variants with weight 0 are never chosen. Integer arithmetic throughout (no rounding
    at the stretch boundaries)."""
    ordered = sorted(((variant, weight) for variant, weight in weights if weight > 0), key=lambda vw: vw[0].bytes)
    total = sum(weight for _, weight in ordered)
    if total <= 0:
        raise ValueError("no variant has a positive weight")
    target = (point(experiment_id, client_id) * total) >> 64  # uniform in [0, total)
    cumulative = 0
    for variant, weight in ordered:
        cumulative += weight
        if target < cumulative:
            return variant
    raise AssertionError("unreachable: target < total")
