"""prod NetworkPolicies: evaluated offline against the connections Drift needs and some it must not make."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

import pytest

from deploy.deploy_helpers import Obj, of_kind, selector_matches
from deploy.kubectl_kustomize import containers

NAMESPACE = "drift"


@dataclass(frozen=True)
class Peer:
    """One end of a connection: a pod (with its namespace), or a bare IP address outside the cluster."""

    labels: dict[str, str] = field(default_factory=dict)
    namespace: str | None = NAMESPACE
    ip: str | None = None
    ports: dict[str, int] = field(default_factory=dict)  # named container ports of a pod


def pod(name: str, policies_objects: list[Obj]) -> Peer:
    """The pod of the workload named `name` in the prod namespace, with its labels and named ports."""
    for workload in of_kind(policies_objects, "Deployment", "StatefulSet"):
        if workload["metadata"]["name"] == name:
            ports = {p["name"]: p["containerPort"] for c in containers(workload) for p in c.get("ports") or []}
            return Peer(labels=workload["spec"]["template"]["metadata"]["labels"], ports=ports)
    raise AssertionError(f"no workload {name}")


def elsewhere(namespace: str, **labels: str) -> Peer:
    """A pod in another namespace."""
    return Peer(labels=labels, namespace=namespace)


def internet(ip: str) -> Peer:
    """An address outside the cluster."""
    return Peer(namespace=None, ip=ip)


def _peer_matches(rule_peer: Obj, peer: Peer) -> bool:
    if "ipBlock" in rule_peer:
        if peer.ip is None:
            return False
        block = rule_peer["ipBlock"]
        address = ipaddress.ip_address(peer.ip)
        if address not in ipaddress.ip_network(block["cidr"]):
            return False
        return not any(address in ipaddress.ip_network(e) for e in block.get("except") or [])
    if peer.namespace is None:
        return False
    if "namespaceSelector" in rule_peer:
        namespace_labels = {"kubernetes.io/metadata.name": peer.namespace}
        if not selector_matches(rule_peer["namespaceSelector"], namespace_labels):
            return False
    elif peer.namespace != NAMESPACE:
        return False
    if "podSelector" in rule_peer:
        return selector_matches(rule_peer["podSelector"], peer.labels)
    return True


def _port_matches(rule_ports: list[Obj] | None, port: int, protocol: str, target: Peer) -> bool:
    if not rule_ports:
        return True
    for rule_port in rule_ports:
        if rule_port.get("protocol", "TCP") != protocol:
            continue
        wanted = rule_port.get("port")
        if wanted is None:
            return True
        number = target.ports.get(wanted) if isinstance(wanted, str) else wanted
        if number is not None and number <= port <= rule_port.get("endPort", number):
            return True
    return False


def _allowed(policies: list[Obj], subject: Peer, other: Peer, port: int, protocol: str, direction: str) -> bool:
    """Whether `subject`'s policies of `direction` (Ingress/Egress) admit the connection with `other`."""
    if subject.namespace != NAMESPACE:
        return True  # not governed by this namespace's policies
    selecting = [
        p
        for p in policies
        if direction in p["spec"].get("policyTypes", ["Ingress"])
        and (not p["spec"]["podSelector"] or selector_matches(p["spec"]["podSelector"], subject.labels))
    ]
    if not selecting:
        return True
    key, peers_key = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
    target = subject if direction == "Ingress" else other
    for policy in selecting:
        for rule in policy["spec"].get(key) or []:
            peers = rule.get(peers_key)
            if (not peers or any(_peer_matches(p, other) for p in peers)) and _port_matches(
                rule.get("ports"), port, protocol, target
            ):
                return True
    return False


def connects(policies: list[Obj], source: Peer, destination: Peer, port: int, protocol: str = "TCP") -> bool:
    """Whether the NetworkPolicies let `source` open `port` on `destination`."""
    return _allowed(policies, source, destination, port, protocol, "Egress") and _allowed(
        policies, destination, source, port, protocol, "Ingress"
    )


@pytest.fixture(scope="module")
def prod(rendered: dict[str, list[Obj]]) -> list[Obj]:
    """The rendered prod overlay."""
    return rendered["prod"]


@pytest.fixture(scope="module")
def policies(prod: list[Obj]) -> list[Obj]:
    """prod's NetworkPolicies."""
    return of_kind(prod, "NetworkPolicy")


TEMPORAL = elsewhere("temporal", **{"app.kubernetes.io/name": "temporal"})
COLLECTOR = elsewhere("observability", **{"app.kubernetes.io/name": "otel-collector"})
PROMETHEUS = elsewhere("monitoring", **{"app.kubernetes.io/name": "prometheus"})
KUBE_DNS = elsewhere("kube-system", **{"k8s-app": "kube-dns"})
INGRESS = elsewhere("ingress-nginx", **{"app.kubernetes.io/name": "ingress-nginx"})
DATABASE = internet("10.20.30.40")
WEBSITE = internet("93.184.216.34")
METADATA = internet("169.254.169.254")

