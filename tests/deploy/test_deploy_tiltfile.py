"""The root Tiltfile, parsed and evaluated as Starlark (starlark-pyo3) with Tilt's builtins recorded.

Tilt itself is not run: the checks read what the Tiltfile asks Tilt to do against the tree, the
Dockerfiles and the rendered dev overlay.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import starlark as sl

from deploy.deploy_helpers import ROOT, SERVICES, Obj, build_args, find, of_kind
from deploy.dockerfile_lite import parse
from deploy.kubectl_kustomize import containers

TILTFILE = ROOT / "Tiltfile"
# Builtins of Tilt the Tiltfile may call, and the extension functions it may load.
TILT_BUILTINS = (
    "docker_build",
    "k8s_yaml",
    "kustomize",
    "k8s_resource",
    "local_resource",
    "sync",
    "run",
    "fall_back_on",
    "update_settings",
    "allow_k8s_contexts",
    "listdir",
)
EXTENSIONS = {"ext://restart_process": ("docker_build_with_restart",)}
EXPECTED_FORWARDS = {
    "drift-gateway": 8000,
    "drift-dsl-store": 8100,
    "drift-studio": 8300,
    "temporal": 8233,
    "jaeger": 16686,
}


@dataclass
class Call:
    """One recorded call of a Tilt builtin."""

    name: str
    args: list[Any]
    kwargs: dict[str, Any]


@dataclass
class TiltRun:
    """Every builtin call the Tiltfile made, in order."""

    calls: list[Call] = field(default_factory=list)

    def of(self, name: str) -> list[Call]:
        """The calls of one builtin."""
        return [c for c in self.calls if c.name == name]


def evaluate(path: Path) -> TiltRun:
    """Parse the Tiltfile as Starlark and run it with recording stand-ins for Tilt's builtins."""
    run = TiltRun()

    def recorder(name: str) -> Callable[..., Any]:
        def record(*args: Any, **kwargs: Any) -> Any:
            run.calls.append(Call(name, list(args), kwargs))
            if name == "listdir":
                base = ROOT / str(args[0])
                walk = base.rglob("*") if kwargs.get("recursive") else base.glob("*")
                return sorted(str(p) for p in walk if p.is_file())
            return {"builtin": name, "args": list(args), "kwargs": kwargs}

        return record

    def load(module: str) -> sl.FrozenModule:
        assert module in EXTENSIONS, f"load({module!r}): not an extension these checks know"
        loaded = sl.Module()
        for function in EXTENSIONS[module]:
            loaded.add_callable(function, recorder(function))
        return loaded.freeze()

    ast = sl.parse(path.name, path.read_text(), sl.Dialect.extended())
    module = sl.Module()
    for builtin in TILT_BUILTINS:
        module.add_callable(builtin, recorder(builtin))
    sl.eval(module, ast, sl.Globals.standard(), sl.FileLoader(load))
    return run


@pytest.fixture(scope="module")
def tilt() -> TiltRun:
    """The recorded evaluation of the root Tiltfile."""
    return evaluate(TILTFILE)


@pytest.fixture(scope="module")
def dev(rendered: dict[str, list[Obj]]) -> list[Obj]:
    """The rendered dev overlay."""
    return rendered["dev"]


def image_builds(tilt: TiltRun) -> dict[str, Call]:
    """Image name -> its build call."""
    builds = tilt.of("docker_build_with_restart") + tilt.of("docker_build")
    return {str(c.args[0]): c for c in builds}


def steps(call: Call, builtin: str) -> list[dict[str, Any]]:
    """The live_update steps of one builtin kind in a build call."""
    return [s for s in call.kwargs.get("live_update", []) if s["builtin"] == builtin]


def test_tiltfile_is_starlark_that_lints_clean_and_evaluates() -> None:
    """The Tiltfile parses as Starlark (not merely Python), lints without errors and runs on Tilt's builtins."""
    ast = sl.parse("Tiltfile", TILTFILE.read_text(), sl.Dialect.extended())
    errors = [lint for lint in ast.lint() if lint.severity == sl.EvalSeverity.Error]
    assert not errors, errors
    assert [load.module_id for load in ast.loads()] == ["ext://restart_process"]
    assert evaluate(TILTFILE).calls


def test_every_path_the_tiltfile_names_exists(tilt: TiltRun) -> None:
    """Build contexts, Dockerfiles, only/sync/fall-back paths, the kustomization and local_resource inputs exist."""
    paths: list[str] = []
    for build in image_builds(tilt).values():
        paths += [build.args[1], build.kwargs["dockerfile"], *build.kwargs.get("only", [])]
    for step in tilt.of("sync"):
        paths.append(step.args[0])
    for step in tilt.of("fall_back_on"):
        paths += step.args[0] if isinstance(step.args[0], list) else [step.args[0]]
    paths += [c.args[0] for c in tilt.of("kustomize")]
    for resource in tilt.of("local_resource"):
        paths += resource.kwargs.get("deps", [])
        paths += [w for w in shlex.split(resource.kwargs["cmd"]) if "/" in w and not w.startswith("http")]
    assert len(paths) > 20
    missing = [p for p in paths if not (ROOT / p).exists()]
    assert not missing, missing


def test_every_drift_image_is_built_from_its_dockerfile_and_used_by_the_dev_overlay(
    tilt: TiltRun, dev: list[Obj]
) -> None:
    """One build per service, from the one Dockerfile with the service's build arguments, named as the dev image."""
    builds = image_builds(tilt)
    assert set(builds) == {image for image, _, _ in SERVICES.values()}
    for name, (image, _, _) in SERVICES.items():
        build = builds[image]
        assert build.args[1] == "."
        assert build.kwargs["dockerfile"] == "Dockerfile"
        assert build.kwargs["build_args"] == build_args(name)
        deployment = find(dev, "Deployment", image)
        assert containers(deployment)[0]["image"] == image
        entrypoint = parse(ROOT / build.kwargs["dockerfile"], build_args(name))[-1].all("ENTRYPOINT")[-1].args
        assert build.kwargs["entrypoint"] == entrypoint


