"""Shared constants and helpers of the deploy checks (`tests/deploy`)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
KUSTOMIZATIONS = {"base": K8S / "base", "dev": K8S / "overlays" / "dev", "prod": K8S / "overlays" / "prod"}
OVERLAYS = ("dev", "prod")

# The five Drift services: directory name -> (image and `service.name`, port name, port).
SERVICES = {
    "gateway": ("drift-gateway", "http", 8000),
    "dsl-store": ("drift-dsl-store", "http", 8100),
    "dispatcher": ("drift-dispatcher", "metrics", 9101),
    "worker": ("drift-worker", "metrics", 9102),
    "notifier": ("drift-notifier", "metrics", 9103),
    "studio": ("drift-studio", "http", 8300),
}

# Directory name -> the variable that moves the port above (the Dockerfile's PORT_VARIABLE build argument).
PORT_VARIABLES = {
    "gateway": "DRIFT_GATEWAY_PORT",
    "dsl-store": "DRIFT_DSL_STORE_PORT",
    "dispatcher": "DRIFT_METRICS_PORT",
    "worker": "DRIFT_METRICS_PORT",
    "notifier": "DRIFT_METRICS_PORT",
    "studio": "DRIFT_STUDIO_PORT",
}
DOCKERFILE = ROOT / "Dockerfile"
"""The one Dockerfile every service's image is built from."""

Obj = dict[str, Any]


def build_args(service: str) -> dict[str, str]:
    """The build arguments that make the Dockerfile the service's image (as the Tiltfile passes them)."""
    return {"SERVICE": service, "PORT": str(SERVICES[service][2]), "PORT_VARIABLE": PORT_VARIABLES[service]}


def find(objects: list[Obj], kind: str, name: str) -> Obj:
    """The object of `kind` named `name`; fails the test when absent."""
    for obj in objects:
        if obj["kind"] == kind and obj["metadata"]["name"] == name:
            return obj
    raise AssertionError(f"no {kind} {name!r}")


def of_kind(objects: list[Obj], *kinds: str) -> list[Obj]:
    """The objects of any of `kinds`."""
    return [o for o in objects if o["kind"] in kinds]


def selector_matches(selector: Obj | None, labels: dict[str, str]) -> bool:
    """A Kubernetes LabelSelector (matchLabels and matchExpressions) against `labels`."""
    if selector is None:
        return False
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or []:
        key, operator, values = expression["key"], expression["operator"], expression.get("values") or []
        if operator == "In" and labels.get(key) not in values:
            return False
        if operator == "NotIn" and labels.get(key) in values:
            return False
        if operator == "Exists" and key not in labels:
            return False
        if operator == "DoesNotExist" and key in labels:
            return False
    return True


def read_env_names(path: Path) -> set[str]:
    """Every `DRIFT_*` name a Python source reads or mentions in a string literal."""
    return set(re.findall(r"[\"'](DRIFT_[A-Z0-9_]+)[\"']", path.read_text()))
