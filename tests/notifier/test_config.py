"""The notifier's webhook limits: documented defaults, read from DRIFT_WEBHOOK_*, unworkable values refused."""

from __future__ import annotations

import pytest

from drift_notifier.config import Settings, WebhookLimits


def test_defaults_bound_every_attempt_and_every_tenant() -> None:
    """With nothing set: 3 s connect, 10 s headers, 30 s total, 4 KiB read, 8 per tenant of 128."""
    limits = WebhookLimits.from_env({})
    assert (limits.connect_timeout_s, limits.header_timeout_s, limits.total_timeout_s) == (3.0, 10.0, 30.0)
    assert limits.max_response_bytes == 4096
    assert (limits.tenant_concurrency, limits.concurrency) == (8, 128)
    assert (limits.tenant_backlog, limits.max_held) == (256, 4096)


def test_settings_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """DRIFT_WEBHOOK_* variables reach the notifier's settings."""
    monkeypatch.setenv("DRIFT_WEBHOOK_HEADER_TIMEOUT_S", "2.5")
    monkeypatch.setenv("DRIFT_WEBHOOK_TENANT_CONCURRENCY", "3")
    monkeypatch.setenv("DRIFT_WEBHOOK_MAX_RESPONSE_BYTES", "1024")
    limits = Settings.from_env().webhooks
    assert (limits.header_timeout_s, limits.tenant_concurrency, limits.max_response_bytes) == (2.5, 3, 1024)


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"DRIFT_WEBHOOK_TENANT_CONCURRENCY": "0"}, "DRIFT_WEBHOOK_TENANT_CONCURRENCY"),
        ({"DRIFT_WEBHOOK_HEADER_TIMEOUT_S": "60"}, "DRIFT_WEBHOOK_HEADER_TIMEOUT_S"),
        ({"DRIFT_WEBHOOK_TENANT_BACKLOG": "8192"}, "DRIFT_WEBHOOK_TENANT_BACKLOG"),
        ({"DRIFT_WEBHOOK_MAX_RESPONSE_BYTES": "-1"}, "DRIFT_WEBHOOK_MAX_RESPONSE_BYTES"),
    ],
)
def test_unworkable_settings_are_refused_by_name(env: dict[str, str], named: str) -> None:
    """A limit that could not work stops the notifier at start, naming the variable."""
    with pytest.raises(ValueError, match=named):
        WebhookLimits.from_env(env)
