"""`drift dev` as a process: start-up, the ready line, signals, crashes, and nothing left behind.

Most tests run the real CLI with stand-in services (tests/support/fake_service.py) so that the
CLI is tested on its own; test_real_drift_dev_runs_the_readme_flow_and_ctrl_c_leaves_nothing
runs the real ones, as the README's quick start does.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import signal
import sys
import sysconfig
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from support.fakes import make_fake_service_bin
from support.procs import alive, descendants, kill_leftovers

from drift_cli.main import READY_LINE
from drift_cli.servers import free_port
from drift_runtime import messaging

REPO = Path(__file__).resolve().parents[2]

# Runs the real `drift` entry point with find_executable pointed at the stand-in services.
WITH_FAKES = """
import sys
from pathlib import Path
import drift_cli.platform
bin_dir = Path(sys.argv[1])
drift_cli.platform.find_executable = lambda name: bin_dir / name
from drift_cli.main import main
sys.exit(main(sys.argv[2:]))
"""


def _dev_env(home: Path, **extra: str) -> dict[str, str]:
    """The environment minus any DRIFT_*/FAKE_* settings, plus a private home and free ports."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DRIFT_", "FAKE_"))}
    env["DRIFT_HOME"] = str(home)
    for name in (
        "DRIFT_GATEWAY_PORT",
        "DRIFT_DSL_STORE_PORT",
        "DRIFT_STUDIO_PORT",
        "DRIFT_NATS_PORT",
        "DRIFT_TEMPORAL_PORT",
        "DRIFT_TEMPORAL_UI_PORT",
        "DRIFT_REDIS_PORT",
    ):
        env[name] = str(free_port())
    env.update(extra)
    return env


def processes_mentioning(text: str) -> set[int]:
    """Live processes whose command line or environment contains `text` (a unique DRIFT_HOME)."""
    needle = text.encode()
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        for part in ("cmdline", "environ"):
            try:
                if needle in (entry / part).read_bytes():
                    found.add(int(entry.name))
                    break
            except OSError:
                continue
    return alive(found)


@dataclass
class Dev:
    """A running `drift dev` process."""

    process: asyncio.subprocess.Process
    home: Path
    stderr_path: Path
    stdout: list[str] = field(default_factory=list)

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")[-6000:]

    async def wait_ready(self, timeout: float = 180) -> None:
        """Read stdout until the ready line; fail with stderr if the process ends first."""
        assert self.process.stdout is not None
        async with asyncio.timeout(timeout):
            while True:
                line = await self.process.stdout.readline()
                if not line:
                    code = await self.process.wait()
                    pytest.fail(f"drift dev exited with {code} before ready:\n{self.stderr()}")
                self.stdout.append(line.decode().rstrip("\n"))
                if self.stdout[-1] == READY_LINE:
                    return

    async def wait_exit(self, timeout: float = 90) -> int:
        async with asyncio.timeout(timeout):
            return await self.process.wait()


@asynccontextmanager
async def drift_dev(
    argv: Sequence[str], home: Path, env: dict[str, str], *, own_group: bool = False
) -> AsyncIterator[Dev]:
    """Start `argv` (a drift dev command line); on the way out, kill whatever is left of it.

    own_group: run it as the leader of its own process group, as a shell runs a foreground job,
    so that the test can send Ctrl-C's SIGINT to the whole group.
    """
    home.mkdir(parents=True, exist_ok=True)
    stderr_path = home.parent / "drift-dev.stderr"
    with open(stderr_path, "wb") as stderr:
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdout=asyncio.subprocess.PIPE,
            stderr=stderr,
            env=env,
            cwd=REPO,
            process_group=0 if own_group else None,
        )
    dev = Dev(process, home, stderr_path)
    try:
        yield dev
    finally:
        leftovers = processes_mentioning(str(home)) | descendants(process.pid)
        if process.returncode is None:
            leftovers.add(process.pid)
        kill_leftovers(leftovers)
        if process.returncode is None:
            await process.wait()


def _fake_argv(tmp_path: Path) -> list[str]:
    bin_dir = make_fake_service_bin(tmp_path / "bin")
    return [sys.executable, "-c", WITH_FAKES, str(bin_dir), "dev", "--no-examples"]


