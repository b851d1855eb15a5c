"""HTTP node: an outgoing call built from expressions."""

from __future__ import annotations

from typing import Any

from drift_schema.base import Shape
from drift_schema.nodes.common import NodeBase

DEFAULT_HTTP_OUTPUT = "{% $response.body %}"


class HttpRequest(Shape, frozen=True):
    method: str = "GET"
    url: str = ""
    headers: Any = None
    query: Any = None
    body: Any = None
    content_type: str | None = None


class HttpNode(NodeBase, tag="HTTP", frozen=True):
    request: HttpRequest = HttpRequest()
    output: Any = DEFAULT_HTTP_OUTPUT
