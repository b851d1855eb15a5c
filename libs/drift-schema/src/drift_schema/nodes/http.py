"""HTTP node: an outgoing call built from expressions."""

from __future__ import annotations

from typing import Any, ClassVar

import msgspec

from drift_schema.base import Shape
from drift_schema.nodes.common import Edge, NodeBase

DEFAULT_HTTP_OUTPUT = "{% $response.body %}"


class HttpRequest(Shape, frozen=True):
    method: str = "GET"
    url: str = ""
    headers: Any = None
    query: Any = None
    body: Any = None
    content_type: str | None = None
    secret_headers: list[str] = msgspec.field(default_factory=list)
    """Headers (any case) whose values are secret: never sent on a redirect to another origin, never logged.

    `Authorization`, `Cookie`, `Proxy-Authorization`, a token provider's headers and a header whose
    value is a secret reference (`{"secret": "name", "prefix": "Bearer "}`) are secret unlisted.
    """


class HttpNode(NodeBase, tag="HTTP", frozen=True):
    request: HttpRequest = HttpRequest()
    output: Any = DEFAULT_HTTP_OUTPUT

    ends_run: ClassVar[bool] = False

    def edges(self) -> list[Edge]:
        """None of its own: the run goes on along its state's `nextNode`."""
        return []
