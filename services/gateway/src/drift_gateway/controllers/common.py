"""What the gateway's controllers share: reading a request (body, path id, caller) and the command routes' answers."""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.openapi import ResponseSpec
from litestar.status_codes import HTTP_200_OK, HTTP_202_ACCEPTED

from drift_gateway.errors import NotFound, from_decode_error
from drift_runtime.web import problem_responses
from drift_schema import codec
from drift_schema.api import WorkflowResponse
from drift_schema.commands import ThreadContext
from drift_schema.headers import CLIENT_ID, USER_ID
from drift_schema.ids import is_workflow_id

ACCEPTED = {
    HTTP_202_ACCEPTED: ResponseSpec(
        data_container=WorkflowResponse,
        description="Accepted: async with callbackUrl, or the sync wait ran out (the state so far)",
        generate_examples=False,
    )
}
"""The other success answer of every command route (contract 5); errors are documented by web.ProblemResponses."""
ANSWERED = {
    HTTP_200_OK: ResponseSpec(
        data_container=WorkflowResponse,
        description="The run's first stable state caused by this command (sync)",
        generate_examples=False,
    )
}
"""The 200 of every command route: the handlers return a `Response`, so the type is named here."""
COMMAND_RESPONSES = {**ANSWERED, **ACCEPTED, **problem_responses(429)}
"""Command routes also answer 429: a tenant over its starts per second, open sync calls or concurrent runs."""


def decode_body(body: bytes, into: type[Any]) -> Any:
    """A request body as `into`; 422 with a pointer per fault (and for JSON nested too deep)."""
    try:
        codec.check_depth(body)
        return codec.decode(body, into)
    except codec.DecodeError as error:
        raise from_decode_error(error) from None


def thread_context_of(request: Request[Any, Any, Any]) -> ThreadContext:
    """Who is calling, as the caller's headers say: kept in the run's `threadContext`."""
    return ThreadContext(client_id=request.headers.get(CLIENT_ID), user_id=request.headers.get(USER_ID))


def checked_id(workflow_id: str) -> str:
    """A workflow id from a path; one that could never have been created cannot exist.

    Checked exactly (`fullmatch`): an id with a trailing newline would become an invalid NATS subject.
    """
    if not is_workflow_id(workflow_id):
        raise NotFound("workflow not found: not a valid workflowId")
    return workflow_id
