"""Kubernetes manifests of deploy/k8s: rendered, schema-validated, and their references checked."""

from __future__ import annotations

import ast
import base64
import json
import re
from pathlib import Path
from urllib.parse import urlsplit

import kubernetes_validate
import pytest

from deploy.deploy_helpers import (
    K8S,
    KUSTOMIZATIONS,
    OVERLAYS,
    ROOT,
    SERVICES,
    Obj,
    find,
    of_kind,
    read_env_names,
    selector_matches,
)
from deploy.kubectl_kustomize import KustomizeError, containers, object_id, pod_spec, render
from drift_cli.nats_auth import authorization_block, tenant_passwords
from drift_runtime.messaging import SERVICE_USER, split_credentials

# Pinned Kubernetes API versions the manifests must validate against (schemas bundled in
# kubernetes-validate, so this runs offline): the oldest we support and a recent one.
KUBERNETES_VERSIONS = ("1.31.0", "1.34.0")

WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "Job")
SECRET_KEYS = {
    "DRIFT_API_KEYS",
    "DRIFT_SERVICE_TOKEN",
    "DRIFT_WEBHOOK_SECRET",
    "DRIFT_STORE_URL",
    "DRIFT_REDIS_URL",
    "DRIFT_NATS_URL",
}
# Secrets an overlay references but never renders: created by the operator, listed in the docs.
EXTERNAL_SECRETS = {
    "base": {"drift-secrets": SECRET_KEYS - {"DRIFT_REDIS_URL"}},
    "dev": {},
    "prod": {"drift-secrets": SECRET_KEYS, "redis-auth": {"password"}, "nats-auth": {"authorization.conf"}},
}
# Variables in the manifests that no service reads yet, each with its TODO in docs/deploy.md.
PENDING_VARIABLES: set[str] = set()
DEPLOY_DOC = ROOT / "docs" / "deploy.md"


def drift_deployments(objects: list[Obj]) -> dict[str, Obj]:
    """Service directory name -> its Deployment."""
    return {name: find(objects, "Deployment", image) for name, (image, _, _) in SERVICES.items()}


def container_of(deployment: Obj) -> Obj:
    """The single container of a Drift Deployment."""
    spec = pod_spec(deployment)
    assert spec is not None and len(spec["containers"]) == 1
    return spec["containers"][0]


def port_number(container: Obj, port: int | str) -> int | None:
    """A probe's or Service's port resolved against the container's declared ports."""
    for declared in container.get("ports") or []:
        if port in (declared["containerPort"], declared.get("name")):
            return int(declared["containerPort"])
    return None


@pytest.mark.parametrize("name", KUSTOMIZATIONS)
def test_every_kustomization_renders_with_unique_objects(rendered: dict[str, list[Obj]], name: str) -> None:
    """Each kustomization renders (Python-only renderer) to named objects with unique kind/namespace/name."""
    objects = rendered[name]
    assert objects
    ids = [object_id(o) for o in objects]
    assert len(ids) == len(set(ids))
    assert all(o["metadata"].get("name") for o in objects)


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("name", KUSTOMIZATIONS)
def test_rendered_objects_validate_against_pinned_kubernetes_schemas(
    rendered: dict[str, list[Obj]], name: str, version: str
) -> None:
    """Every rendered object is valid, with no unknown field, for the pinned Kubernetes API versions."""
    errors = []
    for obj in rendered[name]:
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            errors.append(f"{object_id(obj)}: {error.message} at {list(error.path)}")
    assert not errors, "\n".join(errors)


def test_base_has_one_deployment_and_service_per_drift_service(rendered: dict[str, list[Obj]]) -> None:
    """The base holds exactly a Deployment and a Service per Drift service plus the shared ConfigMap."""
    base = rendered["base"]
    kinds = sorted({o["kind"] for o in base})
    assert kinds == ["ConfigMap", "Deployment", "Service"]
    for image, port_name, port in SERVICES.values():
        deployment = find(base, "Deployment", image)
        service = find(base, "Service", image)
        assert container_of(deployment)["image"] == image
        assert service["spec"]["ports"] == [
            {"name": port_name, "port": port, "targetPort": port_name, "protocol": "TCP"}
        ]
    assert len(of_kind(base, "Deployment")) == len(SERVICES)


