"""Test doubles on 127.0.0.1 for the drills: the downstream API that HTTP nodes call, and a webhook receiver.

Both are the tests' minimal HTTP/1.1 server (tests/support/loopback.py), so that the
drills depend on nothing outside the repository and can await what arrived without sleeping.
"""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from dataclasses import dataclass

from standardwebhooks import Webhook, WebhookVerificationError

from tests.support.loopback import HttpAnswer, HttpRequest, LoopbackServer


class DrillServer(LoopbackServer):
    """The tests' loopback server, closed without waiting for its clients.

    The services keep idle keep-alive connections to it while the stack is still up.
    """

    wait_for_clients = False


class Downstream(DrillServer):
    """The API HTTP nodes call: `POST /work/<workflowId>`; counts calls and Idempotency-Keys per run.

    While `hold` is set, calls are parked until `release()`: the caller is mid-request. With
    `max_hold_s` set, a call parked that long is answered anyway: a drill that holds calls while
    it gathers its runs must not outlast the HTTP node's own timeout and retries (5 attempts of 5 s),
    or a run fails for the drill's sake, not for the fault's.
    """

    def __init__(self) -> None:
        super().__init__()
        self.calls: dict[str, list[str]] = defaultdict(list)
        self.in_flight = 0
        self.max_hold_s: float | None = None
        self.released_early = 0
        """Calls answered because they were held `max_hold_s`, not because of `release()`."""
        self._open = asyncio.Event()
        self._open.set()

    def hold(self) -> None:
        self._open.clear()

    def release(self) -> None:
        self._open.set()

    def work_url(self, workflow_id: str) -> str:
        return f"{self.url}/work/{workflow_id}"

    async def respond(self, request: HttpRequest) -> HttpAnswer:
        workflow_id = request.path.rsplit("/", 1)[-1]
        self.calls[workflow_id].append(request.headers.get("idempotency-key", ""))
        self.in_flight += 1
        await self.notify()
        try:
            await asyncio.wait_for(self._open.wait(), self.max_hold_s)
        except TimeoutError:
            self.released_early += 1
        finally:
            self.in_flight -= 1
        return HttpAnswer(200, json.dumps({"done": workflow_id}).encode())


@dataclass
class Delivery:
    webhook_id: str
    body: bytes
    valid_signature: bool
    seq: str = ""
    """The `webhook-seq` header ("" when absent)."""


class WebhookReceiver(DrillServer):
    """Records every webhook with its `webhook-id`; verifies the Standard Webhooks signature."""

    def __init__(self, secret: str, delay_s: float = 0.0) -> None:
        super().__init__()
        self.deliveries: list[Delivery] = []
        self.arrived = 0
        """Requests that reached the receiver (delivered or still being answered)."""
        self.delay_s = delay_s
        self.refuse: dict[tuple[str, str], int] = {}
        """(workflowId, workflowStatus) -> how many more attempts to answer 503 (not deliveries)."""
        self.refused = 0
        self._verifier = Webhook(secret)

    @property
    def hook_url(self) -> str:
        return f"{self.url}/hooks"

    async def respond(self, request: HttpRequest) -> HttpAnswer:
        self.arrived += 1
        await self.notify()
        if self.delay_s:
            # A slow receiver keeps deliveries in flight, so a fault can hit them mid-way.
            await asyncio.sleep(self.delay_s)
        try:
            self._verifier.verify(request.body, request.headers)
            valid = True
        except WebhookVerificationError:
            valid = False
        if self.refuse:
            body = json.loads(request.body)
            state = (str(body.get("workflowId")), str(body.get("workflowStatus")))
            if self.refuse.get(state, 0) > 0:
                self.refuse[state] -= 1
                self.refused += 1
                return HttpAnswer(503, b"{}")
        self.deliveries.append(
            Delivery(request.headers.get("webhook-id", ""), request.body, valid, request.headers.get("webhook-seq", ""))
        )
        await self.notify()
        return HttpAnswer(200, b"{}")

    def statuses(self) -> dict[str, set[str]]:
        """workflowId -> the statuses delivered for it (validly signed deliveries only)."""
        found: dict[str, set[str]] = defaultdict(set)
        for delivery in self.deliveries:
            if delivery.valid_signature:
                body = json.loads(delivery.body)
                found[body["workflowId"]].add(body["workflowStatus"])
        return found

    def reused_ids(self) -> int:
        """How many webhook-ids were delivered with two different bodies (two different events)."""
        bodies: dict[str, set[bytes]] = defaultdict(set)
        for delivery in self.deliveries:
            bodies[delivery.webhook_id].add(delivery.body)
        return sum(1 for seen in bodies.values() if len(seen) > 1)
