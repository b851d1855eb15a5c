"""Fixtures of the deploy checks: the repository root and each kustomization rendered once.

Nothing here needs a cluster, a Docker engine or the network.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from deploy.deploy_helpers import KUSTOMIZATIONS, ROOT, Obj
from deploy.kubectl_kustomize import render


@pytest.fixture(scope="session")
def root() -> Path:
    """The repository root."""
    return ROOT


@pytest.fixture(scope="session")
def rendered() -> dict[str, list[Obj]]:
    """Every kustomization (base, dev, prod) rendered by `kubectl kustomize`."""
    return {name: render(path) for name, path in KUSTOMIZATIONS.items()}
