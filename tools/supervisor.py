"""Keeps `make run`'s processes alive: a child that exits is started again after a growing
delay (1 s, 2 s, 4 s ... at most 30 s; back to 1 s once it has stayed up for a minute), and
each restart is said on the console. `stop()` ends them all: SIGTERM, then SIGKILL after a
grace period."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

MAX_BACKOFF_SECONDS = 30.0
STABLE_AFTER_SECONDS = 60.0


@dataclass
class Child:
    name: str
    start: Callable[[], subprocess.Popen]
    process: subprocess.Popen | None = None
    started_at: float = 0.0
    backoff: float = 1.0
    restart_at: float | None = None
    restarts: int = 0


@dataclass
class Supervisor:
    say: Callable[[str], None] = field(default=lambda text: print(text, file=sys.stderr, flush=True))
    children: dict[str, Child] = field(default_factory=dict)

    def add(self, name: str, start: Callable[[], subprocess.Popen]) -> Child:
        child = Child(name, start)
        self.children[name] = child
        self._start(child)
        return child

    def _start(self, child: Child) -> None:
        child.process = child.start()
        child.started_at = time.monotonic()
        child.restart_at = None

    def poll(self) -> None:
        """Notice exited children and restart those whose delay has passed. Call it often."""
        now = time.monotonic()
        for child in self.children.values():
            if child.restart_at is not None:
                if now >= child.restart_at:
                    child.restarts += 1
                    self.say(f"restarting {child.name} (restart {child.restarts})")
                    self._start(child)
                continue
            code = child.process.poll() if child.process else None
            if code is None:
                if now - child.started_at > STABLE_AFTER_SECONDS:
                    child.backoff = 1.0
                continue
            child.restart_at = now + child.backoff
            self.say(f"{child.name} exited with code {code}; restarting in {child.backoff:.0f}s")
            child.backoff = min(child.backoff * 2, MAX_BACKOFF_SECONDS)

    def stop(self, grace: float = 15.0) -> None:
        running = [c.process for c in self.children.values() if c.process and c.process.poll() is None]
        for process in running:
            process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        for process in running:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