@pytest.mark.parametrize("name", OVERLAYS)
def test_services_select_pods_and_target_declared_ports(rendered: dict[str, list[Obj]], name: str) -> None:
    """Every Service selects the pods of some workload, and each targetPort is a port those pods declare."""
    objects = rendered[name]
    workloads = of_kind(objects, *WORKLOAD_KINDS)
    for service in of_kind(objects, "Service"):
        if service["spec"].get("type") == "ExternalName":
            continue
        selector = {"matchLabels": service["spec"]["selector"]}
        matched = [w for w in workloads if selector_matches(selector, w["spec"]["template"]["metadata"]["labels"])]
        assert matched, f"Service {service['metadata']['name']} selects no pods"
        for port in service["spec"]["ports"]:
            target = port.get("targetPort", port["port"])
            assert any(port_number(c, target) for w in matched for c in containers(w)), (
                f"Service {service['metadata']['name']}: targetPort {target} not declared by its pods"
            )


def test_workload_selectors_match_their_pod_templates(rendered: dict[str, list[Obj]]) -> None:
    """Each workload's selector matches its own pod template, and no two workloads' selectors overlap."""
    for name in OVERLAYS:
        workloads = of_kind(rendered[name], *WORKLOAD_KINDS)
        for workload in workloads:
            if workload["kind"] == "Job":
                continue
            labels = workload["spec"]["template"]["metadata"]["labels"]
            assert selector_matches(workload["spec"]["selector"], labels)
            others = [w for w in workloads if w is not workload and w["kind"] != "Job"]
            assert not any(
                selector_matches(workload["spec"]["selector"], o["spec"]["template"]["metadata"]["labels"])
                for o in others
            ), f"{workload['metadata']['name']}'s selector also matches another workload"


def _references(objects: list[Obj]) -> list[tuple[str, str, str | None, str]]:
    """(kind, name, key or None, where) of every ConfigMap, Secret and PVC a pod refers to."""
    refs: list[tuple[str, str, str | None, str]] = []
    for workload in objects:
        spec = pod_spec(workload)
        if spec is None:
            continue
        where = workload["metadata"]["name"]
        for container in containers(workload):
            for source in container.get("envFrom") or []:
                if "configMapRef" in source:
                    refs.append(("ConfigMap", source["configMapRef"]["name"], None, where))
                if "secretRef" in source:
                    refs.append(("Secret", source["secretRef"]["name"], None, where))
            for env in container.get("env") or []:
                value_from = env.get("valueFrom") or {}
                if "configMapKeyRef" in value_from:
                    ref = value_from["configMapKeyRef"]
                    refs.append(("ConfigMap", ref["name"], ref["key"], where))
                if "secretKeyRef" in value_from:
                    ref = value_from["secretKeyRef"]
                    refs.append(("Secret", ref["name"], ref["key"], where))
        claims = {t["metadata"]["name"] for t in (workload["spec"].get("volumeClaimTemplates") or [])}
        for volume in spec.get("volumes") or []:
            if "configMap" in volume:
                refs.append(("ConfigMap", volume["configMap"]["name"], None, where))
            if "secret" in volume:
                refs.append(("Secret", volume["secret"]["secretName"], None, where))
            if "persistentVolumeClaim" in volume:
                refs.append(("PersistentVolumeClaim", volume["persistentVolumeClaim"]["claimName"], None, where))
        for container in containers(workload):
            for mount in container.get("volumeMounts") or []:
                declared = {v["name"] for v in spec.get("volumes") or []} | claims
                assert mount["name"] in declared, f"{where}: volumeMount {mount['name']} has no volume"
    return refs


