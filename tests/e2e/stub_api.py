"""A JSON API stub on 127.0.0.1: routes (method, path) to scripted answers and records the calls."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from support.loopback import HttpAnswer, HttpRequest, LoopbackServer

Route = Callable[[Any], tuple[int, Any]]


@dataclass
class StubApi(LoopbackServer):
    """Answers each call from `routes` (404 for any other) and records it in `calls`."""

    routes: dict[tuple[str, str], Route] = field(default_factory=dict)
    calls: list[HttpRequest] = field(default_factory=list)

    async def respond(self, request: HttpRequest) -> HttpAnswer:
        body = request.json()
        self.calls.append(request)
        route = self.routes.get((request.method, request.path))
        status, answer = route(body) if route else (404, {"error": "no route"})
        return HttpAnswer(status, json.dumps(answer).encode())
