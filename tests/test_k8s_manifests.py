"""deploy/k8s/ is what tools/gen_k8s.py makes from the registry, every document is valid for
the pinned Kubernetes version, and the manifests say what the code does: ports, health
probes, shutdown drain, settings, one Deployment + headless Service + PodDisruptionBudget per
registered service. No cluster and no database needed."""

from __future__ import annotations

import copy
import math
import os
from pathlib import Path

import pytest
import yaml

from libs import registry
from libs.server.bootstrap import SHUTDOWN_GRACE_SECONDS
from libs.settings import Settings
from tools import gen_k8s

MANIFEST_FILES = sorted(p for p in gen_k8s.OUT_DIR.glob("*.yaml") if p.name != "kustomization.yaml")


def _documents() -> list[dict]:
    return [doc for path in MANIFEST_FILES for doc in yaml.safe_load_all(path.read_text()) if doc]


DOCS = _documents()


def _find(kind: str, name: str) -> dict:
    found = [d for d in DOCS if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind} {name}: {len(found)} documents"
    return found[0]


def _container(deployment: dict) -> dict:
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return container


def _plain_env(container: dict) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container["env"] if "value" in e}


def _secret_env(container: dict) -> dict[str, tuple[str, str]]:
    return {e["name"]: (e["valueFrom"]["secretKeyRef"]["name"], e["valueFrom"]["secretKeyRef"]["key"])
            for e in container["env"] if "valueFrom" in e}


def test_committed_manifests_are_what_the_generator_makes():
    assert gen_k8s.differences(gen_k8s.render_all(), gen_k8s.OUT_DIR) == []


def test_check_reports_a_hand_edited_missing_or_stale_file(tmp_path: Path):
    expected = gen_k8s.render_all()
    for name, text in expected.items():
        (tmp_path / name).write_text(text)
    (tmp_path / "crm.yaml").write_text(expected["crm.yaml"].replace("replicas: 2", "replicas: 3"))
    (tmp_path / "agents.yaml").unlink()
    (tmp_path / "old-service.yaml").write_text("kind: Deployment\n")
    assert gen_k8s.differences(expected, tmp_path) == [
        "missing: agents.yaml", "stale:   old-service.yaml", "differs: crm.yaml"]


@pytest.mark.parametrize("path", MANIFEST_FILES, ids=lambda p: p.name)
def test_every_document_validates_against_the_pinned_kubernetes_schema(path: Path):
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    for doc in yaml.safe_load_all(path.read_text()):
        # strict: unknown fields (a typo, a field newer than the pinned version) fail too.
        kubernetes_validate.validate(doc, gen_k8s.KUBERNETES_VERSION, strict=True)


def test_the_validator_rejects_a_wrong_type_and_an_unknown_field():
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    deployment = _find("Deployment", "crm")
    wrong_type = copy.deepcopy(deployment)
    _container(wrong_type)["readinessProbe"]["grpc"]["port"] = "grpc"
    unknown = copy.deepcopy(deployment)
    _container(unknown)["lifecycle"]["preStop"]["sleeep"] = {"seconds": 5}
    for doc in (wrong_type, unknown):
        with pytest.raises(kubernetes_validate.ValidationError):
            kubernetes_validate.validate(doc, gen_k8s.KUBERNETES_VERSION, strict=True)


def test_one_deployment_headless_service_and_budget_per_registered_service_and_the_gateway():
    by_kind: dict[str, set[str]] = {}
    for doc in DOCS:
        by_kind.setdefault(doc["kind"], set()).add(doc["metadata"]["name"])
    names = {entry.name for entry in registry.SERVICES}
    assert by_kind["Deployment"] == names | {gen_k8s.GATEWAY_NAME}
    assert by_kind["PodDisruptionBudget"] == names | {gen_k8s.GATEWAY_NAME}
    assert by_kind["Service"] == {f"{n}-headless" for n in names} | {gen_k8s.GATEWAY_NAME}
    assert by_kind["Job"] == {"soulkg-migrate"}
    assert all(doc["kind"] == "Namespace" or doc["metadata"]["namespace"] == gen_k8s.NAMESPACE for doc in DOCS)


