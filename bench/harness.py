"""What a workload module declares, and how bench/run.py measures it.

A workload module (`bench/<something>.py` with a module-level `SUITE`) declares:

    SUITE = Suite(
        name="catalog",
        compares=[  # the rows of the table: a workload, the ceiling it is measured against, a goal
            Compare("BookTour, many tours", "BookTour SQL via asyncpg, many tours", note="(write path)"),
        ],
        setup=setup,  # setup(bench: Bench) -> list[Workload]: starts its servers, makes its data
    )

and `setup` returns one `Workload` per name the compares use, each with its driver:

- `Grpc(port, method, request, token)`: one fixed request, driven by h2load (C, HTTP/2) when it
  is installed (the generator that leaves the server the most CPU), else by bench/loadgen.py;
- `HttpGet(port, path, token)`: one fixed HTTP/1.1 GET (h2load --h1, else bench/loadgen.py);
- `Python(factory, spec)`: `factory` ("module:function") builds the workload in a separate
  load-generator process (bench/loadgen.py); anything needing a different body per request,
  SQL ceilings, or a workload that measures itself.

bench/run.py finds every module with a `SUITE`, calls the setups, and measures each compare
as alternating pairs: after a warm-up, `rounds` pairs of the workload and its ceiling run back
to back, A B then B A, ... so that the drift of a shared machine reaches both sides alike. A
compare's ratio is the median of its pairs' ratios, with their spread; a spread wider than the
tolerance prints `noisy` instead of a verdict. The workloads the compares connect form a group
whose load generators live through all its pairs. Every round also records the CPU time per
call of the server the workload loads, of PostgreSQL and of the load generator.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
H2LOAD_CONNECTIONS = 4


# --- declarations ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Goal:
    op: str  # ">=" or "<="
    value: float
    note: str = ""  # "(needs a free core)"

    def met(self, ratio: float) -> bool:
        return ratio >= self.value if self.op == ">=" else ratio <= self.value

    def __str__(self) -> str:
        return f"{self.op} {self.value:g}" + (f" {self.note}" if self.note else "")


def at_least(value: float, note: str = "") -> Goal:
    return Goal(">=", value, note)


def at_most(value: float, note: str = "") -> Goal:
    return Goal("<=", value, note)


@dataclass(frozen=True)
class Compare:
    """A row of the table: `workload`'s `metric` divided by `ceiling`'s, round by round."""

    workload: str
    ceiling: str
    metric: str = "rps"  # "rps" (throughput), "p50_ms" (latency), "server_us" (server CPU per call)
    goal: Goal | None = None
    note: str = ""  # what the ratio means when it has no goal: "(database path)"
    label: str = ""  # the ratio's own name, if it has one ("caller check cost")

    @property
    def key(self) -> str:
        """The row's name in result files and `make bench-compare`."""
        return self.label or f"{self.workload} / {self.ceiling}" + (f" ({self.metric})" if self.metric == "server_us"
                                                                    else "")


@dataclass(frozen=True)
class Grpc:
    port: int
    method: str  # "/soulkg.crm.v1.ClientService/GetClient"
    request: bytes  # the serialized request message
    token: str | None = None


@dataclass(frozen=True)
class HttpGet:
    port: int
    path: str
    token: str | None = None


@dataclass(frozen=True)
class Python:
    factory: str  # "bench.crm_bench:create_client": async (spec) -> bench.loadgen.Load
    spec: dict = field(default_factory=dict)


Driver = Grpc | HttpGet | Python


