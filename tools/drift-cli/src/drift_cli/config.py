"""Every environment variable the Drift CLI reads, and the dev secrets it keeps in DRIFT_HOME."""

from __future__ import annotations

import base64
import binascii
import json
import os
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "ConfigError",
    "DevConfig",
    "DevSecrets",
    "dev_allow_hosts",
    "ensure_dev_secrets",
    "find_examples_dir",
    "generate_webhook_secret",
]

DEV_TENANT = "default"
DEV_HTTP_ALLOW_HOSTS = "localhost,127.0.0.1,::1"


def dev_allow_hosts(allow_hosts: str, own_ports: Iterable[int]) -> str:
    """The `DRIFT_HTTP_ALLOW_HOSTS` that `drift dev` hands its services: the hosts, minus Drift's own ports.

    The dev default allows loopback so that HTTP nodes can call local stubs; on loopback also
    listen Temporal (frontend, UI, HTTP API, metrics), NATS, Redis and every Drift service. Each
    of those ports is listed as `!<port>`, which the SSRF guard refuses on any host the list
    allows, so a tenant's HTTP node can never read the Temporal UI's API (every tenant's runs)
    or talk to Drift's servers. This holds for a DRIFT_HTTP_ALLOW_HOSTS the user set, too.
    """
    hosts = [host.strip() for host in allow_hosts.split(",") if host.strip() and not host.strip().startswith("!")]
    denied = [f"!{port}" for port in sorted({port for port in own_ports if 0 < port < 65536})]
    return ",".join([*hosts, *denied])


class ConfigError(ValueError):
    """An environment variable has a value the CLI cannot use."""


def _port(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        port = int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a port number") from None
    if not 0 < port < 65536:
        raise ConfigError(f"{name}={port} is not a port number")
    return port


def _optional(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name, "").strip()
    return value or None


def _api_keys(env: Mapping[str, str]) -> dict[str, str] | None:
    raw = _optional(env, "DRIFT_API_KEYS")
    if raw is None:
        return None
    try:
        keys = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"DRIFT_API_KEYS is not valid JSON: {exc}") from None
    if (
        not isinstance(keys, dict)
        or not keys
        or not all(isinstance(k, str) and k and isinstance(v, str) and v for k, v in keys.items())
    ):
        raise ConfigError('DRIFT_API_KEYS must be a non-empty JSON object {"token": "tenant", ...}')
    return keys


def _check_webhook_secret(value: str, origin: str) -> str:
    if not value.startswith("whsec_"):
        raise ConfigError(f"{origin} must look like whsec_<base64>")
    try:
        base64.b64decode(value.removeprefix("whsec_"), validate=True)
    except binascii.Error:
        raise ConfigError(f"{origin} must look like whsec_<base64>") from None
    return value


@dataclass(frozen=True)
class DevConfig:
    """Configuration of `drift dev`, from the environment (see CONTRACT.md section 1).

    Ports are the preferred ones; a taken port is replaced by a free one at start.
    """

    home: Path
    gateway_port: int = 8000
    dsl_store_port: int = 8100
    studio_port: int = 8300
    nats_url: str | None = None
    temporal_address: str | None = None
    redis_url: str | None = None
    nats_port: int = 4222
    temporal_port: int = 7233
    temporal_ui_port: int = 8233
    redis_port: int = 6379
    store_url: str | None = None
    api_keys: dict[str, str] | None = None
    webhook_secret: str | None = None
    service_token: str | None = None
    http_allow_hosts: str = DEV_HTTP_ALLOW_HOSTS
    log_format: str = "console"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> DevConfig:
        """Read the configuration from `env` (default: os.environ); raises ConfigError."""
        env = os.environ if env is None else env
        webhook_secret = _optional(env, "DRIFT_WEBHOOK_SECRET")
        if webhook_secret is not None:
            _check_webhook_secret(webhook_secret, "DRIFT_WEBHOOK_SECRET")
        allow_hosts = env.get("DRIFT_HTTP_ALLOW_HOSTS")
        return cls(
            # Absolute, because children get it and may run elsewhere; sqlite URLs need it too.
            home=Path(_optional(env, "DRIFT_HOME") or ".drift").expanduser().resolve(),
            gateway_port=_port(env, "DRIFT_GATEWAY_PORT", 8000),
            dsl_store_port=_port(env, "DRIFT_DSL_STORE_PORT", 8100),
            studio_port=_port(env, "DRIFT_STUDIO_PORT", 8300),
            nats_url=_optional(env, "DRIFT_NATS_URL"),
            temporal_address=_optional(env, "DRIFT_TEMPORAL_ADDRESS"),
            redis_url=_optional(env, "DRIFT_REDIS_URL"),
            nats_port=_port(env, "DRIFT_NATS_PORT", 4222),
            temporal_port=_port(env, "DRIFT_TEMPORAL_PORT", 7233),
            temporal_ui_port=_port(env, "DRIFT_TEMPORAL_UI_PORT", 8233),
            redis_port=_port(env, "DRIFT_REDIS_PORT", 6379),
            store_url=_optional(env, "DRIFT_STORE_URL"),
            api_keys=_api_keys(env),
            webhook_secret=webhook_secret,
            service_token=_optional(env, "DRIFT_SERVICE_TOKEN"),
            # Set-but-empty is a deliberate "allow nothing", so only unset takes the dev default.
            http_allow_hosts=DEV_HTTP_ALLOW_HOSTS if allow_hosts is None else allow_hosts.strip(),
            log_format=_optional(env, "DRIFT_LOG_FORMAT") or "console",
        )

    @property
    def effective_store_url(self) -> str:
        """DRIFT_STORE_URL, or the embedded SQLite file in DRIFT_HOME."""
        return self.store_url or f"sqlite+aiosqlite:///{self.home}/drift.db"