def _serving_port(env: dict[str, str], key: str, what: str, log: str) -> str:
    """The port drift dev serves `what` on: the one configured, or the one it announced using instead when that was
    taken between the test picking it and drift dev binding it (any process's connection may take a free port)."""
    taken = re.search(rf"port {env[key]} for {re.escape(what)} is taken; using (\d+)", log)
    return taken.group(1) if taken else env[key]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_drift_dev_stops_everything_on_a_signal(tmp_path: Path, sig: signal.Signals) -> None:
    """With stand-in services, drift dev reports each server and service starting and ready, prints its
    summary and ready line, writes where its servers listen to DRIFT_HOME/endpoints.json, and on
    SIGTERM/SIGINT exits 0 leaving none of the servers and services it started (and no endpoints file)."""
    home = tmp_path / "home"
    env = _dev_env(home)
    async with drift_dev(_fake_argv(tmp_path), home, env) as dev:
        await dev.wait_ready()
        key = (home / "dev-api-key").read_text().strip()
        summary = "\n".join(dev.stdout)
        log = dev.stderr_path.read_text(errors="replace")
        gateway, dsl_store, studio = (
            _serving_port(env, key, what, log)
            for key, what in (
                ("DRIFT_GATEWAY_PORT", "gateway"),
                ("DRIFT_DSL_STORE_PORT", "dsl-store"),
                ("DRIFT_STUDIO_PORT", "studio"),
            )
        )
        assert f"http://127.0.0.1:{gateway}/schema/swagger" in summary
        assert f"http://127.0.0.1:{dsl_store}/schema/swagger" in summary
        assert f"http://127.0.0.1:{env['DRIFT_TEMPORAL_UI_PORT']}" in summary
        assert f"Studio      http://127.0.0.1:{studio}" in summary  # contract 13
        assert key in summary
        assert str(home) in summary
        assert "curl" in summary
        progress = dev.stderr()
        for name in ("nats", "temporal", "redis"):
            assert f"drift: starting {name} at " in progress and f"drift: {name} ready at " in progress
        for name in ("dsl-store", "gateway", "dispatcher", "worker-1", "notifier", "studio"):
            assert f"drift: starting {name} (" in progress and f"drift: {name} ready\n" in progress
        written = json.loads((home / "endpoints.json").read_text())
        assert written["pid"] == dev.process.pid
        # With the services' credentials (contract 14): `drift events` replays the stream as they do.
        assert messaging.split_credentials(written["nats"]).url == f"nats://127.0.0.1:{env['DRIFT_NATS_PORT']}"
        assert written["gateway"] == f"http://127.0.0.1:{gateway}"
        assert written["dslStore"] == f"http://127.0.0.1:{dsl_store}"
        # Another shell, with no NATS variable: `drift events` asks drift dev's NATS (not 4222) and says it has none.
        shell = {k: v for k, v in env.items() if not k.startswith("DRIFT_") or k == "DRIFT_HOME"}
        events = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "drift_cli",
            "events",
            "nothing-yet",
            env=shell,
            cwd=REPO,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        _, events_err = await events.communicate()
        assert events.returncode == 5, events_err
        assert "on nats://" in events_err.decode() and f"127.0.0.1:{env['DRIFT_NATS_PORT']}" in events_err.decode()

        tree = descendants(dev.process.pid)
        assert len(tree) >= 8  # temporal, nats, redis + five services
        dev.process.send_signal(sig)
        assert await dev.wait_exit() == 0
        assert not alive(tree)
        assert not processes_mentioning(str(home))
        assert not (home / "endpoints.json").exists()


async def test_drift_dev_exits_nonzero_when_a_service_dies(tmp_path: Path) -> None:
    """When a service dies while running, drift dev names it, stops the rest and exits 1."""
    home = tmp_path / "home"
    async with drift_dev(_fake_argv(tmp_path), home, _dev_env(home)) as dev:
        await dev.wait_ready()
        tree = descendants(dev.process.pid)
        (home / "crash-notifier").touch()
        assert await dev.wait_exit() == 1
        assert "notifier exited with code 4" in dev.stderr()
        assert not alive(tree)
        assert not processes_mentioning(str(home))


async def test_drift_dev_start_failure_leaves_no_process(tmp_path: Path) -> None:
    """When a service fails during start-up, drift dev shows its log, stops everything and exits 1."""
    home = tmp_path / "home"
    env = _dev_env(home, FAKE_FAIL_SERVICE="gateway")
    async with drift_dev(_fake_argv(tmp_path), home, env) as dev:
        assert await dev.wait_exit() == 1
        assert "simulated start-up failure" in dev.stderr()
        assert READY_LINE not in dev.stdout
        assert not processes_mentioning(str(home))


async def test_drift_dev_uses_external_servers_and_starts_none(tmp_path: Path) -> None:
    """With DRIFT_NATS_URL, DRIFT_TEMPORAL_ADDRESS and DRIFT_REDIS_URL set, drift dev starts no embedded
    server, hands those addresses to every service and prints them."""
    home = tmp_path / "home"
    external = {
        "DRIFT_NATS_URL": "nats://127.0.0.1:14999",
        "DRIFT_TEMPORAL_ADDRESS": "127.0.0.1:17999",
        "DRIFT_REDIS_URL": "redis://127.0.0.1:16999/3",
    }
    async with drift_dev(_fake_argv(tmp_path), home, _dev_env(home, **external)) as dev:
        await dev.wait_ready()
        tree = descendants(dev.process.pid)
        commands = {Path(Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[1].decode()).name for pid in tree}
        assert commands == {"fake_service.py"}, commands  # only the six stand-in services (Studio included)
        assert len(tree) == 6
        summary = "\n".join(dev.stdout)
        for value in external.values():
            assert value in summary
        assert "web UI" not in summary  # no embedded Temporal, so no UI to offer
        envs = [json.loads(p.read_text()) for p in home.glob("env-*.json")]
        assert len(envs) == 6
        for env in envs:
            assert {k: env[k] for k in external} == external
        dev.process.send_signal(signal.SIGTERM)
        assert await dev.wait_exit() == 0
        assert not alive(tree)


