"""`make bench`: every workload next to the ceiling it cannot beat, in interleaved rounds.

Sets up its own data (bench/dataset.py: 1,000,000 clients, COPY-loaded, kept in .data/bench),
finds every workload module (a `SUITE` in bench/*.py: see bench/harness.py), lets each start
its servers (separate processes, logging to .data/bench/logs/<run>/), measures every compare
as alternating pairs of rounds (a workload and its ceiling back to back), prints one table and
writes it with the machine's facts to bench/results/<date>-<commit>.json and latest.json.

    python -m bench.run [--quick] [--suite NAME ...] [--only REGEX] [--rounds N] [--seconds S] [--cpu]
    python -m bench.run --suite experiments --cpu      where GetClient's time goes (not in make bench)
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import pkgutil
import re
import secrets
import shutil
import sys
import time
import warnings
from collections import defaultdict
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "gen" / "python")]
warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")  # pgserver's import, on machines without one

import bench  # noqa: E402
from bench import dataset, harness, report  # noqa: E402
from bench.harness import Bench, Compare, Python, Servers, Suite, Unavailable, Workload, runner  # noqa: E402

DATA = REPO / ".data" / "bench"
LOGS = DATA / "logs"
KEEP_LOGS = 10  # runs whose logs are kept
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "gen" / "python")]),
       "SOULKG_LOG_LEVEL": "INFO", "PYTHONWARNINGS": "ignore::UserWarning:platformdirs"}
FULL = {"rounds": 8, "seconds": 0.5, "settle": 0.15, "warmup": 0.5}
QUICK = {"rounds": 2, "seconds": 0.4, "settle": 0.2, "warmup": 0.3}
TOLERANCE = 0.10  # a ratio whose interquartile range is wider than this (relative) is noisy


def suites() -> list[Suite]:
    """Every module of bench/ that declares a SUITE, crm's first."""
    found = []
    for info in pkgutil.iter_modules(bench.__path__):
        source = (Path(bench.__path__[0]) / f"{info.name}.py").read_text()
        if re.search(r"^SUITE\b", source, re.MULTILINE):
            found.append(importlib.import_module(f"bench.{info.name}").SUITE)
    return sorted(found, key=lambda suite: (suite.name != "crm", suite.name))


def groups(compares: list[Compare]) -> list[list[str]]:
    """The workloads the compares connect, each group in the order the compares name them."""
    parent: dict[str, str] = {}

    def root(name: str) -> str:
        while parent.setdefault(name, name) != name:
            name = parent[name]
        return name

    for compare in compares:
        parent[root(compare.workload)] = root(compare.ceiling)
    members: dict[str, list[str]] = defaultdict(list)
    for compare in compares:
        for name in (compare.workload, compare.ceiling):
            if name not in members[root(name)]:
                members[root(name)].append(name)
    return list(members.values())


def measure(group: list[Workload], compares: list[Compare], bench: Bench, timing: dict,
            use_h2load: bool) -> tuple[dict, dict, dict]:
    """Each compare's workload and ceiling in alternating pairs: after a warm-up, `rounds`
    pairs, A B then B A, ... A group's load generators live through all its compares.
    Returns {compare key: [(workload result, ceiling result)]}, {name: [every result]} and
    {name: errors outside the rounds}."""
    by_name = {name: w for w in group for name in w.names}
    runners = {w.name: runner(w, bench.concurrency, bench.servers, use_h2load) for w in group}
    pairs: dict[str, list[tuple[dict, dict]]] = defaultdict(list)
    results: dict[str, list[dict]] = defaultdict(list)
    extra: dict[str, dict] = {}
    postmaster = harness.postmaster_pid(bench.ds.server.pgdata)
    warm: set[str] = set()

    def once(workload: Workload, seconds: float) -> dict[str, dict]:
        each = runners[workload.name]
        before = meters[workload.name].sample()
        measured = each.round(timing["settle"], seconds)
        after = meters[workload.name].sample()
        calls = {name: r["rps"] * (timing["settle"] + seconds) for name, r in measured.items()}  # about
        return {name: {**r, **harness.CpuMeter.per_call(before, after, calls[name], each.pid is None)}
                for name, r in measured.items()}

    try:
        for each in runners.values():
            each.start()
        meters = {}
        for w in group:
            server = bench.servers.by_port.get(w.server_port)
            meters[w.name] = harness.CpuMeter(server.pid if server else None, postmaster, runners[w.name].pid)
        sides_of: dict[tuple[str, str], list[Compare]] = defaultdict(list)  # one set of pairs, several metrics
        for compare in compares:
            sides_of[compare.workload, compare.ceiling].append(compare)
        for (workload_name, ceiling_name), same in sides_of.items():
            a, b = by_name[workload_name], by_name[ceiling_name]
            sides = [a] if a is b else [a, b]  # one driver may measure both (messaging's fan-out)
            seconds = max([timing["seconds"], *(w.seconds or 0 for w in sides)])
            for w in sides:
                if w.name not in warm:
                    once(w, timing["warmup"])
                    warm.add(w.name)
            for index in range(timing["rounds"]):
                got: dict[str, dict] = {}
                for w in (sides if index % 2 == 0 else sides[::-1]):
                    got.update(once(w, seconds))
                for compare in same:
                    pairs[compare.key].append((got[workload_name], got[ceiling_name]))
                for name, result in got.items():
                    results[name].append(result)
    finally:
        for each in runners.values():
            extra.update(each.stop())
    return pairs, results, extra


