"""Load the example bundles (`examples/*.json`) into a running dsl-store; `tilt up` runs it on start.

    uv run --frozen python deploy/load_examples.py [--url http://localhost:8100] [--token KEY]

It waits for the dsl-store's `/health/ready`, then loads every bundle with
`drift_cli.bundles.load_bundle_files` (the loader `drift dev` uses: nodes published, workflows
published and activated, unchanged definitions not republished, so re-running is harmless).
The bearer token is `--token`, else `$DRIFT_API_KEY`, else the dev overlay's key for tenant
`default` (read from `deploy/k8s/overlays/dev/drift-dev.env`, the one place it is written).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import httpx

from drift_cli.bundles import find_bundles, load_bundle_files

ROOT = Path(__file__).resolve().parent.parent
DEV_ENV_FILE = ROOT / "deploy" / "k8s" / "overlays" / "dev" / "drift-dev.env"
EXAMPLES = ROOT / "examples"


def read_env_file(path: Path) -> dict[str, str]:
    """`KEY=VALUE` lines of a kustomize env file (comments and blank lines skipped)."""
    values: dict[str, str] = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            values[key] = value
    return values


def dev_api_key(env_file: Path = DEV_ENV_FILE, tenant: str = "default") -> str:
    """The bearer key that `DRIFT_API_KEYS` in the dev env file gives to `tenant`."""
    keys = json.loads(read_env_file(env_file)["DRIFT_API_KEYS"])
    for key, owner in keys.items():
        if owner == tenant:
            return str(key)
    raise LookupError(f"{env_file}: no API key for tenant {tenant!r}")


def wait_ready(url: str, timeout_s: float) -> None:
    """Poll `url/health/ready` until it answers 200; TimeoutError after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    last = "no answer"
    with httpx.Client(timeout=3.0, trust_env=False) as client:
        while time.monotonic() < deadline:
            try:
                response = client.get(f"{url}/health/ready")
                if response.status_code == 200:
                    return
                last = f"HTTP {response.status_code}"
            except httpx.HTTPError as exc:
                last = str(exc) or type(exc).__name__
            time.sleep(1.0)
    raise TimeoutError(f"{url} not ready after {timeout_s:.0f}s ({last})")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--url", default=os.environ.get("DRIFT_DSL_STORE_URL", "http://localhost:8100"))
    parser.add_argument("--token", default=os.environ.get("DRIFT_API_KEY"))
    parser.add_argument("--examples", type=Path, default=EXAMPLES)
    parser.add_argument("--wait", type=float, default=180.0, help="seconds to wait for the dsl-store")
    parser.add_argument("--dry-run", action="store_true", help="list the bundles and exit")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Load the bundles; 0 when every definition loaded, 1 otherwise."""
    args = parse_args(argv)
    token = args.token or dev_api_key()
    bundles = find_bundles(args.examples)
    if not bundles:
        print(f"no bundles under {args.examples}", file=sys.stderr)
        return 1
    if args.dry_run:
        for path in bundles:
            print(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)
        return 0
    wait_ready(args.url.rstrip("/"), args.wait)
    report = asyncio.run(load_bundle_files(args.url.rstrip("/"), token, bundles))
    for node_id, version in sorted(report.nodes.items()):
        print(f"nodeDefinition {node_id} -> {version}")
    for workflow_id, version in sorted(report.workflows.items()):
        print(f"workflowDefinition {workflow_id} -> {version} (ACTIVE)")
    for error in report.errors:
        print(f"error: {error}", file=sys.stderr)
    return 1 if report.errors else 0


if __name__ == "__main__":
    sys.exit(main())
