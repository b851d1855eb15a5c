"""Where the CLI finds Drift's servers: environment variables first, then what `drift dev` wrote.

`drift dev` may not get its preferred ports (a taken 4222 moves NATS elsewhere), so it writes
the addresses it really uses to `$DRIFT_HOME/endpoints.json` while it runs and removes the file
when it stops. Every command resolves each server in this order:

1. its URL variable (`DRIFT_GATEWAY_URL`, `DRIFT_DSL_STORE_URL`, `DRIFT_NATS_URL`);
2. its port variable (`DRIFT_GATEWAY_PORT`, `DRIFT_DSL_STORE_PORT`, `DRIFT_NATS_PORT`) on 127.0.0.1;
3. `$DRIFT_HOME/endpoints.json` (DRIFT_HOME defaults to `.drift`), when the `drift dev` that
   wrote it is still running;
4. the default port on 127.0.0.1.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from drift_client.stream import redact_url

__all__ = [
    "DSL_STORE_URL_HELP",
    "ENDPOINTS_FILE",
    "Endpoint",
    "dsl_store",
    "gateway",
    "home",
    "nats",
    "read_endpoints",
    "remove_endpoints",
    "unreachable",
    "write_endpoints",
]

ENDPOINTS_FILE = "endpoints.json"
DSL_STORE_URL_HELP = "dsl-store base URL (default: $DRIFT_DSL_STORE_URL, else http://127.0.0.1:$DRIFT_DSL_STORE_PORT)"
"""The `--dsl-store-url` option's help, the same on every command that takes it."""


@dataclass(frozen=True)
class Endpoint:
    """One server's address, and where it came from (to name in an error)."""

    name: str
    """What a person calls it: `gateway`, `dsl-store`, `NATS`."""
    url: str
    variable: str
    """The variable that sets it (`DRIFT_GATEWAY_URL`, ...)."""
    source: str
    """`DRIFT_GATEWAY_URL`, `DRIFT_GATEWAY_PORT`, the endpoints file's path, or `default`."""

    def unreachable(self, reason: str = "") -> str:
        """One line: which server, at which address, why, and which variable points elsewhere."""
        why = f" ({reason})" if reason else ""
        if self.source == self.variable or self.source.startswith("--"):
            origin = f"set by {self.source}"
        elif self.source == "default":
            origin = f"the default; is `drift dev` running? set {self.variable} to point elsewhere"
        elif self.source.startswith("DRIFT_"):
            origin = f"from {self.source}; set {self.variable} to point elsewhere"
        else:
            origin = f"from {self.source}, written by `drift dev`; set {self.variable} to point elsewhere"
        return f"cannot reach the {self.name} at {redact_url(self.url)}{why} [{origin}]"


def home(env: Mapping[str, str] | None = None) -> Path:
    """DRIFT_HOME (default `.drift` in the current directory)."""
    env = os.environ if env is None else env
    return Path(env.get("DRIFT_HOME") or ".drift").expanduser()


def _alive(pid: object) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it exists
        return True
    return True


def write_endpoints(drift_home: Path, addresses: Mapping[str, str], pid: int | None = None) -> Path:
    """Write `addresses` (name -> URL) with the writer's pid, atomically; answer the file's path."""
    path = drift_home / ENDPOINTS_FILE
    tmp = path.with_name(path.name + ".tmp")
    # Owner-only: the NATS address carries the service user's password.
    with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as out:
        out.write(json.dumps({"pid": pid or os.getpid(), **addresses}, indent=2) + "\n")
    tmp.chmod(0o600)
    os.replace(tmp, path)
    return path


def remove_endpoints(drift_home: Path, pid: int | None = None) -> None:
    """Remove the file if this process (or `pid`) wrote it; another `drift dev`'s file stays."""
    path = drift_home / ENDPOINTS_FILE
    try:
        if json.loads(path.read_text()).get("pid") == (pid or os.getpid()):
            path.unlink()
    except (OSError, ValueError, AttributeError):
        return


def read_endpoints(env: Mapping[str, str] | None = None) -> tuple[dict[str, str], Path]:
    """The addresses a running `drift dev` wrote (empty when none runs), and the file's path."""
    path = home(env) / ENDPOINTS_FILE
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}, path
    if not isinstance(data, dict) or not _alive(data.get("pid")):
        return {}, path  # left by a drift dev that was killed: its addresses are stale
    return {k: v for k, v in data.items() if isinstance(v, str)}, path


def _resolve(
    env: Mapping[str, str] | None, name: str, key: str, prefix: str, scheme: str, default_port: int
) -> Endpoint:
    env = os.environ if env is None else env
    url_var, port_var = f"DRIFT_{prefix}_URL", f"DRIFT_{prefix}_PORT"
    if env.get(url_var, "").strip():
        return Endpoint(name, env[url_var].strip().rstrip("/"), url_var, url_var)
    if env.get(port_var, "").strip():
        return Endpoint(name, f"{scheme}://127.0.0.1:{env[port_var].strip()}", url_var, port_var)
    written, path = read_endpoints(env)
    if key in written:
        return Endpoint(name, written[key].rstrip("/"), url_var, str(path))
    return Endpoint(name, f"{scheme}://127.0.0.1:{default_port}", url_var, "default")


def gateway(env: Mapping[str, str] | None = None) -> Endpoint:
    """The gateway (runtime API)."""
    return _resolve(env, "gateway", "gateway", "GATEWAY", "http", 8000)


def dsl_store(env: Mapping[str, str] | None = None) -> Endpoint:
    """The dsl-store (definitions API)."""
    return _resolve(env, "dsl-store", "dslStore", "DSL_STORE", "http", 8100)


def nats(env: Mapping[str, str] | None = None) -> Endpoint:
    """NATS (the event stream `drift events` reads)."""
    return _resolve(env, "NATS server", "nats", "NATS", "nats", 4222)


def _origin(url: str) -> tuple[str, int | None]:
    parts = urlsplit(url)
    return (parts.hostname or "", parts.port)


def unreachable(
    url: str,
    reason: str,
    env: Mapping[str, str] | None = None,
    flag: str | None = None,
    dsl_store_first: bool = False,
) -> str:
    """The one-line message for a failed connection to `url`, naming the server and its variable.

    `flag`: the command-line option that gave the dsl-store's URL (`--dsl-store-url`), if one did;
    `dsl_store_first`: the command talks to the dsl-store (so a gateway on the same address is not meant).
    """
    if flag is not None:
        return Endpoint("dsl-store", url, "DRIFT_DSL_STORE_URL", flag).unreachable(reason)
    candidates = [gateway(env), dsl_store(env)]
    for endpoint in reversed(candidates) if dsl_store_first else candidates:
        if _origin(endpoint.url) == _origin(url):
            return endpoint.unreachable(reason)
    return f"cannot reach {url} ({reason})"
