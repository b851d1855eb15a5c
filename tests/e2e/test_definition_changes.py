"""A change of a definition or an enum reaches the next start at once, though the dispatcher caches both."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from drift_cli.bundles import Bundle, dsl_store_client, load_bundles
from drift_cli.platform import Platform

pytestmark = pytest.mark.asyncio(loop_scope="session")

WORKFLOW = "cache_probe"


def _bundle(label: str) -> Bundle:
    node = {
        "id": "cache_probe_done",
        "name": "Finish with the label and the flavour",
        "type": "SUCCESS",
        "disposition": f"{{% '{label} ' & $enums.flavour %}}",
    }
    workflow: dict[str, Any] = {
        "id": WORKFLOW,
        "startNode": "done",
        "states": {"done": {"resourceId": "cache_probe_done", "end": True}},
    }
    return Bundle([node], [workflow])


async def _disposition(gateway: httpx.AsyncClient) -> str:
    answer = await gateway.post(
        "/v3/workflow/start", json={"workflow": {"id": WORKFLOW}, "workflowId": f"cache-{uuid.uuid4().hex[:10]}"}
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["workflowStatus"] == "COMPLETED", body
    disposition: str = body["disposition"]
    return disposition


async def test_activation_and_enum_change_reach_the_next_start(platform: Platform, gateway: httpx.AsyncClient) -> None:
    """Starts repeat a cached definition; a new activated version, then a new enum value, show in the next start."""
    async with dsl_store_client(platform.dsl_store_url, "key-acme") as dsl:
        assert (await dsl.put("/enums/flavour", json="mint")).status_code in (200, 201)
        (await load_bundles(dsl, [_bundle("V1")])).raise_for_errors()
        assert await _disposition(gateway) == "V1 mint"
        assert await _disposition(gateway) == "V1 mint"  # now served from the dispatcher's cache

        (await load_bundles(dsl, [_bundle("V2")])).raise_for_errors()
        assert await _disposition(gateway) == "V2 mint"

        assert (await dsl.put("/enums/flavour", json="lime")).status_code in (200, 201)
        assert await _disposition(gateway) == "V2 lime"
