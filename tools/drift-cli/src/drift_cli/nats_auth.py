"""NATS authorization generated from the tenants' API keys (contract 14), for `drift dev` and production.

Each tenant of `DRIFT_API_KEYS` becomes NATS user `<tenant>`, its API key the password, allowed to
publish its commands (`drift.<tenant>.cmd.*`) and to subscribe to its events (`drift.<tenant>.evt.>`)
and its own inboxes (`_INBOX_<tenant>.>`), nothing else. Drift's services share user `drift` with
full rights and the inbox prefix `_INBOX_drift`. A connection without credentials is refused, since
nats-server admits only the listed users once any is listed.

Run as a module, it prints the block for a production server (see docs/security.md):

    DRIFT_API_KEYS='{"<key>": "acme"}' DRIFT_NATS_PASSWORD=... python -m drift_cli.nats_auth > authorization.conf
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping

from drift_runtime.messaging import SERVICE_USER, tenant_inbox_prefix
from drift_schema import subjects

__all__ = ["authorization_block", "main", "tenant_passwords", "tenant_permissions"]


def tenant_passwords(api_keys: Mapping[str, str]) -> dict[str, str]:
    """tenant -> its NATS password, from `api_keys` (token -> tenant, as DRIFT_API_KEYS has it).

    NATS allows one password per user: a tenant with several keys (a rotation) connects with the
    first one `api_keys` lists for it. The tenant `drift` is refused: its user and inbox prefix
    would be those of Drift's services.
    """
    passwords: dict[str, str] = {}
    for token, tenant in api_keys.items():
        if tenant == SERVICE_USER:
            raise ValueError(f"tenant {SERVICE_USER!r} is reserved: it is the NATS user of Drift's services")
        passwords.setdefault(tenant, token)
    return passwords


def tenant_permissions(tenant: str) -> dict[str, dict[str, list[str]]]:
    """The NATS permissions of tenant `tenant`'s user: its commands out, its events and inboxes in.

    Commands are `drift.<tenant>.cmd.*`, the subjects the command stream captures: within contract
    14's `drift.<tenant>.cmd.>`, without the deeper subjects no stream keeps and no service reads.
    No `allow_responses`: it is for answering requests, which an upstream never does, and would
    let it answer the reply inbox every event of Drift's carries (a forged acknowledgement).
    """
    return {
        "publish": {"allow": [subjects.command(tenant, "*")]},
        "subscribe": {"allow": [f"drift.{tenant}.evt.>", f"{tenant_inbox_prefix(tenant)}.>"]},
    }


def _string(value: str) -> str:
    # A JSON string is a double-quoted NATS config string; quoted, `$` is not a variable reference.
    return json.dumps(value, ensure_ascii=False)


def authorization_block(service_password: str, passwords: Mapping[str, str]) -> str:
    """The `authorization { users: [...] }` block: Drift's service user, then one user per tenant.

    `passwords` maps tenant -> password (see `tenant_passwords`).
    """
    users = [f"    {{user: {_string(SERVICE_USER)}, password: {_string(service_password)}}}"]
    for tenant, password in sorted(passwords.items()):
        permissions = json.dumps(tenant_permissions(tenant))
        users.append(f"    {{user: {_string(tenant)}, password: {_string(password)}, permissions: {permissions}}}")
    return "authorization {\n  users: [\n" + "\n".join(users) + "\n  ]\n}\n"


def main(env: Mapping[str, str] | None = None) -> int:
    """Print the authorization block for DRIFT_API_KEYS and DRIFT_NATS_PASSWORD (the services' password)."""
    env = os.environ if env is None else env
    try:
        api_keys = json.loads(env["DRIFT_API_KEYS"])
        service_password = env["DRIFT_NATS_PASSWORD"]
        sys.stdout.write(authorization_block(service_password, tenant_passwords(api_keys)))
    except (KeyError, ValueError, AttributeError) as error:
        sys.stderr.write(f"drift_cli.nats_auth: set DRIFT_API_KEYS (JSON) and DRIFT_NATS_PASSWORD ({error})\n")
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
