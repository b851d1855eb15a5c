"""Header names that two Drift processes (or Drift and its callers) must spell the same.

An HTTP header is matched without regard to case, a NATS header is not: each name is written
here once, in the case every sender uses, and every sender and reader imports it from here.
"""

from __future__ import annotations

TENANT = "X-Drift-Tenant"
"""HTTP: the tenant a service-token call to the dsl-store acts for (gateway, dispatcher, notifier → dsl-store)."""
WORKFLOW_ID = "Drift-Workflow-Id"
"""NATS: a run command's workflowId, so the dispatcher can reject an unreadable command to the right run."""
CLIENT_ID = "X-Client-Id"
"""HTTP: the caller's client id, kept in the run's `threadContext` (caller → gateway)."""
USER_ID = "X-User-Id"
"""HTTP: the caller's user id, kept in the run's `threadContext` (caller → gateway)."""
AUTHORIZATION = "Authorization"
"""HTTP: `Bearer <API key or service token>` on every call to the gateway and the dsl-store."""
MSG_ID = "Nats-Msg-Id"
"""NATS: JetStream's dedup id; Drift's publishers set it and the dispatcher dedups commands by it per tenant."""
TRACEPARENT = "traceparent"
"""HTTP and NATS: W3C trace context, so one trace spans every hop of a run's command."""
IDEMPOTENCY_KEY = "Idempotency-Key"
"""HTTP: sent by an HTTP node, the same on every retry of one visit (worker → the called service)."""
WEBHOOK_ID = "webhook-id"
"""HTTP: a webhook's id, its event's id (notifier → callbackUrl; Standard Webhooks)."""
WEBHOOK_TIMESTAMP = "webhook-timestamp"
"""HTTP: when the webhook was signed, in seconds (notifier → callbackUrl; Standard Webhooks)."""
WEBHOOK_SIGNATURE = "webhook-signature"
"""HTTP: `v1,<base64 HMAC>` over id, timestamp and body (notifier → callbackUrl; Standard Webhooks)."""
WEBHOOK_SEQ = "webhook-seq"
"""HTTP: the run's status seq, so a receiver can order webhooks that arrive out of order (notifier → callbackUrl)."""

PROBLEM_JSON = "application/problem+json"
"""The media type of every error answer (RFC 9457): the services write it, the clients read it."""