@dataclass(frozen=True)
class Workload:
    name: str
    driver: Driver
    concurrency: int | None = None  # requests in flight, when not the run's (--concurrency)
    server: int | None = None  # the port of the server it loads, for its CPU (default: a Grpc/HttpGet's port)
    seconds: float | None = None  # a longer measured window for a slow workload (its pairs use it on both sides)
    # Further results the same driver measures in each round, by name (messaging's fan-out
    # measures its streams and a bare LISTEN connection from the same commits).
    also: tuple[str, ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        return (self.name, *self.also)

    @property
    def server_port(self) -> int | None:
        return self.server or getattr(self.driver, "port", None)


class Unavailable(Exception):  # noqa: N818 - a state, not a failure
    """Raised by a setup when what it measures is not on this branch (a service not merged
    yet): the run says so and goes on without the suite's rows."""


@dataclass(frozen=True)
class Suite:
    name: str
    compares: tuple[Compare, ...] | list[Compare]
    setup: Callable[[Bench], Iterable[Workload]]
    after: Callable[[Bench], None] | None = None  # checks once the load is over
    optional: bool = False  # measured only when asked for by name (--suite): experiments
    needs: tuple[str, ...] = ()  # suites whose workloads its compares name (set up first)


# --- the run's context -----------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Servers:
    """Processes the run starts; each writes stdout and stderr to its own log file."""

    def __init__(self, log_dir: Path, env: dict) -> None:
        self.log_dir = log_dir
        self.env = env  # the environment of every process the run starts
        self.processes: list[subprocess.Popen] = []
        self.by_port: dict[int, subprocess.Popen] = {}

    def log_file(self, label: str) -> Path:
        return self.log_dir / f"{re.sub(r'[^A-Za-z0-9.-]+', '-', label).strip('-')}.log"

    def popen(self, label: str, args: list[str], env: dict, **kwargs) -> subprocess.Popen:
        with open(self.log_file(label), "ab") as log:
            proc = subprocess.Popen([sys.executable, *args], cwd=REPO, env=env, stdout=kwargs.pop("stdout", log),
                                    stderr=log, **kwargs)
        self.processes.append(proc)
        return proc

    def start(self, label: str, args: list[str], env: dict, port: int, *, ready: Callable[[int], bool] | None = None,
              timeout: float = 60.0) -> int:
        """Start a server and wait until `ready(port)` (default: gRPC health SERVING)."""
        from libs.server.probe import wait_serving

        proc = self.popen(label, args, env)
        check = ready or (lambda p: wait_serving(p, timeout=timeout))
        if not check(port) or proc.poll() is not None:
            raise RuntimeError(f"{label} did not start: see {self.log_file(label)}")
        self.by_port[port] = proc
        return port

    def stop(self) -> None:
        for proc in self.processes:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.processes:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
        self.processes.clear()


def port_open(port: int, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return True
        time.sleep(0.1)
    return False


@dataclass
class Bench:
    """What a suite's setup gets: the data set, tokens, and servers that log to the run's files."""

    ds: Any  # bench.dataset.Dataset
    keys: Path
    data_dir: Path
    servers: Servers
    concurrency: int
    quick: bool
    page_secret: str
    shared: dict = field(default_factory=dict)  # what one suite makes for another
    _services: dict = field(default_factory=dict)

    @property
    def env(self) -> dict:
        return self.servers.env

    @property
    def org(self) -> str:
        return str(self.ds.big_org)

    @property
    def admin(self) -> str:
        """The big organization's admin: a real user (the caller check reads the row)."""
        return str(self.ds.big_org_admin)

    def token(self) -> str:
        from libs.tenancy.tokens import load_signer

        return load_signer(self.keys).issue(organization_id=self.ds.big_org, subject=self.admin, role="ADMIN",
                                            ttl_seconds=3600)[0]

    def service_token(self, service: str) -> str:
        from libs.tenancy.context import PRINCIPAL_SERVICE
        from libs.tenancy.tokens import load_signer

        return load_signer(self.keys).issue(organization_id=self.ds.big_org, subject=f"service:{service}",
                                            kind=PRINCIPAL_SERVICE, ttl_seconds=3600)[0]

    def service_env(self, name: str) -> dict:
        """The environment of a server of `name`: the run's keys and page-token secret, and
        its own database role when the registry gives it one."""
        from libs import registry

        env = {**self.env, "SOULKG_KEYS_DIR": str(self.keys), "SOULKG_PAGE_TOKEN_SECRET": self.page_secret,
               "SOULKG_DB_POOL_SIZE": "10"}
        if name in registry.BY_NAME:
            env["SOULKG_DATABASE_URL"] = self.ds.urls.service(name)
        return env

    def service(self, name: str, *, label: str | None = None, module: str | None = None, **env: str) -> int:
        """A service's server as its own process (its own database role unless `env` says
        otherwise), started once per label and shared by every suite that asks for it."""
        from libs import registry

        label = label or name
        if label not in self._services:
            port = free_port()
            self._services[label] = self.servers.start(
                label, ["-m", module or registry.service(name).module],
                {**self.service_env(name), "SOULKG_PORT": str(port), **env}, port)
        return self._services[label]

    def start(self, label: str, args: list[str], *, env: dict | None = None,
              ready: Callable[[int], bool] | None = None) -> int:
        """Any other server: `args` after the interpreter and `env` values may say "{port}",
        a free port the server is then waited on (`ready`: default gRPC health SERVING)."""
        port = free_port()
        return self.servers.start(label, [arg.replace("{port}", str(port)) for arg in args],
                                  {k: v.replace("{port}", str(port)) for k, v in (env or self.env).items()},
                                  port, ready=ready)


# --- CPU per call ----------------------------------------------------------------------------
# Where a call's time goes, measured so that other work on a shared machine barely moves it:
# the CPU time the server, PostgreSQL and the load generator spend per call (the kernel's
# per-thread run time, /proc/<pid>/task/<tid>/schedstat, in nanoseconds).

def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            ppid = int(stat[stat.rindex(")") + 2:].split()[1])
            tree.setdefault(ppid, []).append(int(entry.name))
    return tree


def process_tree(root: int) -> list[int]:
    tree, found, todo = _children(), [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(tree.get(pid, ()))
    return found


def cpu_ns(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            for task in Path(f"/proc/{pid}/task").iterdir():
                total += int((task / "schedstat").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            continue  # gone, or no schedstat here
    return total


def postmaster_pid(pgdata: Path) -> int | None:
    try:
        return int((pgdata / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


class CpuMeter:
    """CPU nanoseconds of the server a workload loads, of PostgreSQL and of its generator."""

    def __init__(self, server_pid: int | None, postmaster: int | None, generator_pid: int | None) -> None:
        self.roots = {"server": server_pid, "postgres": postmaster, "generator": generator_pid}

    def sample(self) -> dict[str, int]:
        """Each process tree is walked again: PostgreSQL backends come and go with pools."""
        import resource

        children = resource.getrusage(resource.RUSAGE_CHILDREN)  # h2load, once it has exited
        values = {name: cpu_ns(process_tree(root)) if root else 0 for name, root in self.roots.items()}
        values["reaped"] = int((children.ru_utime + children.ru_stime) * 1e9)
        return values

    @staticmethod
    def per_call(before: dict[str, int], after: dict[str, int], calls: float, generator_reaped: bool) -> dict:
        def us(key: str) -> float | None:
            return round((after[key] - before[key]) / calls / 1000, 1) if calls > 0 else None

        return {"server_us": us("server") if before["server"] or after["server"] else None,
                "postgres_us": us("postgres"), "generator_us": us("reaped" if generator_reaped else "generator")}


# --- running the drivers ---------------------------------------------------------------------

def h2load_available() -> bool:
    return shutil.which("h2load") is not None


class H2Load:
    """A fixed request from h2load, a fresh h2load process per round. h2load reads no gRPC
    trailers, so its failures are HTTP-level only (non-200 answers, broken streams); the gRPC
    status of the request is checked through grpcio before the first round and after the last."""

    def __init__(self, workload: Workload, concurrency: int, log: Path) -> None:
        self.workload, self.concurrency, self.log = workload, concurrency, log
        self.driver = workload.driver
        self.errors: Counter[str] = Counter()
        self.tmp = tempfile.TemporaryDirectory()
        args, url = [], ""
        if isinstance(self.driver, Grpc):
            body = Path(self.tmp.name) / "body"
            body.write_bytes(b"\x00" + len(self.driver.request).to_bytes(4, "big") + self.driver.request)
            args = ["-c", str(H2LOAD_CONNECTIONS), "-m", str(max(1, concurrency // H2LOAD_CONNECTIONS)),
                    "--data", str(body), "-H", "content-type: application/grpc", "-H", "te: trailers"]
            url = f"http://127.0.0.1:{self.driver.port}{self.driver.method}"
        else:  # HttpGet: one request in flight per connection, as a browser or a proxy does
            args = ["--h1", "-c", str(concurrency), "-m", "1", "-H", "accept: application/json"]
            url = f"http://127.0.0.1:{self.driver.port}{self.driver.path}"
        if self.driver.token:
            args += ["-H", f"authorization: Bearer {self.driver.token}"]
        self.args, self.url = args, url
        self.generator = "h2load" if isinstance(self.driver, Grpc) else "h2load --h1"
        self.pid = None  # a new h2load each round: its CPU is counted once it has exited

    def start(self) -> None:
        self.check("before")

    def check(self, when: str) -> None:
        code = check_once(self.driver)
        if code != "OK":
            self.errors[code] += 1
            with open(self.log, "a") as out:
                out.write(f"{self.workload.name}: check through a real client {when} the rounds: {code}\n")

    def round(self, warmup: float, seconds: float) -> dict:
        record = Path(self.tmp.name) / "requests.log"
        out = subprocess.run(
            ["h2load", "-t", "1", *self.args, "-D", f"{round(seconds * 1000)}ms",
             f"--warm-up-time={round(warmup * 1000)}ms", f"--log-file={record}", self.url],
            capture_output=True, text=True)
        with open(self.log, "a") as log:
            log.write(f"--- {self.workload.name}\n{out.stdout}{out.stderr}")
        if out.returncode != 0:
            raise RuntimeError(f"h2load failed for {self.workload.name}: see {self.log}")
        # The request log: start, HTTP status (0: still in flight when the window closed, not
        # a failure), microseconds.
        lines = [line.split("\t") for line in record.read_text().splitlines() if line]
        errors: Counter[str] = Counter(f"HTTP {fields[1]}" for fields in lines if fields[1] not in ("0", "200"))
        failed = int(re.search(r"(\d+) failed", out.stdout).group(1))
        errored = int(re.search(r"(\d+) errored", out.stdout).group(1))
        if failed + errored > sum(errors.values()):
            errors["HTTP failed"] += failed + errored - sum(errors.values())
        latencies = sorted(int(fields[2]) / 1000 for fields in lines if fields[1] == "200")
        from bench.loadgen import percentile

        rps = float(re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", out.stdout).group(1))
        return {self.workload.name: {"rps": rps, "p50_ms": percentile(latencies, 0.5),
                                     "p99_ms": percentile(latencies, 0.99), "calls": len(latencies),
                                     "errors": dict(errors)}}

    def stop(self) -> dict[str, dict[str, int]]:
        self.check("after")
        self.tmp.cleanup()
        return {self.workload.name: dict(self.errors)}


def check_once(driver: Driver) -> str:
    """One request through a real client: "OK" or its error code (`NOT_FOUND:CLIENT_NOT_FOUND`)."""
    if isinstance(driver, Grpc):
        import grpc

        from bench.loadgen import bearer, error_code

        with grpc.insecure_channel(f"127.0.0.1:{driver.port}") as channel:
            try:
                channel.unary_unary(driver.method)(driver.request, metadata=bearer(driver.token), timeout=10)
            except grpc.RpcError as exc:
                return error_code(exc)
        return "OK"
    headers = {"authorization": f"Bearer {driver.token}"} if driver.token else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{driver.port}{driver.path}",
                                                           headers=headers), timeout=10):
            return "OK"
    except urllib.error.HTTPError as exc:
        return f"HTTP {exc.code}"


class PythonGenerator:
    """bench/loadgen.py in its own process, kept for every round of the group."""

    def __init__(self, workload: Workload, concurrency: int, servers: Servers) -> None:
        self.workload = workload
        driver = workload.driver
        if isinstance(driver, Grpc):
            factory, spec = "bench.loadgen:grpc_fixed", {
                "target": f"127.0.0.1:{driver.port}", "method": driver.method, "request_hex": driver.request.hex(),
                "token": driver.token}
        elif isinstance(driver, HttpGet):
            factory, spec = "bench.loadgen:http_get", {"port": driver.port, "path": driver.path, "token": driver.token}
        else:
            factory, spec = driver.factory, driver.spec
        self.generator = "python " + factory
        config = {"factory": factory, "spec": spec, "concurrency": concurrency}
        self.log = servers.log_file(f"loadgen {workload.name}")
        self.proc = servers.popen(f"loadgen {workload.name}", ["-m", "bench.loadgen", json.dumps(config)],
                                  servers.env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.pid = self.proc.pid

    def _read(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the load generator of {self.workload.name} stopped: see {self.log}")
        return json.loads(line)

    def start(self) -> None:
        self._read()  # {"ready": true}

    def round(self, warmup: float, seconds: float) -> dict:
        self.proc.stdin.write(json.dumps({"warmup": warmup, "seconds": seconds}) + "\n")
        self.proc.stdin.flush()
        result = self._read()
        return result if set(result) <= set(self.workload.names) else {self.workload.name: result}

    def stop(self) -> dict[str, dict[str, int]]:
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        return {}


def runner(workload: Workload, concurrency: int, servers: Servers, use_h2load: bool):
    concurrency = workload.concurrency or concurrency
    if use_h2load and isinstance(workload.driver, Grpc | HttpGet):
        return H2Load(workload, concurrency, servers.log_file("h2load"))
    return PythonGenerator(workload, concurrency, servers)
