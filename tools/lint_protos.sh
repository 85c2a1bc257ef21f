#!/usr/bin/env bash
# Lint the protos under protos/ with buf (config: buf.yaml at the repo root).
#
# google/api, google/rpc and google/type protos are not committed: they are
# copied from the installed googleapis-common-protos package into
# build/proto-deps/ (git-ignored), a second buf module excluded from lint.
# google/protobuf well-known types are built into buf.
#
# Environment:
#   PYTHON  interpreter with googleapis-common-protos (default: .venv/bin/python,
#           else python3)
#   BUF     buf command (default: npx --yes @bufbuild/buf@<BUF_VERSION>)
# Checks: buf lint (STANDARD minus two AIP exceptions), buf format, and a
# google.api.http annotation on every RPC. Exits non-zero on any problem.
set -euo pipefail

BUF_VERSION=1.75.0
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

if [[ -z "${PYTHON:-}" ]]; then
  if [[ -x .venv/bin/python ]]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
if [[ -n "${BUF:-}" ]]; then
  read -r -a buf_cmd <<<"$BUF"
else
  buf_cmd=(npx --yes "@bufbuild/buf@${BUF_VERSION}")
fi

# Stage third-party protos from site-packages into build/proto-deps/.
"$PYTHON" - <<'PY'
import shutil
from pathlib import Path

import google.api.annotations_pb2

site_root = Path(google.api.annotations_pb2.__file__).resolve().parents[2]
dest = Path("build/proto-deps")
shutil.rmtree(dest, ignore_errors=True)
for package in ("api", "rpc", "type"):
    for src in sorted((site_root / "google" / package).rglob("*.proto")):
        target = dest / src.relative_to(site_root)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, target)
PY

status=0
"${buf_cmd[@]}" lint || status=1
"${buf_cmd[@]}" format --diff --exit-code protos || status=1

# buf does not check HTTP annotations: every RPC must carry google.api.http
# (the gateway transcodes from them).
"$PYTHON" - <<'PY' || status=1
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, "tools")
import gen_protos  # noqa: E402  (include paths and file list shared with codegen)
from google.api import annotations_pb2  # noqa: E402
from google.protobuf import descriptor_pb2  # noqa: E402

with tempfile.TemporaryDirectory() as tmp:
    out = Path(tmp) / "descriptors.binpb"
    cmd = [sys.executable, "-m", "grpc_tools.protoc", f"--descriptor_set_out={out}"]
    cmd += [f"--proto_path={p}" for p in gen_protos.include_paths()]
    cmd += gen_protos.proto_files()
    subprocess.run(cmd, cwd=gen_protos.PROTO_DIR, check=True)
    fds = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())

missing = [
    f"{file.name}: {file.package}.{service.name}.{method.name}"
    for file in fds.file
    for service in file.service
    for method in service.method
    if not method.options.HasExtension(annotations_pb2.http)
]
for line in missing:
    print(f"{line}: RPC has no google.api.http annotation", file=sys.stderr)
sys.exit(1 if missing else 0)
PY
if [[ $status -ne 0 ]]; then
  echo "proto lint failed (formatting is fixed by: buf format -w protos)" >&2
else
  echo "proto lint OK"
fi
exit $status