@pytest.mark.parametrize("entry", registry.SERVICES, ids=lambda e: e.name)
def test_service_manifests_follow_the_registry(entry: registry.ServiceEntry):
    deployment = _find("Deployment", entry.name)
    container = _container(deployment)
    assert container["command"] == ["python", "-m", entry.module]
    assert container["ports"] == [{"name": "grpc", "containerPort": entry.port, "protocol": "TCP"}]
    # Native gRPC probes: grpc.health.v1 on the service's port, overall ("") status.
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["grpc"] == {"port": entry.port}
    assert deployment["metadata"]["annotations"]["soulkg.dev/db-role"] == entry.db_role
    assert _secret_env(container)["SOULKG_DATABASE_URL"] == (f"soulkg-db-{entry.name}", "url")
    assert container["resources"]["requests"] and container["resources"]["limits"]

    service = _find("Service", f"{entry.name}-headless")
    assert service["spec"]["clusterIP"] == "None"
    assert service["spec"]["ports"][0]["port"] == entry.port
    assert service["spec"]["ports"][0]["targetPort"] == "grpc"
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert deployment["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()

    budget = _find("PodDisruptionBudget", entry.name)
    assert budget["spec"]["selector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]
    assert deployment["spec"]["replicas"] > budget["spec"]["maxUnavailable"]


@pytest.mark.parametrize("name", [e.name for e in registry.SERVICES] + [gen_k8s.GATEWAY_NAME])
def test_shutdown_leaves_time_for_the_servers_drain(name: str):
    """preStop (still serving while endpoints and DNS drop the pod), then SIGTERM: NOT_SERVING
    and up to SHUTDOWN_GRACE_SECONDS for in-flight calls, all before SIGKILL."""
    pod = _find("Deployment", name)["spec"]["template"]["spec"]
    pre_stop = _container(_find("Deployment", name))["lifecycle"]["preStop"]["sleep"]["seconds"]
    assert pod["terminationGracePeriodSeconds"] > pre_stop + math.ceil(SHUTDOWN_GRACE_SECONDS)


@pytest.mark.parametrize("entry", registry.SERVICES, ids=lambda e: e.name)
def test_environment_is_the_settings_the_server_reads(entry: registry.ServiceEntry, monkeypatch):
    container = _container(_find("Deployment", entry.name))
    names = [e["name"] for e in container["env"]]
    fields = {f"SOULKG_{field.upper()}" for field in Settings.model_fields}
    assert len(names) == len(set(names))
    assert set(names) <= fields, f"not settings: {set(names) - fields}"
    assert {"SOULKG_DATABASE_URL", "SOULKG_PAGE_TOKEN_SECRET", "SOULKG_KEYS_DIR"} <= set(names)

    for key in [k for k in os.environ if k.startswith("SOULKG_")]:
        monkeypatch.delenv(key)
    for key, value in _plain_env(container).items():
        monkeypatch.setenv(key, value)
    settings = Settings()
    assert settings.host == "0.0.0.0"
    assert settings.listen_port(entry.name) == entry.port
    assert settings.workers == 1
    for other in registry.SERVICES:
        target = settings.address_of(other.name)
        assert target == f"dns:///{other.name}-headless.{gen_k8s.NAMESPACE}.svc.cluster.local:{other.port}"
        # ... the headless Service that DNS name resolves through exists.
        _find("Service", f"{other.name}-headless")


def test_gateway_has_a_cluster_ip_service_on_the_registry_port():
    port = registry.GATEWAY_PORT
    container = _container(_find("Deployment", gen_k8s.GATEWAY_NAME))
    assert container["ports"][0]["containerPort"] == port
    assert _plain_env(container)["SOULKG_PORT"] == str(port)
    assert container["readinessProbe"]["httpGet"]["path"] == "/healthz"
    service = _find("Service", gen_k8s.GATEWAY_NAME)
    assert service["spec"]["type"] == "ClusterIP"
    assert service["spec"]["ports"][0]["port"] == port


def test_migration_job_runs_devstack_init_with_the_variables_it_reads():
    job = _find("Job", "soulkg-migrate")
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["python", "tools/devstack.py", "init"]
    from libs.db.provision import OWNER_ROLE, password_variable, service_roles

    devstack = (Path(gen_k8s.ROOT) / "tools" / "devstack.py").read_text()
    names = {env["name"] for env in container["env"]}
    passwords = {password_variable(role) for role in (OWNER_ROLE, *service_roles())}
    assert passwords <= names  # devstack reads every role's password through password_variable
    assert "password_variable(" in devstack
    for name in names - passwords:
        assert f'"{name}"' in devstack, f"devstack.py does not read {name}"
    assert _secret_env(container)["DATABASE_URL"] == ("soulkg-db-admin", "url")
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"


def test_kustomization_applies_everything_but_the_migration_job():
    kustomization = yaml.safe_load((gen_k8s.OUT_DIR / "kustomization.yaml").read_text())
    assert set(kustomization["resources"]) == {p.name for p in MANIFEST_FILES} - {"migrate-job.yaml"}