@dataclass(frozen=True)
class Curl:
    """One `curl` command line from a text, reduced to the request it makes."""

    method: str
    url: str
    headers: dict[str, str]
    body: object | None


def curl_commands(text: str, replacements: dict[str, str]) -> list[Curl]:
    """Every curl command in `text` (backslash continuations joined), after textual `replacements`."""
    for old, new in replacements.items():
        text = text.replace(old, new)
    commands = []
    for line in re.sub(r"\\\n\s*", " ", text).splitlines():
        line = line.strip()
        if not line.startswith("curl "):
            continue
        args = shlex.split(line)[1:]
        method, url, headers, body = "GET", "", {}, None
        while args:
            arg = args.pop(0)
            if arg == "-X":
                method = args.pop(0)
            elif arg == "-H":
                name, _, value = args.pop(0).partition(":")
                headers[name.strip()] = value.strip()
            elif arg == "-d":
                body = json.loads(args.pop(0))
            elif arg.startswith("-"):
                assert arg == "-s", f"unexpected curl option {arg} in {line}"
            else:
                url = arg if "://" in arg else "http://" + arg
        commands.append(Curl(method, url, headers, body))
    return commands


async def _send(client: httpx.AsyncClient, curl: Curl) -> httpx.Response:
    content = None if curl.body is None else json.dumps(curl.body).encode()
    return await client.request(curl.method, curl.url, headers=curl.headers, content=content)


def _readme_quick_start() -> str:
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return "\n".join(block for block in re.findall(r"```sh\n(.*?)```", section, re.S) if "curl" in block)


async def test_real_drift_dev_runs_the_readme_flow_and_ctrl_c_leaves_nothing(tmp_path: Path) -> None:
    """The real `drift dev` (real services, examples loaded) prints curl lines that start the greeting
    (WAITING) and approve it (COMPLETED), the README's quick start makes the same requests and its GETs
    answer, the services' log lines reach the terminal, and Ctrl-C (SIGINT to its process group)
    exits 0 leaving no process behind."""
    home = tmp_path / "home"
    drift = Path(sysconfig.get_path("scripts")) / "drift"
    env = _dev_env(home)
    async with drift_dev([str(drift), "dev"], home, env, own_group=True) as dev:
        await dev.wait_ready()
        tree = descendants(dev.process.pid)
        assert len(tree) >= 8
        key = (home / "dev-api-key").read_text().strip()
        gateway = f"127.0.0.1:{env['DRIFT_GATEWAY_PORT']}"
        dsl_store = f"127.0.0.1:{env['DRIFT_DSL_STORE_PORT']}"
        summary = "\n".join(dev.stdout)
        printed = curl_commands(summary.split("Try:", 1)[1], {})
        assert [c.method for c in printed] == ["POST", "PUT", "GET"], printed
        async with httpx.AsyncClient(trust_env=False, timeout=60) as client:
            started, resumed, fetched = [await _send(client, c) for c in printed]
            assert started.status_code == 200, started.text
            assert started.json()["workflowStatus"] == "WAITING"
            assert started.json()["view"]["layoutId"] == "approval_screen"
            assert resumed.status_code == 200, resumed.text
            assert resumed.json()["workflowStatus"] == "COMPLETED"
            assert resumed.json()["disposition"] == "APPROVED: Hello, Ada!"
            assert fetched.json()["context"]["params"] == {"name": "Ada"}

            # The README's lines against the same platform (its ports and key substituted).
            readme = curl_commands(
                _readme_quick_start(),
                {"$KEY": key, "localhost:8000": gateway, "localhost:8100": dsl_store},
            )
            assert [(c.method, c.url, c.body) for c in readme[:3]] == [(c.method, c.url, c.body) for c in printed]
            for curl in readme[2:]:  # the GETs; the start and resume were just made
                answer = await _send(client, curl)
                assert answer.status_code == 200, (curl, answer.text)
            assert (await _send(client, readme[3])).json()["id"] == "hello_approval"

        os.killpg(dev.process.pid, signal.SIGINT)
        assert await dev.wait_exit() == 0
        assert not alive(tree)
        assert not processes_mentioning(str(home))
        # The README: "each service's log lines in the `drift dev` terminal".
        terminal = dev.stderr_path.read_text(errors="replace")
        assert re.search(r"^worker-1 +\| .*worker\.status_published", terminal, re.M), terminal[-3000:]