@pytest.mark.parametrize("name", KUSTOMIZATIONS)
def test_config_and_secret_references_exist_or_are_documented_external(
    rendered: dict[str, list[Obj]], name: str
) -> None:
    """Every ConfigMap, Secret (and key) and PVC a pod uses is rendered, or is a documented external Secret."""
    objects = rendered[name]
    doc = DEPLOY_DOC.read_text()
    for kind, ref_name, key, where in _references(objects):
        present = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == ref_name]
        if present:
            if key is not None:
                assert key in (present[0].get("data") or {}), f"{where}: {kind} {ref_name} has no key {key}"
            continue
        assert kind == "Secret", f"{where}: {kind} {ref_name} is not rendered"
        external = EXTERNAL_SECRETS[name]
        assert ref_name in external, f"{where}: Secret {ref_name} is neither rendered nor a documented external"
        if key is not None:
            assert key in external[ref_name], f"{where}: external Secret {ref_name} has no documented key {key}"
    for secret, keys in EXTERNAL_SECRETS[name].items():
        assert f"`{secret}`" in doc, f"docs/deploy.md does not document the Secret {secret}"
        for key in keys:
            assert f"`{key}`" in doc, f"docs/deploy.md does not document {secret} key {key}"


@pytest.mark.parametrize("name", OVERLAYS)
def test_probes_hit_declared_ports_and_health_paths(rendered: dict[str, list[Obj]], name: str) -> None:
    """Drift containers probe /health/live (startup, liveness) and /health/ready (readiness) on their own port."""
    for service, deployment in drift_deployments(rendered[name]).items():
        container = container_of(deployment)
        _, port_name, port = SERVICES[service]
        assert port_number(container, port_name) == port
        for probe_name, path in (
            ("startupProbe", "/health/live"),
            ("livenessProbe", "/health/live"),
            ("readinessProbe", "/health/ready"),
        ):
            probe = container[probe_name]
            if "httpGet" in probe:
                assert probe["httpGet"]["path"] == path
                assert port_number(container, probe["httpGet"]["port"]) == port
            else:  # exec: python -c "...urlopen('http://127.0.0.1:<port><path>')"
                command = " ".join(probe["exec"]["command"])
                assert f"http://127.0.0.1:{port}{path}'" in command, command
                env = {e["name"]: e.get("value") for e in container["env"]}
                assert env["DRIFT_METRICS_PORT"] == str(port)


def _health_server_binds_bind_host(service: str) -> bool:
    """Whether services/<service>'s app.py passes `host=` to serve_health (which defaults to 127.0.0.1)."""
    app = ROOT / "services" / service / "src" / f"drift_{service.replace('-', '_')}" / "app.py"
    calls = [
        node
        for node in ast.walk(ast.parse(app.read_text()))
        if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) == "serve_health"
    ]
    assert calls, f"{app} never calls serve_health"
    return all(any(k.arg == "host" for k in call.keywords) for call in calls)


@pytest.mark.parametrize("name", OVERLAYS)
def test_http_probes_only_where_the_health_server_listens_beyond_loopback(
    rendered: dict[str, list[Obj]], name: str
) -> None:
    """A metrics-port service is probed with httpGet only if it binds DRIFT_BIND_HOST; one bound to
    127.0.0.1 would fail every kubelet probe and be restarted forever, so it keeps exec probes."""
    for service, deployment in drift_deployments(rendered[name]).items():
        if SERVICES[service][1] != "metrics":
            continue
        container = container_of(deployment)
        http_probes = [p for p in ("startupProbe", "livenessProbe", "readinessProbe") if "httpGet" in container[p]]
        if http_probes:
            assert _health_server_binds_bind_host(service), (
                f"{service}: {http_probes} use httpGet but its health server binds 127.0.0.1"
            )


@pytest.mark.parametrize("name", OVERLAYS)
def test_every_container_probe_targets_a_declared_port(rendered: dict[str, list[Obj]], name: str) -> None:
    """Every httpGet or tcpSocket probe of every workload (dependencies too) names a port its container declares."""
    for workload in of_kind(rendered[name], *WORKLOAD_KINDS):
        for container in containers(workload):
            assert "livenessProbe" in container and "readinessProbe" in container, container["name"]
            for probe_name in ("startupProbe", "livenessProbe", "readinessProbe"):
                probe = container.get(probe_name) or {}
                for handler in ("httpGet", "tcpSocket"):
                    if handler in probe:
                        assert port_number(container, probe[handler]["port"]), (
                            f"{workload['metadata']['name']}/{container['name']} {probe_name}"
                        )