@dataclass(frozen=True)
class DevSecrets:
    """The credentials `drift dev` hands to the services."""

    api_keys: dict[str, str]
    """bearer token -> tenant (what DRIFT_API_KEYS carries)."""
    dev_api_key: str
    """The token the CLI itself uses (tenant `default` when there is one)."""
    service_token: str
    webhook_secret: str


def generate_webhook_secret() -> str:
    """A new Standard Webhooks signing key: `whsec_` + base64 of 32 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def _write_secret(path: Path, value: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(value + "\n")
    # Atomic, so a concurrent reader never sees a half-written key.
    os.replace(tmp, path)


def _stored_secret(path: Path) -> str | None:
    try:
        value = path.read_text().strip()
    except FileNotFoundError:
        return None
    return value or None


def _kept(path: Path, make: str) -> str:
    value = _stored_secret(path)
    if value is None:
        value = make
        _write_secret(path, value)
    return value


def ensure_dev_secrets(config: DevConfig) -> DevSecrets:
    """Secrets for `drift dev`: from the environment, else from DRIFT_HOME, else generated once.

    Files written: `dev-api-key` (unless DRIFT_API_KEYS is set), `webhook-secret` (unless
    DRIFT_WEBHOOK_SECRET is set) and `service-token` (unless DRIFT_SERVICE_TOKEN is set).
    """
    config.home.mkdir(parents=True, exist_ok=True)
    if config.api_keys:
        api_keys = dict(config.api_keys)
        dev_key = next((k for k, t in api_keys.items() if t == DEV_TENANT), next(iter(api_keys)))
    else:
        dev_key = _kept(config.home / "dev-api-key", "drift_dev_" + secrets.token_urlsafe(32))
        api_keys = {dev_key: DEV_TENANT}
    if config.webhook_secret:
        webhook_secret = config.webhook_secret
    else:
        path = config.home / "webhook-secret"
        webhook_secret = _check_webhook_secret(_kept(path, generate_webhook_secret()), str(path))
    service_token = config.service_token or _kept(config.home / "service-token", secrets.token_urlsafe(32))
    return DevSecrets(
        api_keys=api_keys, dev_api_key=dev_key, service_token=service_token, webhook_secret=webhook_secret
    )


def find_examples_dir(start: Path | None = None) -> Path | None:
    """The repository's `examples/` folder: searched upward from `start` (default: cwd),
    then next to this package's source checkout; None if there is none."""
    here = (start or Path.cwd()).resolve()
    for directory in (here, *here.parents):
        if (directory / "examples").is_dir() and (directory / "pyproject.toml").is_file():
            return directory / "examples"
    # tools/drift-cli/src/drift_cli/config.py -> repository root is four levels up.
    parents = Path(__file__).resolve().parents
    if len(parents) > 4 and (parents[4] / "examples").is_dir():
        return parents[4] / "examples"
    return None
