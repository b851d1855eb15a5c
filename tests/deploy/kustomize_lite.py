"""A Python-only renderer for the subset of kustomize that `deploy/k8s` uses.

It exists so that the manifests can be rendered and checked without `kubectl` or `kustomize`
(CI has neither). It implements, with kustomize's semantics:

- `resources`: YAML files (several documents each) and directories holding a kustomization;
- `namespace`: set on every namespaced object;
- `patches`: strategic-merge patches (a mapping; merge keys of the Kubernetes API for the lists
  we patch) and JSON 6902 patches (a list of operations), from `path` or inline `patch`, with an
  optional `target` (`kind`, `name`, `labelSelector` of `key=value` pairs);
- `configMapGenerator` / `secretGenerator` with `literals` and `envs`, only together with
  `generatorOptions.disableNameSuffixHash: true` (content hashes are not reproduced);
- `images` (`newName`, `newTag`, `digest`) and `replicas`.

Anything else in a kustomization is an error, so that an overlay cannot quietly rely on a
feature this renderer would ignore (real kustomize would then render something else).
"""

from __future__ import annotations

import base64
import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

Obj = dict[str, Any]

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
SUPPORTED_KEYS = {
    "apiVersion",
    "kind",
    "resources",
    "namespace",
    "patches",
    "configMapGenerator",
    "secretGenerator",
    "generatorOptions",
    "images",
    "replicas",
}
CLUSTER_SCOPED_KINDS = {
    "Namespace",
    "ClusterRole",
    "ClusterRoleBinding",
    "CustomResourceDefinition",
    "PersistentVolume",
    "StorageClass",
    "PriorityClass",
    "ValidatingWebhookConfiguration",
    "MutatingWebhookConfiguration",
}
# patchMergeKey of the Kubernetes API for the list fields a strategic-merge patch may merge;
# every other list is replaced whole, as kustomize does for lists without a merge key.
MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "imagePullSecrets": "name",
}
POD_TEMPLATE_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}


class KustomizeError(Exception):
    """The kustomization uses something this renderer does not support, or is itself wrong."""


def object_id(obj: Obj) -> tuple[str, str, str]:
    """(kind, namespace, name): unique in a rendered set, as kustomize requires."""
    meta = obj.get("metadata") or {}
    return (str(obj.get("kind")), str(meta.get("namespace") or ""), str(meta.get("name")))


def _find_kustomization(directory: Path) -> Path:
    for name in KUSTOMIZATION_FILES:
        if (directory / name).is_file():
            return directory / name
    raise KustomizeError(f"{directory}: no kustomization file")


def load_yaml_documents(path: Path) -> list[Obj]:
    """Every non-empty document of a YAML file; each must be a Kubernetes object."""
    docs = [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]
    for doc in docs:
        if not isinstance(doc, dict) or "kind" not in doc or "apiVersion" not in doc:
            raise KustomizeError(f"{path}: every document must be a Kubernetes object with apiVersion and kind")
    return docs


def render(directory: Path | str) -> list[Obj]:
    """Render the kustomization in `directory` to a list of objects (kustomize build)."""
    directory = Path(directory)
    kustomization = yaml.safe_load(_find_kustomization(directory).read_text()) or {}
    unknown = set(kustomization) - SUPPORTED_KEYS
    if unknown:
        raise KustomizeError(f"{directory}: unsupported kustomization fields {sorted(unknown)}")

    objects: list[Obj] = []
    for entry in kustomization.get("resources") or []:
        path = (directory / entry).resolve()
        if path.is_dir():
            objects.extend(render(path))
        elif path.is_file():
            objects.extend(load_yaml_documents(path))
        else:
            raise KustomizeError(f"{directory}: resource {entry!r} does not exist")

    objects.extend(_generate(directory, kustomization))
    _check_unique(objects, directory)

    for patch in kustomization.get("patches") or []:
        _apply_patch(directory, patch, objects)

    namespace = kustomization.get("namespace")
    if namespace:
        for obj in objects:
            if obj["kind"] not in CLUSTER_SCOPED_KINDS:
                obj.setdefault("metadata", {})["namespace"] = namespace

    for image in kustomization.get("images") or []:
        _set_image(objects, image)
    for replicas in kustomization.get("replicas") or []:
        _set_replicas(objects, replicas, directory)

    _check_unique(objects, directory)
    return objects


