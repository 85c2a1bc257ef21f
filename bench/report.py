"""The numbers of a run: per-round results → medians, ratios with their spread, verdicts; the
machine's facts; the table; the result files (bench/results/<date>-<commit>.json and
latest.json)."""

from __future__ import annotations

import json
import math
import os
import platform
import subprocess
from collections import Counter
from importlib import metadata
from pathlib import Path
from statistics import median, quantiles

from bench.harness import REPO, Compare

RESULTS = REPO / "bench" / "results"


# --- statistics ------------------------------------------------------------------------------

def summarize(rounds: list[dict], extra_errors: dict[str, int] | None = None) -> dict:
    """A workload's medians over its rounds and every error of the run, by code."""
    errors: Counter[str] = Counter(extra_errors or {})
    for r in rounds:
        errors.update(r.get("errors", {}))

    def mid(key: str) -> float:
        values = [r[key] for r in rounds if not math.isnan(r[key])]
        return median(values) if values else float("nan")

    def cpu(key: str) -> float | None:
        values = [r[key] for r in rounds if r.get(key) is not None]
        return round(median(values), 1) if values else None

    return {"rps": mid("rps"), "p50_ms": mid("p50_ms"), "p99_ms": mid("p99_ms"),
            "cpu_us_per_call": {k: cpu(f"{k}_us") for k in ("server", "postgres", "generator")},
            "calls": sum(r.get("calls", 0) for r in rounds), "errors": dict(errors), "rounds": rounds}


def spread_of(ratios: list[float]) -> dict:
    """Median, quartiles (inclusive method: defined from 2 values up), min and max; `spread`
    is the interquartile range relative to the median."""
    mid = median(ratios)
    q1, _, q3 = quantiles(ratios, n=4, method="inclusive") if len(ratios) > 1 else (mid, mid, mid)
    return {"ratio": mid, "q1": q1, "q3": q3, "min": min(ratios), "max": max(ratios),
            "spread": (q3 - q1) / mid if mid else float("inf")}


def row(compare: Compare, workloads: dict[str, dict], pairs: list[tuple[dict, dict]], tolerance: float) -> dict:
    """A compare's ratio: the median of its pairs' ratios (workload / ceiling, each pair run
    back to back), their spread and the verdict."""
    w, c = workloads[compare.workload], workloads[compare.ceiling]
    ratios = [a[compare.metric] / b[compare.metric] for a, b in pairs
              if a.get(compare.metric) is not None and b.get(compare.metric)
              and not math.isnan(a[compare.metric]) and not math.isnan(b[compare.metric])]
    stats = spread_of(ratios) if ratios else {"ratio": float("nan"), "q1": float("nan"), "q3": float("nan"),
                                              "min": float("nan"), "max": float("nan"), "spread": float("inf")}
    if stats["spread"] > tolerance:
        verdict = "noisy"
    elif compare.goal is not None:
        verdict = "ok" if compare.goal.met(stats["ratio"]) else "MISSED"
    else:
        verdict = ""
    errors = Counter(w["errors"]) + Counter(c["errors"])
    return {"key": compare.key, "workload": compare.workload, "ceiling": compare.ceiling, "metric": compare.metric,
            "goal": str(compare.goal) if compare.goal else None, "note": compare.note, "label": compare.label,
            "ratios": ratios, **stats, "verdict": verdict, "errors": dict(errors),
            "rps": w["rps"], "p50_ms": w["p50_ms"], "p99_ms": w["p99_ms"],
            "ceiling_rps": c["rps"], "ceiling_p50_ms": c["p50_ms"],
            "ceiling_server_us": (c.get("cpu_us_per_call") or {}).get("server")}


# --- the table -------------------------------------------------------------------------------

def errors_text(errors: dict[str, int]) -> str:
    return ", ".join(f"{code} {n}" for code, n in sorted(errors.items(), key=lambda item: -item[1]))


