"""make run's supervisor: a crashed child is started again after a growing delay, said on the
console; stop() ends every child."""

from __future__ import annotations

import subprocess
import sys
import time

from tools import supervisor as supervision
from tools.supervisor import Supervisor


def _sleeper() -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])


def _poll_until(sup: Supervisor, predicate, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sup.poll()
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_a_crashed_child_is_restarted_with_growing_delays_and_said(monkeypatch):
    said: list[str] = []
    sup = Supervisor(say=said.append)
    child = sup.add("crm", _sleeper)
    try:
        first = child.process
        first.kill()
        assert _poll_until(sup, lambda: child.process is not first and child.process.poll() is None)
        assert said[0].startswith("crm exited with code") and "restarting in 1s" in said[0]
        assert said[1] == "restarting crm (restart 1)"
        second = child.process
        second.kill()
        assert _poll_until(sup, lambda: len(said) >= 3)
        assert "restarting in 2s" in said[2]  # the delay grows
    finally:
        sup.stop(grace=2)
    assert child.process.poll() is not None


def test_the_delay_resets_after_a_stable_run(monkeypatch):
    monkeypatch.setattr(supervision, "STABLE_AFTER_SECONDS", 0.0)
    sup = Supervisor(say=lambda _: None)
    child = sup.add("crm", _sleeper)
    try:
        child.backoff = 8.0
        sup.poll()  # up for longer than STABLE_AFTER_SECONDS
        assert child.backoff == 1.0
    finally:
        sup.stop(grace=2)


def test_stop_terminates_every_child():
    sup = Supervisor(say=lambda _: None)
    children = [sup.add(name, _sleeper) for name in ("identity", "crm")]
    sup.stop(grace=5)
    assert all(c.process.poll() is not None for c in children)
