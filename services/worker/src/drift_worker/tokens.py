"""Credentials for HTTP nodes come from token providers, never from definitions.

A plugin is any installed distribution that registers an entry point in the
`drift.token_providers` group, e.g. in its pyproject:

    [project.entry-points."drift.token_providers"]
    vault = "acme_drift_tokens:VaultTokens"

The entry point names a `TokenProvider` instance, or a class or factory that
takes no arguments and returns one. For every HTTP call the worker asks each
provider, in entry-point name order, for headers; a provider answers `{}` for
calls it does not serve. Later providers win on a header both set, and provider
headers win over the definition's own.

A provider may also be a `SecretSource`: it then resolves the secret references
a definition's headers hold (`{"secret": "name"}`), for the calling tenant only.
The worker always has one, `TenantSecrets` (files under `DRIFT_SECRETS_DIR` and
`DRIFT_SECRET_<tenant>_<name>` variables), ahead of the plugins, so a plugin
(Vault, a cloud secret manager) may answer the same names and win.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Mapping, Sequence
from importlib.metadata import entry_points
from pathlib import Path
from typing import Protocol, runtime_checkable

import structlog

from drift_schema.base import Shape
from drift_schema.ids import is_tenant

log = structlog.get_logger("drift.worker.tokens")

ENTRY_POINT_GROUP = "drift.token_providers"
SECRET_ENV_PREFIX = "DRIFT_SECRET_"  # noqa: S105 - the prefix of variable names, not a secret
# No `_` (it separates tenant from name in a variable's name, and tenants may hold one), no `/`, no leading
# dot: a name is one file in the tenant's folder and one variable, and no two tenants' names ever meet.
SECRET_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9.-]{0,127}")
# What a header value may hold (visible ASCII, space, tab): a secret with a line break would be refused by
# the HTTP library with its value in the message.
_HEADER_VALUE = re.compile(r"[\x20-\x7e\t]*")


@runtime_checkable
class TokenProvider(Protocol):
    """Supplies credential headers for outgoing calls of one tenant's HTTP nodes."""

    async def headers(self, tenant: str, node_id: str) -> dict[str, str]:
        """Headers to add to a call made by node `node_id` for `tenant`; `{}` when none apply."""
        ...


@runtime_checkable
class SecretSource(Protocol):
    """Resolves the secrets a tenant's definitions name; a token provider may also be one."""

    async def secret(self, tenant: str, name: str) -> str | None:
        """The value of `tenant`'s secret `name`, or None when this source does not hold it."""
        ...


class SecretError(Exception):
    """A secret reference that cannot be served: a bad name, a missing secret or an unusable value.

    Its message names the secret, never a value: it becomes the node's failure, seen by the tenant.
    """


class SecretRef(Shape, frozen=True):
    """A header value in a definition that names a secret instead of holding it: `{"secret": "name"}`.

    The header's value is `prefix` followed by the secret (`{"secret": "gh", "prefix": "Bearer "}`).
    """

    secret: str
    prefix: str = ""


def check_secret_name(name: str) -> None:
    """Refuse a name that is not one plain file name and one variable-name suffix."""
    if not SECRET_NAME.fullmatch(name):
        raise SecretError(
            f"secret name {name!r} is not valid: letters, digits, '.' and '-' only, up to 128,"
            " starting with a letter or digit"
        )


class TenantSecrets:
    """The worker's own secret source: per-tenant files, then per-tenant environment variables.

    `directory/<tenant>/<name>` (one trailing line break ignored), else the variable
    `DRIFT_SECRET_<tenant>_<name>`, both spelled exactly (case kept). Tenant and name
    are checked before any lookup, so neither can climb out of the tenant's folder or
    spell another tenant's variable. Read on every call: a rotated secret applies at once.
    """

    def __init__(self, directory: Path | None, environ: Mapping[str, str]) -> None:
        self.directory = directory
        self.environ = environ

    @staticmethod
    def variable(tenant: str, name: str) -> str:
        """The environment variable holding `tenant`'s secret `name`."""
        return f"{SECRET_ENV_PREFIX}{tenant}_{name}"

    async def headers(self, tenant: str, node_id: str) -> dict[str, str]:
        """None: this provider adds only the headers a definition asks for by reference."""
        return {}

    async def secret(self, tenant: str, name: str) -> str | None:
        """`tenant`'s secret `name` from its file, else its variable; None when neither exists."""
        if not is_tenant(tenant):
            raise SecretError(f"tenant {tenant!r} cannot hold secrets")
        check_secret_name(name)
        if self.directory is not None:
            try:
                raw = await asyncio.to_thread((self.directory / tenant / name).read_bytes)
            except (FileNotFoundError, NotADirectoryError):
                raw = None
            except OSError as error:
                raise SecretError(f"secret {name!r} cannot be read: {error.strerror}") from None
            if raw is not None:
                try:
                    return raw.decode().removesuffix("\n").removesuffix("\r")
                except UnicodeDecodeError:
                    raise SecretError(f"secret {name!r} is not UTF-8 text") from None
        return self.environ.get(self.variable(tenant, name))


async def resolve_secret(sources: Sequence[object], tenant: str, name: str) -> str:
    """`tenant`'s secret `name` as a header value, from the last source holding it; SecretError otherwise."""
    check_secret_name(name)
    value: str | None = None
    for source in sources:
        if isinstance(source, SecretSource):
            found = await source.secret(tenant, name)
            value = found if found is not None else value
    if value is None:
        raise SecretError(
            f"secret {name!r} is not set for tenant {tenant!r}"
            f" (a file {tenant}/{name} in the worker's secrets folder or {TenantSecrets.variable(tenant, name)})"
        )
    if not _HEADER_VALUE.fullmatch(value):
        raise SecretError(f"secret {name!r} holds a character a header value may not (a line break or control)")
    return value


class TokenProviderError(Exception):
    """A plugin that cannot be loaded: the worker refuses to start rather than call without credentials."""


def discover_token_providers(
    group: str = ENTRY_POINT_GROUP, secrets_dir: str | None = None, environ: Mapping[str, str] | None = None
) -> list[TokenProvider]:
    """`TenantSecrets`, then every provider registered under `group`, in entry-point name order.

    `secrets_dir` is the worker's `secrets_dir` setting (no secret files when not given);
    `environ` (the process environment by default) holds the `DRIFT_SECRET_*` variables.
    """
    folder = Path(secrets_dir) if secrets_dir else None
    providers: list[TokenProvider] = [TenantSecrets(folder, os.environ if environ is None else environ)]
    for entry in sorted(entry_points(group=group), key=lambda point: point.name):
        try:
            loaded = entry.load()
            # A class or a factory is called; an object that already has headers() is the provider.
            is_factory = isinstance(loaded, type) or (callable(loaded) and not hasattr(loaded, "headers"))
            provider = loaded() if is_factory else loaded
        except Exception as error:
            raise TokenProviderError(
                f"token provider '{entry.name}' ({entry.value}) failed to load: {error}"
            ) from error
        if not isinstance(provider, TokenProvider):
            raise TokenProviderError(f"token provider '{entry.name}' ({entry.value}) has no async headers()")
        log.info("worker.token_provider_loaded", name=entry.name, target=entry.value)
        providers.append(provider)
    return providers
