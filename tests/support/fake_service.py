"""Stand-in for a Drift service in CLI tests (run as `python fake_service.py <name>`).

It records its environment in `$DRIFT_HOME/env-<name>-<pid>.json`, serves
`GET /health/ready` on its port (DRIFT_GATEWAY_PORT, DRIFT_DSL_STORE_PORT or
DRIFT_METRICS_PORT), and is steered by environment variables:
- FAKE_FAIL_SERVICE=<name>: exit 3 at once, printing a message;
- FAKE_SILENT_SERVICES=<name>,...: serve no HTTP at all;
- the file `$DRIFT_HOME/crash-<name>` appearing: exit 4.
"""

from __future__ import annotations

import http.server
import json
import os
import sys
import threading
import time
from pathlib import Path

PORT_VARIABLE = {"gateway": "DRIFT_GATEWAY_PORT", "dsl-store": "DRIFT_DSL_STORE_PORT", "studio": "DRIFT_STUDIO_PORT"}


class _Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        status = 200 if self.path.startswith("/health/") else 404
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


def main(name: str) -> int:
    home = Path(os.environ["DRIFT_HOME"])
    if os.environ.get("FAKE_FAIL_SERVICE") == name:
        print(f"{name}: simulated start-up failure", flush=True)
        return 3
    (home / f"env-{name}-{os.getpid()}.json").write_text(json.dumps(dict(os.environ)))
    if name not in os.environ.get("FAKE_SILENT_SERVICES", "").split(","):
        port = int(os.environ[PORT_VARIABLE.get(name, "DRIFT_METRICS_PORT")])
        server = http.server.ThreadingHTTPServer(("127.0.0.1", port), _Health)
        threading.Thread(target=server.serve_forever, daemon=True).start()
    crash = home / f"crash-{name}"
    while not crash.exists():
        time.sleep(0.05)
    return 4


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