def _prune_logs() -> None:
    runs = sorted(p for p in LOGS.iterdir() if p.is_dir())
    for old in runs[:-KEEP_LOGS]:
        shutil.rmtree(old, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="two short rounds: a smoke run")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rounds", type=int, help="measured rounds per group")
    parser.add_argument("--seconds", type=float, help="measured seconds per workload and round")
    parser.add_argument("--tolerance", type=float, default=TOLERANCE,
                        help="widest interquartile range of a ratio, relative to it, that is not 'noisy'")
    parser.add_argument("--suite", action="append", default=[],
                        help="only these suites (repeat); names optional suites (experiments) too")
    parser.add_argument("--only", help="only the rows whose workload, ceiling or label matches this regex")
    parser.add_argument("--python-loadgen", action="store_true",
                        help="drive the fixed-request workloads with the Python generator even when h2load is here")
    parser.add_argument("--list", action="store_true", help="list the suites and their rows, measure nothing")
    parser.add_argument("--cpu", action="store_true", help="print the CPU per call of every workload too "
                        "(always in the result file)")
    args = parser.parse_args()
    timing = dict(QUICK if args.quick else FULL)
    timing.update({k: v for k, v in (("rounds", args.rounds), ("seconds", args.seconds)) if v})

    chosen = [s for s in suites() if (s.name in args.suite if args.suite else not s.optional)]
    unknown = set(args.suite) - {s.name for s in suites()}
    if unknown:
        parser.error(f"no suite named {', '.join(sorted(unknown))}")
    pattern = re.compile(args.only) if args.only else None
    compares = {suite.name: [c for c in suite.compares
                             if not pattern or any(pattern.search(t) for t in (c.workload, c.ceiling, c.key))]
                for suite in chosen}
    chosen = [s for s in chosen if compares[s.name]]
    if args.list:
        for suite in chosen:
            print(f"{suite.name}:" + "".join(f"\n  {c.key}" for c in compares[suite.name]))
        return 0

    run = datetime.now().strftime("%Y-%m-%d-%H%M%S")
    log_dir = LOGS / run
    log_dir.mkdir(parents=True)
    _prune_logs()
    use_h2load = harness.h2load_available() and not args.python_loadgen
    facts = {"run": run, "date": datetime.now().isoformat(timespec="seconds"), "git": report.git(),
             "machine": report.machine(), "load_before": report.load_average(),
             "versions": report.versions(use_h2load)}
    print(f"run {run}: {facts['machine']['cores']} cores ({facts['machine']['cpu_model']}), "
          f"load average {' '.join(map(str, facts['load_before']))}, commit {facts['git']['commit']}"
          f"{' (with uncommitted changes)' if facts['git']['dirty'] else ''}")
    print(f"logs: {log_dir.relative_to(REPO)}/ (one file per server and load generator); "
          f"PostgreSQL's: {(DATA / 'postgres.log').relative_to(REPO)}", flush=True)

    started = time.monotonic()
    ds = dataset.prepare(DATA)
    keys = DATA / "keys"
    if not (keys / "current").exists():
        from libs.tenancy.tokens import generate_key_pair

        generate_key_pair(keys)
    facts["postgres"] = asyncio.run(report.postgres(ds.urls.admin))
    print(f"data set ready in {time.monotonic() - started:.0f}s; PostgreSQL {facts['postgres']['version']}, fsync "
          f"{facts['postgres']['fsync']}, synchronous_commit {facts['postgres']['synchronous_commit']}", flush=True)

    servers = Servers(log_dir, ENV)
    bench_ = Bench(ds=ds, keys=keys, data_dir=DATA, servers=servers, concurrency=args.concurrency,
                   quick=args.quick, page_secret=secrets.token_urlsafe(32))
    rounds: dict[str, list[dict]] = {}
    pairs: dict[str, list[tuple[dict, dict]]] = {}
    extra: dict[str, dict] = {}
    generators: dict[str, str] = {}
    try:
        declared: dict[str, Workload] = {}
        needed = [s for s in suites() if s not in chosen and any(s.name in c.needs for c in chosen)]
        for suite in [*needed, *list(chosen)]:
            try:
                workloads = list(suite.setup(bench_))
            except Unavailable as why:
                print(f"{suite.name}: not measured ({why})", flush=True)
                if suite in chosen:
                    chosen.remove(suite)
                continue
            declared.update((workload.name, workload) for workload in workloads)
        by_name = {name: w for w in declared.values() for name in w.names}
        selected = [c for suite in chosen for c in compares[suite.name]]
        missing = {n for c in selected for n in (c.workload, c.ceiling)} - set(by_name)
        if missing:
            raise SystemExit(f"compares name workloads no setup returned: {', '.join(sorted(missing))}")
        plan = []  # (workloads, compares) per group of workloads the compares connect
        for names in groups(selected):
            # a driver may measure several names: it runs once per round
            members = [declared[name] for name in dict.fromkeys(by_name[n].name for n in names)]
            plan.append((members, [c for c in selected if c.workload in names]))
        print(f"servers up in {time.monotonic() - started:.0f}s; measuring {len(selected)} ratios of "
              f"{sum(len(m) for m, _ in plan)} workloads: each a workload and its ceiling in {timing['rounds']} "
              f"alternating pairs of {timing['seconds']:g} s rounds after a warm-up, {args.concurrency} requests "
              "in flight", flush=True)
        for number, (group, group_compares) in enumerate(plan, 1):
            began = time.monotonic()
            dataset.settle(ds)
            group_pairs, results, errors = measure(group, group_compares, bench_, timing, use_h2load)
            pairs.update(group_pairs)
            rounds.update(results)
            extra.update(errors)
            for workload in group:
                for name in workload.names:
                    generators[name] = "h2load" if use_h2load and not isinstance(workload.driver, Python) \
                        else "python (bench/loadgen.py)"
            print(f"  [{number}/{len(plan)}] {', '.join(w.name for w in group)}: {time.monotonic() - began:.0f}s",
                  flush=True)
        for suite in chosen:
            if suite.after is not None:
                suite.after(bench_)
        facts["load_after"] = report.load_average()
    finally:
        servers.stop()
        ds.server.stop()

    workloads = {name: {**report.summarize(r, extra.get(name)), "generator": generators.get(name)}
                 for name, r in rounds.items()}
    rows = [report.row(c, workloads, pairs[c.key], args.tolerance) for suite in chosen for c in compares[suite.name]]
    print(f"\nratio: the median of {timing['rounds']} per-pair ratios (a workload and its ceiling run back to "
          f"back), IQR their interquartile range;\n'noisy' when the IQR is wider than {args.tolerance:.0%} of the "
          "ratio; req/s and ms: medians of the workload's rounds\n")
    print(report.table(rows))
    if args.cpu:
        print("\n" + report.cpu_table(workloads))
    elapsed = time.monotonic() - started
    path = report.write({**facts, "elapsed_s": round(elapsed), "concurrency": args.concurrency, "timing": timing,
                         "quick": args.quick, "tolerance": args.tolerance, "read_generator":
                         "h2load" if use_h2load else "python", "suites": [s.name for s in chosen],
                         "table": rows, "workloads": workloads})
    print(f"\nload average before {' '.join(map(str, facts['load_before']))}, after "
          f"{' '.join(map(str, facts['load_after']))}; {elapsed:.0f}s in all")
    print(f"written: {path.relative_to(REPO)} and bench/results/latest.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
