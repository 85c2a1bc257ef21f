#!/usr/bin/env python3
"""Generate Python code for every .proto under protos/ into gen/python/.

    python tools/gen_protos.py           # regenerate gen/ (stale files removed)
    python tools/gen_protos.py --check   # fail if gen/ differs from a fresh run

Runs grpc_tools.protoc with --python_out, --pyi_out and --grpc_python_out
(a *_pb2_grpc.py only for files that declare a service).
Include paths: protos/, grpc_tools' bundled well-known types, and the
site-packages root of googleapis-common-protos (google/api, google/rpc, ...).
The output depends only on the proto sources and the grpcio-tools version, so
pin grpcio-tools exactly for the --check drift test to be stable.

Every generated directory gets an empty __init__.py, so `soulkg` is a regular
package; nothing is generated under `google`, which keeps importing from
site-packages.

gen/descriptors/ holds each proto file's FileDescriptorProto *with source info*
(`<file>.binpb`, e.g. soulkg/crm/v1/crm.binpb): the generated modules drop
comments, and the gateway's OpenAPI document takes its descriptions from them.
One file per proto, so branches that change different protos do not collide.
"""

from __future__ import annotations

import argparse
import filecmp
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROTO_DIR = ROOT / "protos"
OUT_DIR = ROOT / "gen" / "python"
DESCRIPTORS_DIR = ROOT / "gen" / "descriptors"
# Not part of the generated tree (created by importing the generated modules).
IGNORED_NAMES = {"__pycache__"}


def include_paths() -> list[Path]:
    import google.api.annotations_pb2  # googleapis-common-protos
    import grpc_tools

    well_known = Path(grpc_tools.__file__).resolve().parent / "_proto"
    # site-packages/google/api/annotations_pb2.py -> site-packages
    googleapis = Path(google.api.annotations_pb2.__file__).resolve().parents[2]
    return [PROTO_DIR, well_known, googleapis]


def proto_files() -> list[str]:
    return sorted(p.relative_to(PROTO_DIR).as_posix() for p in PROTO_DIR.rglob("*.proto"))


def generate(out: Path, descriptors_out: Path) -> None:
    files = proto_files()
    if not files:
        sys.exit(f"no .proto files under {PROTO_DIR.relative_to(ROOT)}/")
    cmd = [sys.executable, "-m", "grpc_tools.protoc"]
    cmd += [f"--proto_path={p}" for p in include_paths()]
    cmd += [f"--python_out={out}", f"--pyi_out={out}", f"--grpc_python_out={out}"]
    descriptor_set = out.parent / "descriptors.binpb"
    cmd += [f"--descriptor_set_out={descriptor_set}", "--include_source_info"]
    cmd += files
    # Relative proto names keep machine paths out of the generated code.
    result = subprocess.run(cmd, cwd=PROTO_DIR)
    if result.returncode != 0:
        sys.exit(f"protoc failed with exit code {result.returncode}")

    # The gRPC plugin writes a *_pb2_grpc.py for every file; drop the empty
    # ones of files that declare no service.
    from google.protobuf import descriptor_pb2

    fds = descriptor_pb2.FileDescriptorSet.FromString(descriptor_set.read_bytes())
    for file in fds.file:
        if not file.service:
            (out / file.name.replace(".proto", "_pb2_grpc.py")).unlink()
        target = descriptors_out / file.name.replace(".proto", ".binpb")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(file.SerializeToString(deterministic=True))
    for directory in sorted({p.parent for p in out.rglob("*.py")}):
        while directory != out:
            (directory / "__init__.py").touch()
            directory = directory.parent
    for top in out.iterdir():
        if top.is_dir():
            (top / "py.typed").touch()


def tree(base: Path) -> set[str]:
    if not base.is_dir():
        return set()
    return {
        p.relative_to(base).as_posix()
        for p in base.rglob("*")
        if p.is_file() and not IGNORED_NAMES.intersection(p.relative_to(base).parts)
    }


def differences(expected: Path, actual: Path) -> list[str]:
    want, have = tree(expected), tree(actual)
    diffs = [f"missing: {name}" for name in sorted(want - have)]
    diffs += [f"stale:   {name}" for name in sorted(have - want)]
    diffs += [
        f"differs: {name}"
        for name in sorted(want & have)
        if not filecmp.cmp(expected / name, actual / name, shallow=False)
    ]
    return diffs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check",
        action="store_true",
        help="regenerate into a temp dir and exit 1 if gen/ differs",
    )
    args = parser.parse_args()
    outputs = [OUT_DIR, DESCRIPTORS_DIR]

    with tempfile.TemporaryDirectory(prefix="soulkg-gen-") as tmp:
        fresh = [Path(tmp) / target.name for target in outputs]
        for directory in fresh:
            directory.mkdir()
        generate(*fresh)

        if args.check:
            stale = False
            for new, target in zip(fresh, outputs, strict=True):
                shown_out = target.relative_to(ROOT).as_posix()
                diffs = differences(new, target)
                if diffs:
                    stale = True
                    print(f"{shown_out}/ is out of date with protos/:", file=sys.stderr)
                    for line in diffs:
                        print(f"  {line}", file=sys.stderr)
                else:
                    print(f"{shown_out}/ is up to date ({len(tree(new))} files)")
            if stale:
                print("run: python tools/gen_protos.py", file=sys.stderr)
                return 1
            return 0

        for new, target in zip(fresh, outputs, strict=True):
            shutil.rmtree(target, ignore_errors=True)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copytree(new, target)
    for target in outputs:
        print(f"generated {len(tree(target))} files into {target.relative_to(ROOT).as_posix()}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