def _check_unique(objects: list[Obj], directory: Path) -> None:
    seen: set[tuple[str, str, str]] = set()
    for obj in objects:
        key = object_id(obj)
        if key in seen:
            raise KustomizeError(f"{directory}: duplicate object {key}")
        seen.add(key)


def _read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines, `#` comments and blank lines skipped; values taken verbatim (no quoting)."""
    values: dict[str, str] = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if "=" not in line:
            raise KustomizeError(f"{path}: not KEY=VALUE: {raw!r}")
        key, value = line.split("=", 1)
        values[key] = value
    return values


def _generate(directory: Path, kustomization: Obj) -> Iterator[Obj]:
    options = kustomization.get("generatorOptions") or {}
    generators = [("ConfigMap", g) for g in kustomization.get("configMapGenerator") or []]
    generators += [("Secret", g) for g in kustomization.get("secretGenerator") or []]
    if generators and options.get("disableNameSuffixHash") is not True:
        raise KustomizeError(f"{directory}: generators need generatorOptions.disableNameSuffixHash: true here")
    for kind, generator in generators:
        unknown = set(generator) - {"name", "literals", "envs", "type", "options"}
        if unknown:
            raise KustomizeError(f"{directory}: unsupported generator fields {sorted(unknown)}")
        values: dict[str, str] = {}
        for env_file in generator.get("envs") or []:
            values.update(_read_env_file(directory / env_file))
        for literal in generator.get("literals") or []:
            key, value = str(literal).split("=", 1)
            values[key] = value
        labels = {**(options.get("labels") or {}), **((generator.get("options") or {}).get("labels") or {})}
        metadata: Obj = {"name": generator["name"]}
        if labels:
            metadata["labels"] = labels
        obj: Obj = {"apiVersion": "v1", "kind": kind, "metadata": metadata}
        if kind == "Secret":
            obj["type"] = generator.get("type", "Opaque")
            obj["data"] = {k: base64.b64encode(v.encode()).decode() for k, v in values.items()}
        else:
            obj["data"] = values
        yield obj


def _labels_match(selector: str, labels: dict[str, str]) -> bool:
    for term in selector.split(","):
        key, _, value = term.strip().partition("=")
        if labels.get(key) != value:
            return False
    return True


def _targets(objects: list[Obj], target: Obj) -> list[Obj]:
    unknown = set(target) - {"kind", "name", "labelSelector", "group", "version"}
    if unknown:
        raise KustomizeError(f"unsupported patch target fields {sorted(unknown)}")
    found = []
    for obj in objects:
        meta = obj.get("metadata") or {}
        if "kind" in target and obj["kind"] != target["kind"]:
            continue
        if "name" in target and meta.get("name") != target["name"]:
            continue
        if "labelSelector" in target and not _labels_match(target["labelSelector"], meta.get("labels") or {}):
            continue
        found.append(obj)
    return found


def _apply_patch(directory: Path, spec: Obj, objects: list[Obj]) -> None:
    unknown = set(spec) - {"path", "patch", "target"}
    if unknown:
        raise KustomizeError(f"{directory}: unsupported patch fields {sorted(unknown)}")
    if "path" in spec:
        documents = list(yaml.safe_load_all((directory / spec["path"]).read_text()))
    else:
        documents = list(yaml.safe_load_all(spec["patch"]))
    documents = [d for d in documents if d is not None]
    where = f"{directory}: patch {spec.get('path') or spec.get('target')}"
    for document in documents:
        if isinstance(document, list):  # JSON 6902
            if "target" not in spec:
                raise KustomizeError(f"{where}: a JSON 6902 patch needs a target")
            targets = _targets(objects, spec["target"])
            if not targets:
                raise KustomizeError(f"{where}: no object matches the target")
            for obj in targets:
                for operation in document:
                    _json_patch(obj, operation, where)
        elif isinstance(document, dict):  # strategic merge
            if "target" in spec:
                targets = _targets(objects, spec["target"])
            else:
                name = (document.get("metadata") or {}).get("name")
                targets = _targets(objects, {"kind": document.get("kind"), "name": name})
            if not targets:
                raise KustomizeError(f"{where}: no object matches {document.get('kind')}/{document.get('metadata')}")
            for obj in targets:
                patch = copy.deepcopy(document)
                if "target" in spec:  # kustomize applies a targeted patch whatever name it carries
                    patch.setdefault("metadata", {})["name"] = obj["metadata"]["name"]
                merged = strategic_merge(obj, patch)
                obj.clear()
                obj.update(merged)
        else:
            raise KustomizeError(f"{where}: a patch is a mapping or a list of operations")


def strategic_merge(base: Any, patch: Any, field: str = "") -> Any:
    """Merge `patch` into `base` the way a strategic-merge patch does for the fields used here."""
    if isinstance(patch, dict) and isinstance(base, dict):
        if any(str(k).startswith("$") for k in patch):
            raise KustomizeError(f"patch directives ({[k for k in patch if str(k).startswith('$')]}) unsupported")
        result = copy.deepcopy(base)
        for key, value in patch.items():
            if value is None:
                result.pop(key, None)
            elif key in result:
                result[key] = strategic_merge(result[key], value, key)
            else:
                result[key] = copy.deepcopy(value)
        return result
    if isinstance(patch, list) and isinstance(base, list):
        key = _merge_key(field, base + patch)
        if key is None:
            return copy.deepcopy(patch)
        result = copy.deepcopy(base)
        for item in patch:
            for index, existing in enumerate(result):
                if existing.get(key) == item.get(key):
                    result[index] = strategic_merge(existing, item, field)
                    break
            else:
                result.append(copy.deepcopy(item))
        return result
    return copy.deepcopy(patch)


def _merge_key(field: str, items: list[Any]) -> str | None:
    if not items or not all(isinstance(i, dict) for i in items):
        return None
    if field == "ports":  # containerPort in a container, port in a Service
        key = "containerPort" if all("containerPort" in i for i in items) else "port"
    else:
        key = MERGE_KEYS.get(field, "")
    return key if key and all(key in i for i in items) else None


def _pointer(path: str) -> list[str]:
    if not path.startswith("/"):
        raise KustomizeError(f"JSON pointer must start with '/': {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path.split("/")[1:]]


def _json_patch(obj: Obj, operation: Obj, where: str) -> None:
    op, parts = operation.get("op"), _pointer(str(operation.get("path")))
    parent: Any = obj
    for part in parts[:-1]:
        parent = parent[int(part)] if isinstance(parent, list) else parent.get(part)
        if parent is None:
            raise KustomizeError(f"{where}: path {operation['path']} does not exist")
    last = parts[-1]
    if op in ("add", "replace"):
        value = copy.deepcopy(operation["value"])
        if isinstance(parent, list):
            if last == "-":
                parent.append(value)
            elif op == "add":
                parent.insert(int(last), value)
            else:
                parent[int(last)] = value
        else:
            if op == "replace" and last not in parent:
                raise KustomizeError(f"{where}: replace of missing {operation['path']}")
            parent[last] = value
    elif op == "remove":
        if isinstance(parent, list):
            del parent[int(last)]
        else:
            del parent[last]
    else:
        raise KustomizeError(f"{where}: unsupported JSON patch op {op!r}")


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


def _image_name(image: str) -> str:
    if "@" in image:
        return image.split("@", 1)[0]
    head, _, tail = image.rpartition(":")
    return head if head and "/" not in tail else image


def _set_image(objects: list[Obj], spec: Obj) -> None:
    for obj in objects:
        for container in containers(obj):
            if _image_name(container["image"]) != spec["name"]:
                continue
            name = spec.get("newName", spec["name"])
            if "digest" in spec:
                container["image"] = f"{name}@{spec['digest']}"
            elif "newTag" in spec:
                container["image"] = f"{name}:{spec['newTag']}"
            else:
                old = container["image"]
                container["image"] = name + old[len(_image_name(old)) :]


def _set_replicas(objects: list[Obj], spec: Obj, directory: Path) -> None:
    found = [o for o in objects if o["metadata"]["name"] == spec["name"] and o["kind"] in POD_TEMPLATE_KINDS]
    if not found:
        raise KustomizeError(f"{directory}: replicas for unknown workload {spec['name']!r}")
    for obj in found:
        obj["spec"]["replicas"] = int(spec["count"])
