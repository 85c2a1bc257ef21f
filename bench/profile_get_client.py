"""Where GetClient's time goes: py-spy samples the crm server while the load generator
drives GetClient, then prints the hottest functions (own time and total time).

    python -m bench.profile_get_client [seconds]     (needs py-spy; root or ptrace rights)
"""

from __future__ import annotations

import collections
import json
import os
import subprocess
import sys
import tempfile
import uuid

from bench import dataset
from bench.harness import Servers, free_port
from bench.run import DATA, ENV, LOGS
from libs.tenancy.tokens import generate_key_pair, load_signer
from soulkg.crm.v1 import crm_pb2


def main() -> int:
    seconds = int(sys.argv[1]) if len(sys.argv) > 1 else 8
    ds = dataset.prepare(DATA)
    keys = DATA / "keys"
    if not (keys / "current").exists():
        generate_key_pair(keys)
    token, _ = load_signer(keys).issue(organization_id=ds.big_org, subject=str(ds.big_org_admin), role="ADMIN",
                                       ttl_seconds=3600)
    import asyncio

    import asyncpg

    async def one_id():
        conn = await asyncpg.connect(ds.urls.admin)
        try:
            return await conn.fetchval("SELECT id FROM clients WHERE organization_id = $1 LIMIT 1", ds.big_org)
        finally:
            await conn.close()

    client_id = asyncio.run(one_id())
    log_dir = LOGS / "profile"
    log_dir.mkdir(parents=True, exist_ok=True)
    servers = Servers(log_dir, ENV)
    out = tempfile.NamedTemporaryFile(suffix=".txt", delete=False).name
    try:
        port = free_port()
        servers.start("crm", ["-m", "services.crm.server"], {
            **ENV, "SOULKG_KEYS_DIR": str(keys), "SOULKG_DATABASE_URL": ds.urls.service("crm"),
            "SOULKG_PAGE_TOKEN_SECRET": uuid.uuid4().hex, "SOULKG_PORT": str(port)}, port)
        pid = servers.processes[-1].pid
        config = {"factory": "bench.loadgen:grpc_fixed", "concurrency": 16, "spec": {
            "target": f"127.0.0.1:{port}", "method": "/soulkg.crm.v1.ClientService/GetClient", "token": token,
            "request_hex": crm_pb2.GetClientRequest(id=str(client_id)).SerializeToString().hex()}}
        load = subprocess.Popen([sys.executable, "-m", "bench.loadgen", json.dumps(config)], env=ENV,
                                stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
        load.stdin.write(json.dumps({"warmup": 1, "seconds": seconds + 2}) + "\n")
        load.stdin.flush()
        subprocess.run(["py-spy", "record", "--pid", str(pid), "--duration", str(seconds), "--rate", "250",
                        "--format", "raw", "--output", out, "--nonblocking"], check=True, capture_output=True)
        load.stdin.close()
        load.wait()
    finally:
        servers.stop()
        ds.server.stop()
    own: collections.Counter[str] = collections.Counter()
    total: collections.Counter[str] = collections.Counter()
    samples = 0
    for line in open(out):
        stack, _, count = line.rstrip().rpartition(" ")
        frames = stack.split(";")
        n = int(count)
        samples += n
        own[frames[-1]] += n
        for frame in set(frames):
            total[frame] += n
    os.unlink(out)
    print(f"{samples} samples; top own time:")
    for frame, n in own.most_common(25):
        print(f"  {100 * n / samples:5.1f}%  {frame}")
    print("top total time (inclusive):")
    for frame, n in total.most_common(40):
        print(f"  {100 * n / samples:5.1f}%  {frame}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
