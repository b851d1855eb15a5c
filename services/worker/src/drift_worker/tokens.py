"""Credentials for HTTP nodes come from token-provider plugins, never from definitions.

A plugin is any installed distribution that registers an entry point in the
`drift.token_providers` group, e.g. in its pyproject:

    [project.entry-points."drift.token_providers"]
    vault = "acme_drift_tokens:VaultTokens"

The entry point names a `TokenProvider` instance, or a class or factory that
takes no arguments and returns one. For every HTTP call the worker asks each
provider, in entry-point name order, for headers; a provider answers `{}` for
calls it does not serve. Later providers win on a header both set, and provider
headers win over the definition's own.
"""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Protocol, runtime_checkable

import structlog

log = structlog.get_logger("drift.worker.tokens")

ENTRY_POINT_GROUP = "drift.token_providers"


@runtime_checkable
class TokenProvider(Protocol):
    """Supplies credential headers for outgoing calls of one tenant's HTTP nodes."""

    async def headers(self, tenant: str, node_id: str) -> dict[str, str]:
        """Headers to add to a call made by node `node_id` for `tenant`; `{}` when none apply."""
        ...


class TokenProviderError(Exception):
    """A plugin that cannot be loaded: the worker refuses to start rather than call without credentials."""


def discover_token_providers(group: str = ENTRY_POINT_GROUP) -> list[TokenProvider]:
    """Load every provider registered under `group`, in entry-point name order."""
    providers: list[TokenProvider] = []
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