@pytest.mark.parametrize("name", OVERLAYS)
def test_every_container_has_requests_and_limits(rendered: dict[str, list[Obj]], name: str) -> None:
    """Every container of every workload sets CPU and memory requests and limits."""
    for workload in of_kind(rendered[name], *WORKLOAD_KINDS):
        for container in containers(workload):
            resources = container.get("resources") or {}
            for bound in ("requests", "limits"):
                assert set(resources.get(bound) or {}) >= {"cpu", "memory"}, (
                    f"{workload['metadata']['name']}/{container['name']} lacks {bound}"
                )


@pytest.mark.parametrize("name", OVERLAYS)
def test_drift_pods_are_scraped_and_export_traces_under_their_service_name(
    rendered: dict[str, list[Obj]], name: str
) -> None:
    """Drift pods carry Prometheus scrape annotations for their port and OTEL_SERVICE_NAME = the contract's name."""
    objects = rendered[name]
    config = find(objects, "ConfigMap", "drift-config")["data"]
    assert config["OTEL_EXPORTER_OTLP_ENDPOINT"].startswith("http")
    for service, deployment in drift_deployments(objects).items():
        image, _, port = SERVICES[service]
        annotations = deployment["spec"]["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true"
        assert annotations["prometheus.io/port"] == str(port)
        assert annotations["prometheus.io/path"] == "/metrics"
        container = container_of(deployment)
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert env["OTEL_SERVICE_NAME"] == image
        assert {"configMapRef": {"name": "drift-config"}} in container["envFrom"]


def _known_variables() -> set[str]:
    """DRIFT_* names of the contract and README, plus every one a service or lib reads."""
    names = set(re.findall(r"`(DRIFT_[A-Z0-9_]+)`", (ROOT / "README.md").read_text()))
    contract = ROOT.parent / "shared" / "contract" / "CONTRACT.md"
    if contract.exists():
        names |= set(re.findall(r"`(DRIFT_[A-Z0-9_]+)`", contract.read_text()))
    for source in [*ROOT.glob("services/*/src/**/*.py"), *ROOT.glob("libs/*/src/**/*.py")]:
        names |= read_env_names(source)
    return names


@pytest.mark.parametrize("name", OVERLAYS)
def test_configured_variables_are_ones_drift_reads(rendered: dict[str, list[Obj]], name: str) -> None:
    """Every DRIFT_* variable the manifests set is read by a service or named by the contract (no typos)."""
    known = _known_variables() | PENDING_VARIABLES
    assert "DRIFT_NATS_URL" in known and "DRIFT_METRICS_PORT" in known
    objects = rendered[name]
    names = set(find(objects, "ConfigMap", "drift-config")["data"])
    for deployment in drift_deployments(objects).values():
        names |= {e["name"] for e in container_of(deployment)["env"]}
    unknown = {n for n in names if n.startswith("DRIFT_")} - known
    assert not unknown, f"variables no service reads: {sorted(unknown)}"
    doc = DEPLOY_DOC.read_text()
    for pending in PENDING_VARIABLES & names:
        assert f"`{pending}`" in doc and "TODO" in doc


def _env_of(objects: list[Obj], deployment: Obj) -> dict[str, str]:
    """The values a Drift container sees: drift-config, its literal env and its dev Secret keys."""
    values = dict(find(objects, "ConfigMap", "drift-config")["data"])
    for env in container_of(deployment)["env"]:
        if "value" in env:
            values[env["name"]] = env["value"]
        ref = (env.get("valueFrom") or {}).get("secretKeyRef")
        if ref:
            secrets = [o for o in objects if o["kind"] == "Secret" and o["metadata"]["name"] == ref["name"]]
            if secrets:
                values[env["name"]] = base64.b64decode(secrets[0]["data"][ref["key"]]).decode()
    return values


def _endpoint(value: str) -> tuple[str, int]:
    """Host and port of a URL or a host:port address."""
    parts = urlsplit(value if "://" in value else f"tcp://{value}")
    default = {"http": 80, "https": 443}.get(parts.scheme, 0)
    return str(parts.hostname), int(parts.port or default)


ENDPOINT_VARIABLES = (
    "DRIFT_NATS_URL",
    "DRIFT_REDIS_URL",
    "DRIFT_TEMPORAL_ADDRESS",
    "DRIFT_DSL_STORE_URL",
    "DRIFT_STORE_URL",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
)


@pytest.mark.parametrize("name", OVERLAYS)
def test_service_endpoints_resolve_to_rendered_services_or_documented_externals(
    rendered: dict[str, list[Obj]], name: str
) -> None:
    """Each dependency URL a Drift service gets names a rendered Service and port, or a documented external host."""
    objects = rendered[name]
    services = {s["metadata"]["name"]: s for s in of_kind(objects, "Service")}
    doc = DEPLOY_DOC.read_text()
    checked = 0
    for deployment in drift_deployments(objects).values():
        env = _env_of(objects, deployment)
        for variable in ENDPOINT_VARIABLES:
            if variable not in env:
                continue
            host, port = _endpoint(env[variable])
            checked += 1
            if host in services:
                ports = [p["port"] for p in services[host]["spec"]["ports"]]
                assert port in ports, f"{variable}={env[variable]}: Service {host} has no port {port}"
            else:
                assert name == "prod", f"{variable}={env[variable]}: no Service {host} in the {name} overlay"
                assert host.endswith(".svc.cluster.local") and f"`{host}" in doc, (
                    f"{variable}: external host {host} must be a cluster FQDN documented in docs/deploy.md"
                )
    assert checked >= 10


def test_no_secret_values_outside_the_dev_overlay(rendered: dict[str, list[Obj]]) -> None:
    """Base and prod render no Secret and put no secret variable in a ConfigMap; dev's Secrets say they are dev."""
    for name in ("base", "prod"):
        assert not of_kind(rendered[name], "Secret")
        # prod's Redis has a password, so its URL is secret there; base's has none.
        forbidden = SECRET_KEYS if name == "prod" else SECRET_KEYS - {"DRIFT_REDIS_URL"}
        for config in of_kind(rendered[name], "ConfigMap"):
            assert not forbidden & set(config.get("data") or {}), config["metadata"]["name"]
    for secret in of_kind(rendered["dev"], "Secret"):
        values = [base64.b64decode(v).decode() for v in secret["data"].values()]
        # A webhook key is `whsec_<base64>`: look inside.
        values = [base64.b64decode(v[6:]).decode() if v.startswith("whsec_") else v for v in values]
        assert all("dev" in v for v in values if len(v) > 8), secret["metadata"]["name"]
    api_keys = json.loads(
        _env_of(rendered["dev"], find(rendered["dev"], "Deployment", "drift-gateway"))["DRIFT_API_KEYS"]
    )
    assert "default" in api_keys.values()


def test_dev_overlay_has_every_dependency(rendered: dict[str, list[Obj]]) -> None:
    """dev adds NATS (JetStream on a PVC), the Temporal dev server with UI, Redis, PostgreSQL and Jaeger's UI."""
    dev = rendered["dev"]
    nats = find(dev, "StatefulSet", "nats")
    config = find(dev, "ConfigMap", "nats-config")["data"]["nats.conf"]
    store_dir = re.search(r"store_dir:\s*(\S+)", config)
    assert "jetstream" in config and store_dir
    claim = nats["spec"]["volumeClaimTemplates"][0]["metadata"]["name"]
    mounts = {m["name"]: m["mountPath"] for m in containers(nats)[0]["volumeMounts"]}
    assert store_dir.group(1).startswith(mounts[claim])
    temporal = containers(find(dev, "Deployment", "temporal"))[0]
    assert temporal["image"].startswith("temporalio/temporal:")
    assert temporal["args"][:2] == ["server", "start-dev"]
    assert port_number(temporal, "ui") == 8233
    assert containers(find(dev, "Deployment", "redis"))[0]["image"].startswith("redis:")
    postgres = find(dev, "StatefulSet", "postgres")
    assert containers(postgres)[0]["image"].startswith("postgres:")
    assert postgres["spec"]["volumeClaimTemplates"]
    jaeger = containers(find(dev, "Deployment", "jaeger"))[0]
    assert port_number(jaeger, "ui") == 16686 and port_number(jaeger, "otlp-http") == 4318
    store_url = _env_of(dev, find(dev, "Deployment", "drift-dsl-store"))["DRIFT_STORE_URL"]
    assert store_url.startswith("postgresql+asyncpg://")


def test_prod_overlay_is_replicated_and_disruption_budgeted(rendered: dict[str, list[Obj]]) -> None:
    """prod runs every Drift service and dependency with several replicas, each covered by a PodDisruptionBudget."""
    prod = rendered["prod"]
    for deployment in drift_deployments(prod).values():
        assert deployment["spec"]["replicas"] >= 2, deployment["metadata"]["name"]
    budgets = of_kind(prod, "PodDisruptionBudget")
    for workload in of_kind(prod, "Deployment", "StatefulSet"):
        labels = workload["spec"]["template"]["metadata"]["labels"]
        covering = [b for b in budgets if selector_matches(b["spec"]["selector"], labels)]
        assert len(covering) == 1, f"{workload['metadata']['name']}: {len(covering)} PodDisruptionBudgets"
        assert workload["spec"].get("replicas", 1) >= 2
        budget = covering[0]["spec"]
        assert budget.get("maxUnavailable", 0) == 1 or budget.get("minAvailable", 0) >= 1


def test_prod_nats_is_a_three_node_jetstream_cluster_syncing_every_write(rendered: dict[str, list[Obj]]) -> None:
    """prod NATS: 3 servers on PVCs, routes to all of them, JetStream with sync_interval always, one per node."""
    prod = rendered["prod"]
    nats = find(prod, "StatefulSet", "nats")
    assert nats["spec"]["replicas"] == 3 and nats["spec"]["volumeClaimTemplates"]
    config = find(prod, "ConfigMap", "nats-config")["data"]["nats.conf"]
    routes = set(re.findall(r"nats://(nats-\d)\.nats-headless:6222", config))
    assert routes == {"nats-0", "nats-1", "nats-2"}
    assert re.search(r"sync_interval:\s*always", config)
    anti = nats["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]
    assert anti["requiredDuringSchedulingIgnoredDuringExecution"]
    assert find(prod, "ConfigMap", "drift-config")["data"]["DRIFT_STREAM_REPLICAS"] == "3"


def test_prod_redis_runs_sentinel_with_a_master_only_endpoint(rendered: dict[str, list[Obj]]) -> None:
    """prod Redis: 3 pods of Redis + Sentinel (quorum 2), and Service `redis` reaches only the current master."""
    prod = rendered["prod"]
    redis = find(prod, "StatefulSet", "redis")
    assert redis["spec"]["replicas"] == 3
    assert {c["name"] for c in containers(redis)} == {"redis", "sentinel"}
    scripts = find(prod, "ConfigMap", "redis-scripts")["data"]
    assert re.search(r"sentinel monitor drift \S+ 6379 2", scripts["sentinel.sh"])
    service = find(prod, "Service", "redis")
    assert service["spec"]["selector"] == {"app.kubernetes.io/name": "redis-haproxy"}
    haproxy = find(prod, "ConfigMap", "redis-haproxy")["data"]["haproxy.cfg"]
    assert "role:master" in haproxy
    assert set(re.findall(r"server (redis-\d) ", haproxy)) == {"redis-0", "redis-1", "redis-2"}


def test_prod_pods_meet_the_restricted_pod_security_standard(rendered: dict[str, list[Obj]]) -> None:
    """Every prod container runs as non-root, without privilege escalation or capabilities, under RuntimeDefault."""
    prod = rendered["prod"]
    namespace = find(prod, "Namespace", "drift")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    for workload in of_kind(prod, *WORKLOAD_KINDS):
        spec = pod_spec(workload) or {}
        pod = spec.get("securityContext") or {}
        for container in containers(workload):
            own = container.get("securityContext") or {}
            where = f"{workload['metadata']['name']}/{container['name']}"
            assert own.get("runAsNonRoot", pod.get("runAsNonRoot")) is True, where
            assert own.get("allowPrivilegeEscalation") is False, where
            assert own.get("capabilities", {}).get("drop") == ["ALL"], where
            seccomp = own.get("seccompProfile") or pod.get("seccompProfile") or {}
            assert seccomp.get("type") == "RuntimeDefault", where
            if container["name"] in SERVICES:  # Drift's own: read-only root (tmp is an emptyDir)
                assert own.get("readOnlyRootFilesystem") is True, where


@pytest.mark.parametrize("name", OVERLAYS)
def test_images_are_pinned(rendered: dict[str, list[Obj]], name: str) -> None:
    """Dependency images carry an explicit version tag; prod's Drift images come from a registry with a tag."""
    drift_images = {image for image, _, _ in SERVICES.values()}
    for workload in of_kind(rendered[name], *WORKLOAD_KINDS):
        for container in containers(workload):
            image = container["image"]
            if image in drift_images:
                assert name == "dev", f"{image} has no registry or tag in {name}"
                continue
            tag = image.rpartition(":")[2] if ":" in image.rpartition("/")[2] else ""
            assert tag and tag != "latest", f"{image} is not pinned"


def test_kubectl_kustomize_refusal_is_an_error(tmp_path: Path) -> None:
    """A kustomization kubectl cannot build fails the checks with kubectl's own message, never renders empty."""
    (tmp_path / "kustomization.yaml").write_text("resources: [missing.yaml]\n")
    with pytest.raises(KustomizeError, match=r"missing\.yaml"):
        render(tmp_path)


# Where NATS reads its users from: prod's own Secret, or (so that Tilt groups it with the other dev
# secrets) a key of the dev overlay's generated drift-secrets.
NATS_AUTHORIZATION = {"dev": ("drift-secrets", "nats-authorization.conf"), "prod": ("nats-auth", "authorization.conf")}


@pytest.mark.parametrize("name", OVERLAYS)
def test_nats_admits_only_the_users_of_its_authorization_secret(rendered: dict[str, list[Obj]], name: str) -> None:
    """NATS includes its authorization from a Secret, and every Drift service reads its NATS URL (carrying the
    service user's password) from drift-secrets, never from a ConfigMap (contract 14)."""
    objects = rendered[name]
    config = find(objects, "ConfigMap", "nats-config")["data"]["nats.conf"]
    include = re.search(r'^\s*include\s+"([^"]+)"', config, re.MULTILINE)
    assert include, "nats.conf includes no authorization"
    nats = find(objects, "StatefulSet", "nats")
    mounts = {m["name"]: m["mountPath"] for m in containers(nats)[0]["volumeMounts"]}
    spec = pod_spec(nats)
    assert spec is not None
    secret_name, key = NATS_AUTHORIZATION[name]
    volume = next(v for v in spec["volumes"] if (v.get("secret") or {}).get("secretName") == secret_name)
    (item,) = volume["secret"]["items"]
    assert item["key"] == key
    # nats-server resolves an include against the directory of the including file.
    assert (Path(mounts["config"]) / include.group(1)).resolve() == Path(mounts[volume["name"]]) / item["path"]
    assert "DRIFT_NATS_URL" not in find(objects, "ConfigMap", "drift-config")["data"]
    from_secret = {"secretKeyRef": {"name": "drift-secrets", "key": "DRIFT_NATS_URL"}}
    for deployment in drift_deployments(objects).values():
        refs = [e for e in container_of(deployment)["env"] if e["name"] == "DRIFT_NATS_URL"]
        assert refs == [{"name": "DRIFT_NATS_URL", "valueFrom": from_secret}], deployment["metadata"]["name"]


def test_dev_nats_users_are_the_ones_drift_generates_for_the_dev_keys(rendered: dict[str, list[Obj]]) -> None:
    """The dev overlay's NATS users are exactly drift_cli.nats_auth's for its DRIFT_API_KEYS and the services'
    password in its DRIFT_NATS_URL, so the dev keys and the NATS users cannot drift apart."""
    dev = rendered["dev"]
    env = _env_of(dev, find(dev, "Deployment", "drift-gateway"))
    server = split_credentials(env["DRIFT_NATS_URL"])
    assert server.user == SERVICE_USER and server.password
    expected = authorization_block(server.password, tenant_passwords(json.loads(env["DRIFT_API_KEYS"])))
    secret_name, key = NATS_AUTHORIZATION["dev"]
    written = base64.b64decode(find(dev, "Secret", secret_name)["data"][key]).decode()
    assert [line for line in written.splitlines() if not line.startswith("#")] == expected.splitlines()
    assert (K8S / "overlays" / "dev" / "nats-authorization-dev.conf").read_text() == written
