"""docs/deploy.md against the tree, and deploy/load_examples.py (what `tilt up` runs) against a real dsl-store."""

from __future__ import annotations

import importlib.util
import re
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import httpx
import pytest
from support.dsl_store import dsl_store_process

from deploy.deploy_helpers import ROOT
from drift_cli.bundles import find_bundles, read_bundle

GUIDE = ROOT / "docs" / "deploy.md"
LOADER = ROOT / "deploy" / "load_examples.py"


def load_module(path: Path) -> ModuleType:
    """Import a script that is not part of a package."""
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_deploy_guide_names_only_paths_that_exist() -> None:
    """Every repository path the deploy guide names in backticks exists (`<name>` stands for any service)."""
    text = GUIDE.read_text()
    prefixes = ("deploy/", "services/", "libs/", "tests/", "examples/", "docs/", "tools/")
    named = {
        m for m in re.findall(r"`([^`\s]+)`", text) if m.startswith(prefixes) or m in (".dockerignore", "Tiltfile")
    }
    assert len(named) > 10
    for path in named:
        pattern = path.replace("<name>", "*").split("*.json")[0]
        matches = list(ROOT.glob(pattern)) if "*" in pattern else [ROOT / pattern]
        assert matches and all(m.exists() for m in matches), f"docs/deploy.md names missing {path}"


def test_deploy_guide_pods_in_the_prod_namespace_pass_its_network_policies() -> None:
    """Every `kubectl -n drift run` in the guide labels its pod part-of=drift, the label the prod
    NetworkPolicies admit to NATS (test_deploy_network checks that both ways)."""
    commands = re.findall(r"kubectl -n drift run (?:[^\n]*\\\n)*[^\n]*", GUIDE.read_text())
    assert commands
    for command in commands:
        assert "--labels=app.kubernetes.io/part-of=drift" in command, command


def test_deploy_guide_covers_the_issue_topics() -> None:
    """The guide walks from zero to a cluster, sizes it, explains each production dependency and its limits."""
    text = GUIDE.read_text()
    for phrase in (
        "tilt up",
        "kubectl apply -k deploy/k8s/overlays/prod",
        "Sizing",
        "NATS JetStream, clustered",
        "Redis with Sentinel",
        "Temporal",
        "PostgreSQL",
        "What the checks show, and what they cannot",
        "No image is built here",
    ):
        assert phrase in text, phrase


def test_example_loader_lists_bundles_and_reads_the_dev_key(capsys: pytest.CaptureFixture[str]) -> None:
    """load_examples finds examples/*.json bundles and takes tenant `default`'s key from the dev env file."""
    loader = load_module(LOADER)
    assert loader.main(["--dry-run"]) == 0
    listed = capsys.readouterr().out.split()
    assert listed and all(line.startswith("examples/") for line in listed)
    key = loader.dev_api_key()
    assert key and "dev" in key


@pytest.fixture
def dsl_store(tmp_path: Path) -> Iterator[str]:
    """A real dsl-store on embedded SQLite and a free loopback port, keyed with the dev overlay's keys."""
    loader = load_module(LOADER)
    # Not waited for here: the loader's own `--wait` is what the test exercises.
    with dsl_store_process(tmp_path, loader.read_env_file(loader.DEV_ENV_FILE)["DRIFT_API_KEYS"]) as url:
        yield url


def test_example_loader_loads_every_bundle_into_a_dsl_store(dsl_store: str) -> None:
    """What Tilt's load-examples runs: waits for readiness, loads and activates every example, twice harmlessly."""
    loader = load_module(LOADER)
    assert loader.main(["--url", dsl_store, "--wait", "30"]) == 0
    assert loader.main(["--url", dsl_store, "--wait", "5"]) == 0
    key = loader.dev_api_key()
    bundles = find_bundles(ROOT / "examples")
    workflow_ids = [w["id"] for path in bundles for w in read_bundle(path).workflow_definitions]
    assert workflow_ids
    deadline = time.monotonic() + 5
    with httpx.Client(base_url=dsl_store, headers={"Authorization": f"Bearer {key}"}, trust_env=False) as client:
        for workflow_id in workflow_ids:
            response = client.get(f"/workflowDefinition/{workflow_id}", params={"version": "ACTIVE"})
            assert response.status_code == 200, (workflow_id, response.text)
            assert time.monotonic() < deadline


def test_dev_store_driver_is_a_dsl_store_dependency() -> None:
    """The dev overlay's DRIFT_STORE_URL driver (asyncpg) is among drift-dsl-store's locked dependencies."""
    project = tomllib.loads((ROOT / "services" / "dsl-store" / "pyproject.toml").read_text())["project"]
    names = {re.split(r"[<>=!~\[ ;]", d, maxsplit=1)[0].lower() for d in project["dependencies"]}
    lock = (ROOT / "uv.lock").read_text()
    assert "asyncpg" in names and 'name = "asyncpg"' in lock