def test_build_context_holds_every_file_the_dockerfile_copies(tilt: TiltRun) -> None:
    """Tilt's `only`/`ignore` keep uv.lock, every workspace manifest, libs/ and the service's own sources."""
    for name, (image, _, _) in SERVICES.items():
        build = image_builds(tilt)[image]
        only, ignore = build.kwargs["only"], build.kwargs.get("ignore", [])
        required = ["uv.lock", "pyproject.toml", "libs", f"services/{name}/src"]
        required += [p.relative_to(ROOT).as_posix() for p in ROOT.glob("*/*/pyproject.toml")]
        for path in required:
            assert any(path == o or path.startswith(o.rstrip("/") + "/") for o in only), f"{image}: {path} not in only"
            assert path not in ignore and not any(path.startswith(i + "/") for i in ignore), f"{image}: {path} ignored"
        assert f"services/{name}/src" not in ignore


def test_live_update_syncs_sources_to_where_the_image_has_them(tilt: TiltRun) -> None:
    """Each image syncs libs/ and its service's src to /app/<same path>, and rebuilds when uv.lock changes."""
    for name, (image, _, _) in SERVICES.items():
        build = image_builds(tilt)[image]
        syncs = {tuple(s["args"]) for s in steps(build, "sync")}
        assert syncs == {("libs", "/app/libs"), (f"services/{name}/src", f"/app/services/{name}/src")}
        dockerfile = parse(ROOT / build.kwargs["dockerfile"], build.kwargs["build_args"])
        runtime_copies = {i.args[-1] for i in dockerfile[-1].all("COPY")}
        for _, destination in syncs:
            assert any(destination.startswith(c) for c in runtime_copies), destination
        fall_back = [s["args"][0] for s in steps(build, "fall_back_on")]
        assert fall_back and "uv.lock" in fall_back[0] and "pyproject.toml" in fall_back[0]
        assert build.kwargs["live_update"][0]["builtin"] == "fall_back_on", "fall_back_on must come first"
        # The restart marker lives where the image's non-root user may write (/app is theirs).
        assert build.kwargs["restart_file"].startswith("/app/")


def test_port_forwards_reach_declared_container_ports(tilt: TiltRun, dev: list[Obj]) -> None:
    """Gateway 8000, dsl-store 8100, Studio 8300, Temporal UI 8233, Jaeger UI 16686 reach declared ports."""
    forwards: dict[str, list[tuple[int, int]]] = {}
    for resource in tilt.of("k8s_resource"):
        for forward in resource.kwargs.get("port_forwards", []):
            local, _, remote = str(forward).rpartition(":")
            forwards.setdefault(resource.args[0], []).append((int(local), int(remote)))
    assert {name: ports[0][0] for name, ports in forwards.items()} == EXPECTED_FORWARDS
    for name, ports in forwards.items():
        workload = [w for w in of_kind(dev, "Deployment", "StatefulSet") if w["metadata"]["name"] == name]
        assert workload, f"port forward for unknown workload {name}"
        declared = {p["containerPort"] for c in containers(workload[0]) for p in c.get("ports") or []}
        for _, remote in ports:
            assert remote in declared, f"{name}: container port {remote} not declared"


def test_resources_are_grouped_by_role_and_match_the_overlay(tilt: TiltRun, dev: list[Obj]) -> None:
    """Every workload and every other object of the dev overlay belongs to a labelled Tilt resource."""
    resources = tilt.of("k8s_resource")
    named = {r.args[0] if r.args else r.kwargs["new_name"]: r for r in resources}
    for resource in named.values():
        assert resource.kwargs.get("labels"), f"{resource.args} has no label"
    workloads = {w["metadata"]["name"] for w in of_kind(dev, "Deployment", "StatefulSet")}
    assert workloads <= set(named), f"workloads without a resource: {workloads - set(named)}"
    grouped = {s.lower() for r in resources for s in r.kwargs.get("objects", [])}
    for obj in dev:
        if obj["kind"] in ("Deployment", "StatefulSet", "Service"):
            continue  # Tilt attaches Services to the workload they select
        selector = f"{obj['metadata']['name']}:{obj['kind']}".lower()
        assert selector in grouped, f"{selector} would land in Tilt's 'uncategorized'"
    labels = {label for r in resources for label in r.kwargs["labels"]}
    assert {"drift-api", "drift-runtime", "infra", "observability"} <= labels
    known = set(named) | {r.args[0] for r in tilt.of("local_resource")}
    for resource in [*resources, *tilt.of("local_resource")]:
        for dependency in resource.kwargs.get("resource_deps", []):
            assert dependency in known, f"resource_deps names unknown resource {dependency}"


def test_example_bundles_are_loaded_once_the_dsl_store_is_up(tilt: TiltRun) -> None:
    """A local_resource runs deploy/load_examples.py against the forwarded dsl-store after it is ready."""
    (loader,) = tilt.of("local_resource")
    command = shlex.split(loader.kwargs["cmd"])
    assert command[:4] == ["uv", "run", "--frozen", "python"] and command[4] == "deploy/load_examples.py"
    assert "http://localhost:8100" in command
    assert "drift-dsl-store" in loader.kwargs["resource_deps"]
    assert "examples" in loader.kwargs["deps"]
    assert list((ROOT / "examples").glob("*.json"))
