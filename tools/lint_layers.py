"""`make lint`: the direction of imports, checked by import-linter with contracts built from
the service registry (so a new service is covered by its registry entry alone).

Per service (services/<name>/):
  server > servicer > service > repository > domain     higher layers may import lower ones only
  servicer     never imports the repository or asyncpg   (wire <-> use cases, nothing else)
  domain       never imports asyncpg, grpc, google.* or protos (rules and entities, no I/O)
  repository   never imports grpc or the generated protos (SQL in, entities out)
And libs/ never imports services/.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "gen" / "python")]

from libs import registry  # noqa: E402

LAYERS = ("server", "servicer", "service", "repository", "domain")


def contracts() -> str:
    packages = [f"services.{entry.name}" for entry in registry.existing()]
    lines = ["[importlinter]", "root_packages =", "    libs", "    services", "    soulkg",
             "include_external_packages = True", ""]

    def contract(key: str, name: str, kind: str, **fields: list[str] | str) -> None:
        lines.extend([f"[importlinter:contract:{key}]", f"name = {name}", f"type = {kind}"])
        for field, values in fields.items():
            lines.append(f"{field} =")
            if isinstance(values, str):
                lines[-1] = f"{field} = {values}"
            else:
                lines.extend(f"    {value}" for value in values)
        lines.append("")

    contract("layers", "server > servicer > service > repository > domain", "layers",
             layers=list(LAYERS), containers=packages)
    contract("servicer", "servicers translate the wire only: no repository, no SQL", "forbidden",
             source_modules=[f"{p}.servicer" for p in packages],
             forbidden_modules=[*(f"{p}.repository" for p in packages), "asyncpg"],
             allow_indirect_imports="True")  # it calls the service layer, which uses both
    contract("domain", "the domain has no I/O and knows no wire format", "forbidden",
             source_modules=[f"{p}.domain" for p in packages],
             forbidden_modules=["asyncpg", "grpc", "google", "soulkg", "psycopg"])
    contract("repository", "repositories speak SQL, not gRPC", "forbidden",
             source_modules=[f"{p}.repository" for p in packages],
             forbidden_modules=["grpc", "soulkg"], allow_indirect_imports="True")
    contract("libs", "libs/ never depends on a service", "forbidden",
             source_modules=["libs"], forbidden_modules=["services"])
    return "\n".join(lines)


def main() -> int:
    from importlinter.cli import lint_imports

    os.chdir(REPO)
    with tempfile.NamedTemporaryFile("w", suffix=".ini", delete=False) as config:
        config.write(contracts())
    try:
        return lint_imports(config_filename=config.name, no_cache=True, no_logo=True)
    finally:
        os.unlink(config.name)


if __name__ == "__main__":
    sys.exit(main())
