"""Typed reading of the `DRIFT_*` environment: the one way every service's `config.py` reads it.

An empty variable means the same as an unset one, its default: `DRIFT_X=` left in a manifest or a
shell never crashes a service and never turns a URL into "". A malformed value raises ValueError
naming the variable, so a service refuses to start rather than run on a guess.

The local defaults every service shares (where NATS, Redis, Temporal and the APIs are when nothing
says otherwise, as `drift dev` and the tests run them) are the constants below, nowhere else.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import TypeVar

from drift_runtime.auth import ApiKeys
from drift_runtime.ssrf import parse_hosts

LOCAL_HOST = "127.0.0.1"
NATS_URL = f"nats://{LOCAL_HOST}:4222"
REDIS_URL = f"redis://{LOCAL_HOST}:6379/0"
TEMPORAL_ADDRESS = f"{LOCAL_HOST}:7233"
TEMPORAL_NAMESPACE = "default"
GATEWAY_PORT = 8000
DSL_STORE_PORT = 8100
STUDIO_PORT = 8300
DSL_STORE_URL = f"http://{LOCAL_HOST}:{DSL_STORE_PORT}"
GATEWAY_URL = f"http://{LOCAL_HOST}:{GATEWAY_PORT}"
LOG_FORMATS = ("json", "console")

T = TypeVar("T")


def _port(text: str) -> int:
    if not text.isdigit() or int(text) > 65535:
        raise ValueError(text)
    return int(text)


class Env:
    """Typed, defaulted reads of environment variables (`os.environ` unless a mapping is given).

    Every getter treats an empty value as unset and raises ValueError naming the variable when
    a value does not parse; the named getters below read the variables every service shares.
    """

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._environ = os.environ if environ is None else environ

    def optional(self, name: str) -> str | None:
        """The variable's value, or None when it is unset or empty."""
        return self._environ.get(name) or None

    def text(self, name: str, default: str) -> str:
        """The variable's value, or `default` when it is unset or empty."""
        return self._environ.get(name) or default

    def integer(self, name: str, default: int) -> int:
        """The variable as an integer, or `default` when it is unset or empty."""
        return self._parsed(name, default, int, "an integer")

    def number(self, name: str, default: float) -> float:
        """The variable as a number (`2`, `0.5`), or `default` when it is unset or empty."""
        return self._parsed(name, default, float, "a number")

    def port(self, name: str, default: int) -> int:
        """The variable as a TCP port (0 picks a free one), or `default` when it is unset or empty."""
        return self._parsed(name, default, _port, "a port number")

    def _parsed(self, name: str, default: T, parse: Callable[[str], T], expected: str) -> T:
        raw = self.optional(name)
        if raw is None:
            return default
        try:
            return parse(raw)
        except ValueError:
            raise ValueError(f"{name} must be {expected}, not {raw!r}") from None

    def hosts(self, name: str) -> tuple[str, ...]:
        """A comma-separated host list, lower-cased (host names compare without case); () when unset."""
        return tuple(host.lower() for host in parse_hosts(self.optional(name)))

    # -- the variables every service shares ---------------------------------------------------------

    def nats_url(self) -> str:
        """`DRIFT_NATS_URL`."""
        return self.text("DRIFT_NATS_URL", NATS_URL)

    def redis_url(self) -> str:
        """`DRIFT_REDIS_URL`."""
        return self.text("DRIFT_REDIS_URL", REDIS_URL)

    def temporal_address(self) -> str:
        """`DRIFT_TEMPORAL_ADDRESS`."""
        return self.text("DRIFT_TEMPORAL_ADDRESS", TEMPORAL_ADDRESS)

    def temporal_namespace(self) -> str:
        """`DRIFT_TEMPORAL_NAMESPACE`."""
        return self.text("DRIFT_TEMPORAL_NAMESPACE", TEMPORAL_NAMESPACE)

    def dsl_store_url(self) -> str:
        """`DRIFT_DSL_STORE_URL`, else the local dsl-store on `DRIFT_DSL_STORE_PORT`; no trailing slash."""
        port = self.port("DRIFT_DSL_STORE_PORT", DSL_STORE_PORT)
        return self.text("DRIFT_DSL_STORE_URL", f"http://{LOCAL_HOST}:{port}").rstrip("/")

    def gateway_url(self) -> str:
        """`DRIFT_GATEWAY_URL`, else the local gateway on `DRIFT_GATEWAY_PORT`; no trailing slash."""
        port = self.port("DRIFT_GATEWAY_PORT", GATEWAY_PORT)
        return self.text("DRIFT_GATEWAY_URL", f"http://{LOCAL_HOST}:{port}").rstrip("/")

    def bind_host(self) -> str:
        """`DRIFT_BIND_HOST`: the address servers listen on (0.0.0.0 in a pod)."""
        return self.text("DRIFT_BIND_HOST", LOCAL_HOST)

    def service_token(self) -> str:
        """`DRIFT_SERVICE_TOKEN`: the token services present to each other; "" when none."""
        return self.text("DRIFT_SERVICE_TOKEN", "")

    def api_keys(self) -> ApiKeys:
        """`DRIFT_API_KEYS`: the tenants' bearer keys (a JSON object of key to tenant)."""
        return ApiKeys.from_json(self.optional("DRIFT_API_KEYS"))

    def stream_replicas(self) -> int:
        """`DRIFT_STREAM_REPLICAS`: replicas of the JetStream streams a service creates."""
        return self.integer("DRIFT_STREAM_REPLICAS", 1)

    def log_format(self) -> str:
        """`DRIFT_LOG_FORMAT`: `json` (the default) or `console`."""
        log_format = self.text("DRIFT_LOG_FORMAT", "json")
        if log_format not in LOG_FORMATS:
            raise ValueError(f"DRIFT_LOG_FORMAT must be json or console, not {log_format!r}")
        return log_format

    def log_level(self) -> str:
        """`DRIFT_LOG_LEVEL`, upper-cased (`INFO` by default)."""
        return self.text("DRIFT_LOG_LEVEL", "INFO").upper()
