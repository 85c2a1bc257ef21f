"""docker-compose.yml is generated from libs/registry.py (tools/gen_compose.py), committed up to
date, and has the shape compose needs: the database, the migration job, and one container per
existing service on its registry port, connected as its own role, with a gRPC health check."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

from libs import registry
from libs.db.provision import APP_ROLE, OWNER_ROLE, password_variable, service_roles
from tools import gen_compose


def read_yaml(text: str) -> dict:
    """The YAML subset gen_compose writes: block mappings with plain keys (two spaces a level),
    each value a JSON scalar, list or empty mapping. Anything else fails here."""
    root: dict = {}
    stack: list[tuple[int, dict]] = [(-1, root)]
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        indent = len(line) - len(line.lstrip(" "))
        key, colon, value = line.strip().partition(":")
        assert colon and gen_compose.KEY.fullmatch(key) and indent % 2 == 0, f"line {number}: {line!r}"
        while stack[-1][0] >= indent:
            stack.pop()
        parent_indent, parent = stack[-1]
        assert indent == (0 if parent_indent < 0 else parent_indent + 2), f"line {number}: {line!r}"
        assert key not in parent, f"line {number}: {key} repeated"
        if value.strip():
            parent[key] = json.loads(value)
        else:
            parent[key] = {}
            stack.append((indent, parent[key]))
    return root


def test_the_committed_file_is_the_generated_one():
    committed = (gen_compose.ROOT / "docker-compose.yml").read_text()
    assert committed == gen_compose.render(), "run `make compose` and commit docker-compose.yml"
    assert read_yaml(committed) == gen_compose.build()


def test_compose_has_the_database_the_migration_job_and_each_existing_service():
    compose = read_yaml(gen_compose.render())
    services = compose["services"]
    existing = [entry.name for entry in registry.existing()]
    assert existing, "identity and crm exist"
    assert list(services) == ["db", "migrate", *existing, "gateway"]
    assert set(compose["volumes"]) == {"pgdata", "keys"}
    assert services["db"]["image"].startswith("pgvector/pgvector:pg")

    migrate = services["migrate"]
    assert migrate["command"] == ["python", "tools/devstack.py", "init"]
    assert migrate["depends_on"] == {"db": {"condition": "service_healthy"}}
    # Every registered service's role is provisioned (the migrations grant each its tables).
    passwords = {name: value for name, value in migrate["environment"].items() if name.endswith("_PASSWORD")}
    assert set(passwords) == {password_variable(role) for role in [OWNER_ROLE, *service_roles()]}

    for name in existing:
        entry = registry.service(name)
        container = services[name]
        assert container["command"] == ["python", "-m", entry.module]
        assert container["ports"] == [f"{entry.port}:{entry.port}"]
        assert container["depends_on"] == {"migrate": {"condition": "service_completed_successfully"}}
        assert container["healthcheck"]["test"] == ["CMD", "python", "-m", "tools.health_check", name]
        env = container["environment"]
        url = urlsplit(env["SOULKG_DATABASE_URL"])
        assert (url.username, url.hostname, url.path) == (entry.db_role, "db", "/soulkg")
        # The same password the migration job gave the role.
        assert env["SOULKG_DATABASE_URL"].split("@")[0].endswith(passwords[password_variable(entry.db_role)])
        assert json.loads(env["SOULKG_SERVICE_ADDRESSES"]) == {n: f"{n}:{registry.service(n).port}"
                                                              for n in existing}
        assert {"SOULKG_KEYS_DIR", "SOULKG_HOST", "SOULKG_PAGE_TOKEN_SECRET"} <= set(env)


def test_no_container_connects_as_the_group_role():
    assert APP_ROLE not in gen_compose.render()
