"""A webhook receiver on 127.0.0.1 for tests: records every request and answers from a script."""

from __future__ import annotations

from dataclasses import dataclass, field

from support.loopback import HttpAnswer, HttpRequest, LoopbackServer


@dataclass
class Receiver(LoopbackServer):
    """Answers each request with the next scripted status (then 200), and lets tests await deliveries."""

    statuses: list[int] = field(default_factory=list)
    requests: list[HttpRequest] = field(default_factory=list)

    @property
    def hook_url(self) -> str:
        return f"{self.url}/hooks"

    async def respond(self, request: HttpRequest) -> HttpAnswer:
        self.requests.append(request)
        return HttpAnswer(self.statuses.pop(0) if self.statuses else 200)

    async def wait_for(self, count: int, timeout: float = 30.0) -> list[HttpRequest]:
        """Wait until `count` requests have arrived (or fail at the timeout)."""
        await self.wait_until(lambda: len(self.requests) >= count, timeout)
        return self.requests[:count]
