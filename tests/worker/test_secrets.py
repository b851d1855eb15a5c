"""The shipped secret provider: per-tenant files and variables, names that cannot reach another tenant's."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from drift_worker.http_activity import ALWAYS_SECRET, REDACTED, _carry_headers, redact
from drift_worker.tokens import SecretError, TenantSecrets, resolve_secret


@pytest.fixture
def secrets_dir(tmp_path: Path) -> Path:
    (tmp_path / "acme").mkdir()
    (tmp_path / "acme" / "api-token").write_text("acme-file\n")
    (tmp_path / "acme" / "multi").write_text("one\ntwo")
    (tmp_path / "globex").mkdir()
    (tmp_path / "globex" / "db.password").write_text("globex-file")
    return tmp_path


async def test_a_file_wins_over_a_variable_and_loses_its_last_line_break(secrets_dir: Path) -> None:
    """`<dir>/<tenant>/<name>` is read first (one trailing newline dropped); the variable is the fallback."""
    environ = {"DRIFT_SECRET_acme_api-token": "acme-env", "DRIFT_SECRET_acme_only-env": "acme-env-only"}
    secrets = TenantSecrets(secrets_dir, environ)
    assert await secrets.secret("acme", "api-token") == "acme-file"
    assert await secrets.secret("acme", "only-env") == "acme-env-only"
    assert await secrets.secret("acme", "nowhere") is None
    assert await TenantSecrets(None, environ).secret("acme", "api-token") == "acme-env"


@pytest.mark.parametrize(
    "name",
    ["../globex/db.password", "globex/db.password", ".hidden", "..", "db_password", "", "a" * 129, "x\n"],
)
async def test_a_name_that_could_leave_the_tenants_folder_or_variables_is_refused(secrets_dir: Path, name: str) -> None:
    """Path separators, a leading dot, `_` (the variable separator), empty, too long, a newline: all refused."""
    secrets = TenantSecrets(secrets_dir, {"DRIFT_SECRET_acme_db_password": "x"})
    with pytest.raises(SecretError, match="is not valid"):
        await secrets.secret("acme", name)


async def test_one_tenant_never_reads_anothers_secret(secrets_dir: Path) -> None:
    """globex's file and variable stay globex's: acme asking for the same names gets nothing."""
    environ = {"DRIFT_SECRET_globex_api-key": "globex-env", "DRIFT_SECRET_globex_acme_api-key": "spoof"}
    secrets = TenantSecrets(secrets_dir, environ)
    assert await secrets.secret("globex", "db.password") == "globex-file"
    assert await secrets.secret("acme", "db.password") is None
    assert await secrets.secret("acme", "api-key") is None
    # `DRIFT_SECRET_globex_acme_api-key` is the tenant globex_acme's; globex cannot spell it (no `_` in names).
    assert await secrets.secret("globex_acme", "api-key") == "spoof"
    with pytest.raises(SecretError, match="is not valid"):
        await secrets.secret("globex", "acme_api-key")
    with pytest.raises(SecretError, match="not set for tenant 'acme'"):
        await resolve_secret([secrets], "acme", "db.password")


@pytest.mark.parametrize("tenant", ["..", "../acme", "acme/..", "", "acme\n"])
async def test_a_tenant_name_that_is_not_one_is_refused(secrets_dir: Path, tenant: str) -> None:
    """A tenant is checked as the platform checks it before it names a folder or a variable."""
    with pytest.raises(SecretError, match="cannot hold secrets"):
        await TenantSecrets(secrets_dir, {}).secret(tenant, "api-token")


async def test_a_secret_a_header_cannot_carry_fails_without_its_value(secrets_dir: Path) -> None:
    """A value with a line break inside is refused by name; the message never holds the value."""
    with pytest.raises(SecretError) as refused:
        await resolve_secret([TenantSecrets(secrets_dir, {})], "acme", "multi")
    assert "'multi'" in str(refused.value)
    assert "two" not in str(refused.value)


class Override:
    """A later source (a plugin) holding the same name."""

    async def secret(self, tenant: str, name: str) -> str | None:
        return f"vault-{tenant}" if name == "api-token" else None


async def test_a_later_source_wins_and_a_token_provider_without_secrets_is_skipped(secrets_dir: Path) -> None:
    """Sources are asked in order and the last holding a name wins; objects without secret() are not asked."""

    class HeadersOnly:
        async def headers(self, tenant: str, node_id: str) -> dict[str, str]:
            return {}

    sources = [TenantSecrets(secrets_dir, {}), Override(), HeadersOnly()]
    assert await resolve_secret(sources, "acme", "api-token") == "vault-acme"
    assert await resolve_secret(sources[:1], "acme", "api-token") == "acme-file"


def test_an_https_upgrade_is_another_origin() -> None:
    """http -> https on the same host and default ports drops credentials (httpx itself keeps Authorization)."""
    headers = {"Authorization": "a", "Cookie": "c=1", "Proxy-Authorization": "p", "X-Marked": "m", "X-Plain": "p"}
    previous = httpx.Request("GET", "http://api.example/start", headers=headers)
    upgrade = httpx.Request("GET", "https://api.example/start", headers=headers)
    _carry_headers(previous, upgrade, {"x-marked"})
    assert dict(upgrade.headers) == {"host": "api.example", "x-plain": "p"}
    same = httpx.Request("GET", "http://api.example:80/next", headers=headers)
    _carry_headers(previous, same, {"x-marked"})
    assert {name for name in same.headers} >= {*ALWAYS_SECRET, "x-marked", "x-plain"}


def test_redact_hides_every_secret_value_longest_first() -> None:
    """Each secret value in a message becomes the marker, a value inside another included."""
    text = "sent Bearer abc123 and abc"
    assert redact(text, {"abc", "Bearer abc123"}) == f"sent {REDACTED} and {REDACTED}"
    assert redact(text, {""}) == text
