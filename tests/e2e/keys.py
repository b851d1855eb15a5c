"""The secrets the end-to-end platform runs with: the tenants' API keys and the webhook signing secret."""

from __future__ import annotations

from drift_cli.config import generate_webhook_secret

KEYS = {"key-acme": "acme", "key-globex": "globex"}
WEBHOOK_SECRET = generate_webhook_secret()
