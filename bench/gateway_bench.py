"""GetClient through the gateway (HTTP/1.1 + JSON) next to the same call over gRPC, in the same
`make bench` run: the gRPC call is the gateway's ceiling (the gateway makes exactly that call).

Load generator: **h2load --h1** (HTTP/1.1; `concurrency` connections with one request in flight
each, no pipelining, so the same 16 requests are in flight as in the gRPC workloads). Without
h2load (or with --python-loadgen), this module runs as its own process as a wrk-like
generator: closed loop over raw keep-alive sockets, one pre-encoded request, responses read by
Content-Length; no HTTP library on the hot path.

    python -m bench.gateway_bench '<json spec>'   → prints one JSON result line (as bench.loadgen)
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from statistics import median

REPO = Path(__file__).resolve().parents[1]


def start_gateway(servers, env: dict, crm_port: int, port: int) -> int:
    """The gateway as its own process, in front of the benchmark's crm."""
    servers.processes.append(subprocess.Popen(
        [sys.executable, "-m", "services.gateway.server"], cwd=REPO,
        env={**env, "SOULKG_PORT": str(port), "SOULKG_SERVICE_ADDRESSES": json.dumps({"crm": f"127.0.0.1:{crm_port}"})}))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/openapi.json", timeout=1):
                return port
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"gateway on {port} did not start")


def check_get(port: int, path: str, token: str) -> dict:
    """One request first: h2load counts any HTTP status as a success."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers={"authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def run_h2load(port: int, path: str, token: str, concurrency: int, timing: dict) -> dict:
    rounds = []
    with tempfile.TemporaryDirectory() as tmp:
        for index in range(timing["rounds"]):
            log = Path(tmp) / f"log{index}"
            out = subprocess.run(
                ["h2load", "--h1", "-c", str(concurrency), "-m", "1", "-t", "1",
                 "-D", str(max(1, round(timing["seconds"]))), f"--warm-up-time={max(1, round(timing['warmup']))}",
                 "-H", f"authorization: Bearer {token}", f"--log-file={log}", f"http://127.0.0.1:{port}{path}"],
                capture_output=True, text=True, check=True).stdout
            rps = float(re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", out).group(1))
            failed = int(re.search(r"(\d+) failed", out).group(1))
            lines = [line.split("\t") for line in log.read_text().splitlines() if line]
            failed += sum(1 for fields in lines if fields[1] != "200")
            latencies = sorted(int(fields[2]) / 1000 for fields in lines)
            rounds.append({"rps": rps, "p50_ms": latencies[len(latencies) // 2],
                           "p99_ms": latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))],
                           "errors": failed})
    return _summary(rounds, "h2load --h1")


def run_python(port: int, path: str, token: str, concurrency: int, timing: dict) -> dict:
    spec = {"port": port, "path": path, "token": token, "concurrency": concurrency, **timing}
    out = subprocess.run([sys.executable, "-m", "bench.gateway_bench", json.dumps(spec)], cwd=REPO,
                         capture_output=True, text=True, check=True)
    rounds = json.loads(out.stdout.strip().splitlines()[-1])
    errors = rounds.pop()["errors"]
    summary = _summary(rounds, "python raw HTTP/1.1 keep-alive")
    summary["errors"] = errors
    return summary


def _summary(rounds: list[dict], generator: str) -> dict:
    return {"rps": median(r["rps"] for r in rounds), "p50_ms": median(r["p50_ms"] for r in rounds),
            "p99_ms": median(r["p99_ms"] for r in rounds), "errors": sum(r.get("errors", 0) for r in rounds),
            "rounds": rounds, "generator": generator}


def workloads(servers, env: dict, crm_port: int, gateway_port: int, client_id: str, token: str,
              concurrency: int, timing: dict, use_h2load: bool) -> dict:
    """{"GetClient via gateway (HTTP/JSON)": result}: bench/run.py's hook."""
    port = start_gateway(servers, env, crm_port, gateway_port)
    path = f"/v1/clients/{client_id}"
    assert check_get(port, path, token)["id"] == client_id
    run = run_h2load if use_h2load else run_python
    result = run(port, path, token, concurrency, timing)
    name = "GetClient via gateway (HTTP/JSON)"
    print(f"  {name:<38} {result['rps']:>9.0f} req/s  p50 {result['p50_ms']:7.2f} ms  "
          f"p99 {result['p99_ms']:7.2f} ms  errors {result['errors']}", flush=True)
    return {name: result}


# --- the Python generator (a separate process) ------------------------------------------------

async def _http_workload(spec: dict) -> list[dict]:
    from bench.loadgen import _closed_loop

    request = (f"GET {spec['path']} HTTP/1.1\r\nhost: 127.0.0.1:{spec['port']}\r\n"
               f"authorization: Bearer {spec['token']}\r\naccept: application/json\r\n\r\n").encode()
    connections = [await asyncio.open_connection("127.0.0.1", spec["port"]) for _ in range(spec["concurrency"])]
    failures = [0]

    async def call(index: int) -> None:
        reader, writer = connections[index]
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 200"):
            failures[0] += 1
        length = int(re.search(rb"(?i)\r\ncontent-length: *(\d+)", head).group(1))
        await reader.readexactly(length)

    results = await _closed_loop(call, spec["concurrency"], spec["warmup"], spec["rounds"], spec["seconds"])
    results[-1]["errors"] += failures[0]
    for _, writer in connections:
        writer.close()
    return results


def main() -> None:
    print(json.dumps(asyncio.run(_http_workload(json.loads(sys.argv[1])))))


if __name__ == "__main__":
    main()
