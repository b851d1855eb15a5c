"""Names the fuzzers share: the API keys of the fuzz platform and the service token."""

from __future__ import annotations

SERVICE_TOKEN = "service-token-for-fuzzing"
KEYS = {
    "key-acme": "acme",
    "key-globex": "globex",
    "key-fuzz-gateway": "fuzzgw",
    "key-fuzz-dsl": "fuzzdsl",
}


def bearer(key: str) -> dict[str, str]:
    """The Authorization header of an API key."""
    return {"Authorization": f"Bearer {key}"}