def table(rows: list[dict]) -> str:
    width = max([34, *(len(r["workload"]) for r in rows)])
    cwidth = max([30, *(len(r["ceiling"]) for r in rows)])
    header = (f"{'workload':<{width}} {'req/s':>7} {'p50 ms':>7} {'p99 ms':>7}  {'vs ceiling':<{cwidth}} "
              f"{'ceiling':>9} {'ratio':>6} {'IQR':>11}  goal")
    lines = [header, "-" * len(header)]
    for r in rows:
        figure = {"rps": f"{r['ceiling_rps']:.0f}/s", "p50_ms": f"{r['ceiling_p50_ms']:.2f}ms",
                  "server_us": f"{r.get('ceiling_server_us') or 0:.0f}us"}[r["metric"]]
        iqr = f"{r['q1']:.2f}-{r['q3']:.2f}"
        goal = " ".join(part for part in (r["goal"] or r["note"], r["verdict"]) if part)
        if r["label"]:
            goal += f"  [{r['label']}]"
        if r["errors"]:
            goal += f"  errors: {errors_text(r['errors'])}"
        lines.append(f"{r['workload']:<{width}} {r['rps']:>7.0f} {r['p50_ms']:>7.2f} {r['p99_ms']:>7.2f}  "
                     f"{r['ceiling']:<{cwidth}} {figure:>9} {r['ratio']:>6.2f} {iqr:>11}  {goal}")
    return "\n".join(lines)


def cpu_table(workloads: dict[str, dict]) -> str:
    """CPU per call: where a call's time goes, figures a busy machine moves much less than
    the throughput."""
    width = max(len(name) for name in workloads)
    lines = [f"{'workload':<{width}} {'server':>8} {'Postgres':>9} {'generator':>10}   (CPU us per call, median of rounds)"]
    for name, w in workloads.items():
        cpu = w.get("cpu_us_per_call") or {}
        server, postgres, generator = (f"{cpu[k]:.0f}" if cpu.get(k) is not None else "-"
                                       for k in ("server", "postgres", "generator"))
        lines.append(f"{name:<{width}} {server:>8} {postgres:>9} {generator:>10}")
    return "\n".join(lines)


# --- facts -----------------------------------------------------------------------------------

def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_gb() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return None


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def machine() -> dict:
    return {"cores": os.cpu_count(), "cpu_model": _cpu_model(), "arch": platform.machine(),
            "memory_gb": _memory_gb(), "kernel": platform.release()}


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def versions(h2load: bool) -> dict:
    found = {"python": platform.python_version(),
             **{name: _version(name) for name in ("grpcio", "asyncpg", "protobuf", "structlog")}}
    if h2load:
        out = subprocess.run(["h2load", "--version"], capture_output=True, text=True).stdout.split()
        found["h2load"] = out[-1] if out else None
    return found


async def postgres(admin_url: str) -> dict:
    import asyncpg

    conn = await asyncpg.connect(admin_url)
    try:
        facts = {"version": await conn.fetchval("SHOW server_version")}
        for name in ("fsync", "synchronous_commit", "full_page_writes", "shared_buffers", "max_connections",
                     "work_mem", "effective_cache_size"):
            facts[name] = await conn.fetchval(f"SHOW {name}")
        return facts
    finally:
        await conn.close()


def git() -> dict:
    def run(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True).stdout.strip()

    return {"commit": run("rev-parse", "--short=10", "HEAD") or "unknown",
            "dirty": bool(run("status", "--porcelain", "--untracked-files=no"))}


# --- files -----------------------------------------------------------------------------------

def write(report: dict) -> Path:
    RESULTS.mkdir(exist_ok=True)
    name = (f"{report['run']}-{report['git']['commit']}{'-dirty' if report['git']['dirty'] else ''}"
            f"{'-quick' if report['quick'] else ''}.json")
    text = json.dumps(report, indent=2, default=str)
    (RESULTS / name).write_text(text)
    (RESULTS / "latest.json").write_text(text)
    return RESULTS / name
