"""`make bench-compare A B`: two result files side by side, every ratio with its change.

    python -m bench.compare [A [B]]

A and B are result files (a path, or any part of a name in bench/results/: a date, a commit,
`latest`); with one, it is compared with the latest run; with none, the two latest runs.
The facts that make two runs comparable (cores, CPU, load, PostgreSQL's durability settings,
versions, commit) come first; a ratio that moved by more than 10% is marked `<<`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
MOVED = 0.10


def history() -> list[Path]:
    return sorted(p for p in RESULTS.glob("*.json") if p.name != "latest.json")


def resolve(name: str) -> Path:
    path = Path(name)
    if path.is_file():
        return path
    if name == "latest":
        return RESULTS / "latest.json"
    matches = [p for p in history() if name in p.name]
    if not matches:
        raise SystemExit(f"no result file matches {name!r} in bench/results/")
    if len(matches) > 1:
        raise SystemExit(f"{name!r} matches {len(matches)} result files: " + ", ".join(p.name for p in matches))
    return matches[0]


def _facts(report: dict) -> dict[str, str]:
    machine, pg, versions = report.get("machine", {}), report.get("postgres", {}), report.get("versions", {})
    timing = report.get("timing", {})
    return {
        "run": report.get("run", report.get("date", "?")),
        "commit": f"{report.get('git', {}).get('commit', '?')}{' (dirty)' if report.get('git', {}).get('dirty') else ''}",
        "cores / CPU": f"{machine.get('cores', report.get('cores', '?'))} / {machine.get('cpu_model', '?')}",
        "load before → after": f"{_load(report.get('load_before'))} → {_load(report.get('load_after'))}",
        "rounds × seconds": f"{timing.get('rounds', '?')} × {timing.get('seconds', '?')}"
                            + (" (quick)" if report.get("quick") else ""),
        "PostgreSQL": f"{pg.get('version', '?')} fsync={pg.get('fsync', '?')} "
                      f"synchronous_commit={pg.get('synchronous_commit', '?')} shared_buffers={pg.get('shared_buffers', '?')}",
        "python / grpcio / asyncpg": " / ".join(str(versions.get(k, "?")) for k in ("python", "grpcio", "asyncpg")),
    }


def _load(values) -> str:
    return " ".join(f"{v:.2f}" for v in values[:1]) if values else "?"


def rows(report: dict) -> dict[str, dict]:
    return {row.get("key") or f"{row['workload']} / {row['ceiling']}": row for row in report.get("table", [])}


def compare(a: dict, b: dict) -> str:
    lines = []
    fa, fb = _facts(a), _facts(b)
    width = max(len(v) for v in fa.values())
    for key in fa:
        lines.append(f"{key:<26} {fa[key]:<{width}}  {fb[key]}")
    ra, rb = rows(a), rows(b)
    keys = list(dict.fromkeys([*ra, *rb]))
    headlines = [k for k in keys if (ra.get(k) or rb.get(k)).get("label")]  # the named ratios
    kw = max(len(k) for k in keys) if keys else 10
    for title, chosen in (("headline ratios", headlines), ("the other ratios", [k for k in keys if k not in headlines])):
        lines += ["", f"{title:<{kw}} {'A':>7} {'B':>7} {'change':>8}  goal / verdicts (A, B)", "-" * (kw + 60)]
        lines += [_line(key, ra.get(key), rb.get(key), kw) for key in chosen]
    return "\n".join(lines)


def _line(key: str, x: dict | None, y: dict | None, kw: int) -> str:
    va, vb = (x or {}).get("ratio"), (y or {}).get("ratio")
    change = f"{(vb - va) / va:+.0%}" if va and vb else ""
    moved = "<<" if va and vb and abs(vb - va) / va > MOVED else ""
    goal = (x or y).get("goal") or (x or y).get("note") or ""
    verdicts = ", ".join(r.get("verdict") or "-" if r else "absent" for r in (x, y))
    return f"{key:<{kw}} {_fmt(va):>7} {_fmt(vb):>7} {change:>8} {moved:2} {goal} ({verdicts})"


def _fmt(value) -> str:
    return f"{value:.2f}" if isinstance(value, int | float) else "-"


def main(argv: list[str]) -> int:
    if len(argv) > 2:
        raise SystemExit("usage: python -m bench.compare [A [B]]")
    if len(argv) == 2:
        paths = [resolve(argv[0]), resolve(argv[1])]
    elif len(argv) == 1:
        paths = [resolve(argv[0]), RESULTS / "latest.json"]
    else:
        runs = history()
        if len(runs) < 2:
            raise SystemExit("fewer than two runs in bench/results/: make bench first")
        paths = runs[-2:]
    a, b = (json.loads(p.read_text()) for p in paths)
    print(f"A: {paths[0].name}\nB: {paths[1].name}\n")
    print(compare(a, b))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
