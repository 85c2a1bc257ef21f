"""The benchmark harness's arithmetic and bookkeeping, without servers or a database: groups,
ratios with their spread and verdicts, the suites' declarations, bench-compare."""

from __future__ import annotations

import json

import pytest

from bench import compare, report
from bench.harness import Compare, Workload, at_least, at_most
from bench.run import groups, suites


def test_groups_are_the_workloads_the_compares_connect():
    compares = [Compare("A", "echo"), Compare("A", "sql"), Compare("deep", "first"), Compare("A2", "A")]
    assert groups(compares) == [["A", "echo", "sql", "A2"], ["deep", "first"]]


def _pair(a: float, b: float, metric: str = "rps") -> tuple[dict, dict]:
    return ({metric: a, "errors": {}}, {metric: b, "errors": {}})


def _workloads(**errors) -> dict:
    base = {"rps": 1.0, "p50_ms": 1.0, "p99_ms": 1.0, "errors": {}}
    return {"A": {**base, "errors": errors}, "B": dict(base)}


def test_ratio_is_the_median_of_the_pairs_and_its_spread_decides_noisy():
    steady = [_pair(60, 100), _pair(61, 100), _pair(59, 100), _pair(62, 100), _pair(60, 100)]
    row = report.row(Compare("A", "B", goal=at_least(0.6)), _workloads(), steady, tolerance=0.1)
    assert row["ratio"] == pytest.approx(0.60)
    assert row["q1"] <= row["ratio"] <= row["q3"] and row["min"] == pytest.approx(0.59)
    assert row["verdict"] == "ok"
    missed = report.row(Compare("A", "B", goal=at_least(0.7)), _workloads(), steady, tolerance=0.1)
    assert missed["verdict"] == "MISSED"
    wild = [_pair(30, 100), _pair(90, 100), _pair(60, 100), _pair(45, 100), _pair(80, 100)]
    assert report.row(Compare("A", "B", goal=at_least(0.6)), _workloads(), wild, tolerance=0.1)["verdict"] == "noisy"
    assert report.row(Compare("A", "B"), _workloads(), steady, tolerance=0.1)["verdict"] == ""


def test_latency_ratios_and_errors_by_code():
    pairs = [_pair(12, 10, "p50_ms")] * 5
    row = report.row(Compare("A", "B", "p50_ms", at_most(1.3)), _workloads(ABORTED=3), pairs, tolerance=0.1)
    assert row["ratio"] == pytest.approx(1.2) and row["verdict"] == "ok"
    assert row["errors"] == {"ABORTED": 3}
    assert "errors: ABORTED 3" in report.table([row])


def test_summary_takes_medians_and_sums_errors():
    rounds = [{"rps": r, "p50_ms": 2.0, "p99_ms": 5.0, "calls": 10, "errors": {"UNAVAILABLE": 1},
               "server_us": 100.0 + r, "postgres_us": None, "generator_us": 20.0} for r in (1, 2, 3)]
    summary = report.summarize(rounds, {"UNAVAILABLE": 2, "HTTP 500": 1})
    assert summary["rps"] == 2 and summary["calls"] == 30
    assert summary["errors"] == {"UNAVAILABLE": 5, "HTTP 500": 1}
    assert summary["cpu_us_per_call"] == {"server": 102.0, "postgres": None, "generator": 20.0}


def test_every_suite_declares_compares_of_distinct_keys():
    found = {suite.name: suite for suite in suites()}
    assert {"crm", "catalog", "messaging", "login", "gateway", "agents", "experiments"} <= set(found)
    keys = [c.key for suite in found.values() for c in suite.compares]
    assert len(keys) == len(set(keys))
    assert found["experiments"].optional and not found["crm"].optional
    crm = {c.key: c for c in found["crm"].compares}
    assert crm["caller check cost"].ceiling == "GetClient, agents service token"
    assert str(crm["GetClient vs echo"].goal) == ">= 0.6"


def test_a_workload_names_its_server():
    from bench.harness import Grpc, Python

    assert Workload("x", Grpc(5000, "/a/b", b"")).server_port == 5000
    assert Workload("x", Python("m:f", {})).server_port is None
    assert Workload("x", Python("m:f", {}), server=6000).server_port == 6000


def test_bench_compare_puts_two_runs_side_by_side(tmp_path, monkeypatch, capsys):
    def run(name: str, ratio: float) -> dict:
        return {"run": name, "git": {"commit": "abc", "dirty": False}, "machine": {"cores": 2, "cpu_model": "X"},
                "load_before": [0.5], "load_after": [1.0], "postgres": {"fsync": "off"}, "versions": {},
                "timing": {"rounds": 6, "seconds": 0.8}, "table": [
                    {"key": "GetClient vs echo", "label": "GetClient vs echo", "ratio": ratio, "goal": ">= 0.6",
                     "verdict": "MISSED", "workload": "GetClient", "ceiling": "echo"},
                    {"key": "keyset deep / first", "label": "", "ratio": 1.0, "note": "(latency)", "verdict": "",
                     "workload": "keyset deep", "ceiling": "first"}]}

    monkeypatch.setattr(compare, "RESULTS", tmp_path)
    (tmp_path / "2026-01-01-000000-abc.json").write_text(json.dumps(run("one", 0.40)))
    (tmp_path / "2026-01-02-000000-def.json").write_text(json.dumps(run("two", 0.50)))
    assert compare.main([]) == 0
    out = capsys.readouterr().out
    line = next(line for line in out.splitlines() if line.startswith("GetClient vs echo"))
    assert "0.40" in line and "0.50" in line and "+25%" in line and "<<" in line
    assert out.index("headline ratios") < out.index("GetClient vs echo") < out.index("the other ratios")
    assert compare.resolve("01-02").name == "2026-01-02-000000-def.json"
    with pytest.raises(SystemExit):
        compare.resolve("2026")  # two files match