# The operator's throwaway `kubectl run nats-box` of docs/deploy.md, with and without the label it gives.
NATS_BOX = Peer(labels={"run": "nats-box", "app.kubernetes.io/part-of": "drift"})
UNLABELLED_NATS_BOX = Peer(labels={"run": "nats-box"})

DRIFT = ("drift-gateway", "drift-dsl-store", "drift-dispatcher", "drift-worker", "drift-notifier", "drift-studio")
# (source workload, destination, port): every connection Drift makes in production.
REQUIRED = [
    *[(name, "nats", 4222) for name in DRIFT],
    *[(name, COLLECTOR, 4318) for name in DRIFT],
    ("drift-gateway", "redis-haproxy", 6379),
    ("drift-notifier", "redis-haproxy", 6379),
    ("drift-gateway", TEMPORAL, 7233),
    ("drift-dispatcher", TEMPORAL, 7233),
    ("drift-worker", TEMPORAL, 7233),
    ("drift-dispatcher", "drift-dsl-store", 8100),
    ("drift-notifier", TEMPORAL, 7233),
    ("drift-notifier", "drift-dsl-store", 8100),
    ("drift-gateway", "drift-dsl-store", 8100),
    ("drift-dsl-store", DATABASE, 5432),
    ("drift-worker", WEBSITE, 443),
    ("drift-notifier", WEBSITE, 443),
    ("redis-haproxy", "redis", 6379),
    ("redis", "redis", 6379),
    ("redis", "redis", 26379),
    ("nats", "nats", 6222),
    (INGRESS, "drift-gateway", 8000),
    (INGRESS, "drift-dsl-store", 8100),
    (PROMETHEUS, "drift-gateway", 8000),
    (PROMETHEUS, "drift-dsl-store", 8100),
    (PROMETHEUS, "drift-dispatcher", 9101),
    (PROMETHEUS, "drift-worker", 9102),
    (PROMETHEUS, "drift-notifier", 9103),
    (NATS_BOX, "nats", 4222),
    ("drift-studio", "drift-gateway", 8000),
    ("drift-studio", "drift-dsl-store", 8100),
    (INGRESS, "drift-studio", 8300),
    (PROMETHEUS, "drift-studio", 8300),
]
# Connections that must stay closed.
FORBIDDEN = [
    ("drift-worker", METADATA, 80),
    ("drift-notifier", METADATA, 80),
    ("drift-gateway", DATABASE, 5432),
    ("drift-gateway", WEBSITE, 443),
    ("drift-worker", "redis-haproxy", 6379),
    ("drift-worker", "drift-dsl-store", 8100),
    ("drift-worker", "redis", 6379),
    (INGRESS, "nats", 4222),
    (INGRESS, "redis-haproxy", 6379),
    (INGRESS, "drift-worker", 9102),
    (WEBSITE, "drift-dispatcher", 9101),
    (UNLABELLED_NATS_BOX, "nats", 4222),
    ("drift-studio", "redis-haproxy", 6379),
    ("drift-studio", DATABASE, 5432),
    ("drift-studio", TEMPORAL, 7233),
    ("drift-studio", WEBSITE, 443),
]


def _peer(spec: str | Peer, prod: list[Obj]) -> Peer:
    return spec if isinstance(spec, Peer) else pod(spec, prod)


@pytest.mark.parametrize(("source", "destination", "port"), REQUIRED)
def test_prod_network_policies_allow_what_drift_needs(
    prod: list[Obj], policies: list[Obj], source: str | Peer, destination: str | Peer, port: int
) -> None:
    """Every connection Drift's services and dependencies need in production is admitted by the policies."""
    assert connects(policies, _peer(source, prod), _peer(destination, prod), port)


@pytest.mark.parametrize(("source", "destination", "port"), FORBIDDEN)
def test_prod_network_policies_refuse_other_paths(
    prod: list[Obj], policies: list[Obj], source: str | Peer, destination: str | Peer, port: int
) -> None:
    """Paths Drift does not need (metadata endpoint, stray pods to data stores, outside to internals) are denied."""
    assert not connects(policies, _peer(source, prod), _peer(destination, prod), port)


def test_every_prod_pod_resolves_dns_and_is_default_denied(prod: list[Obj], policies: list[Obj]) -> None:
    """All prod pods may query kube-dns over UDP and TCP, and a default-deny policy covers both directions."""
    deny = [p for p in policies if not p["spec"]["podSelector"] and not p["spec"].get("ingress")]
    assert any(set(p["spec"]["policyTypes"]) == {"Ingress", "Egress"} and not p["spec"].get("egress") for p in deny)
    for workload in of_kind(prod, "Deployment", "StatefulSet"):
        source = pod(workload["metadata"]["name"], prod)
        assert connects(policies, source, KUBE_DNS, 53, "UDP")
        assert connects(policies, source, KUBE_DNS, 53, "TCP")
