"""Bearer API keys mapped to tenants, compared in constant time."""

from __future__ import annotations

import hmac

import msgspec

from drift_schema.ids import is_tenant


class ApiKeys:
    """The token-to-tenant map of `DRIFT_API_KEYS`.

    Every presented token is compared with every configured one, so the time a
    lookup takes does not tell how much of a guess was right.
    """

    def __init__(self, keys: dict[str, str]) -> None:
        for tenant in keys.values():
            if not is_tenant(tenant):
                raise ValueError("DRIFT_API_KEYS names an invalid tenant")
        self._keys = [(token.encode(), tenant) for token, tenant in keys.items() if token]

    @classmethod
    def from_json(cls, text: str | None) -> ApiKeys:
        if not text:
            return cls({})
        try:
            keys = msgspec.json.decode(text, type=dict[str, str])
        except msgspec.DecodeError:
            raise ValueError("DRIFT_API_KEYS must be a JSON object of token to tenant") from None
        return cls(keys)

    def tenant_for(self, token: str) -> str | None:
        presented = token.encode()
        found: str | None = None
        for candidate, tenant in self._keys:
            if hmac.compare_digest(candidate, presented):
                found = tenant
        return found

    def __len__(self) -> int:
        return len(self._keys)

    def __repr__(self) -> str:
        # Never show the tokens themselves.
        return f"ApiKeys({len(self._keys)} keys)"


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, or None."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()
