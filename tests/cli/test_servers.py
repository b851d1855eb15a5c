"""Embedded servers, ports and process management (drift_cli.servers)."""

from __future__ import annotations

import signal
import socket
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import nats
import pytest
import redis.asyncio as aioredis
from support.procs import alive, descendants, kill_leftovers
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest, ListNamespacesRequest
from temporalio.client import Client

from drift_cli.servers import (
    EmbeddedRedis,
    InfraStack,
    ManagedProcess,
    ServerStartError,
    free_port,
)

WELL_KNOWN_PORTS = {4222, 6379, 7233, 8233}

# A parent that ignores SIGTERM and has a child that ignores it too, printing the child's pid.
STUBBORN = """
import signal, subprocess, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
child = subprocess.Popen([sys.executable, "-c", "import time\\nwhile True: time.sleep(1)"])
print("CHILD-PID", child.pid, flush=True)
while True:
    time.sleep(1)
"""

# The same family, but both die on SIGTERM as processes normally do.
POLITE = STUBBORN.replace("signal.signal(signal.SIGTERM, signal.SIG_IGN)\n", "")


def _child_pid_probe(process: ManagedProcess, found: list[int]):  # type: ignore[no-untyped-def]
    async def probe() -> bool:
        for line in process.log_path.read_text().splitlines():
            if line.startswith("CHILD-PID "):
                found.append(int(line.split()[1]))
                return True
        return False

    return probe


async def _start_family(tmp_path: Path, script: str) -> tuple[ManagedProcess, int]:
    process = ManagedProcess("family", [sys.executable, "-c", script], log_path=tmp_path / "family.log")
    process.start()
    found: list[int] = []
    try:
        await process.wait_ready(_child_pid_probe(process, found), timeout=30)
    except BaseException:
        process.stop(timeout=0.5)
        raise
    return process, found[0]


def test_free_port_answers_the_preferred_port_when_it_is_free() -> None:
    """free_port(p) answers p itself when p can be bound on 127.0.0.1."""
    port = free_port()
    assert free_port(port) == port


def test_free_port_picks_another_port_when_the_preferred_one_is_taken() -> None:
    """free_port(p) answers a different, bindable port when p is already listening."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        taken = listener.getsockname()[1]
        port = free_port(taken)
        assert port != taken
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", port))


def test_infra_uses_loopback_and_never_the_well_known_ports(infra: InfraStack) -> None:
    """The test infra binds 127.0.0.1 on free ports, never the system services' default ports."""
    urls = [infra.nats_url, f"tcp://{infra.temporal_address}", infra.temporal_ui_url or "", infra.redis_url]
    for url in urls:
        parts = urlsplit(url)
        assert parts.hostname == "127.0.0.1", url
        assert parts.port not in WELL_KNOWN_PORTS, url


async def test_nats_has_jetstream(infra: InfraStack) -> None:
    """The embedded NATS accepts a JetStream stream, stores a message and hands it back."""
    nc = await nats.connect(infra.nats_url)
    try:
        js = nc.jetstream()
        await js.add_stream(name="CLI_TEST", subjects=["cli-test.>"])
        ack = await js.publish("cli-test.hello", b"hi")
        stored = await js.get_msg("CLI_TEST", ack.seq)
        assert stored.data == b"hi"
        await js.delete_stream("CLI_TEST")
    finally:
        await nc.close()


async def test_redis_answers_ping(infra: InfraStack) -> None:
    """The embedded Redis (valkey) answers PING and keeps a value."""
    client = aioredis.from_url(infra.redis_url)
    try:
        assert await client.ping()
        await client.set("cli-test", "1")
        assert await client.get("cli-test") == b"1"
    finally:
        await client.aclose()


async def test_temporal_serves_the_default_namespace(infra: InfraStack) -> None:
    """A Temporal client connects to the embedded server, which lists and describes `default`."""
    client = await Client.connect(infra.temporal_address, namespace="default")
    described = await client.workflow_service.describe_namespace(DescribeNamespaceRequest(namespace="default"))
    assert described.namespace_info.name == "default"
    listed = await client.workflow_service.list_namespaces(ListNamespacesRequest())
    assert "default" in {ns.namespace_info.name for ns in listed.namespaces}


async def test_temporal_ui_answers(infra: InfraStack) -> None:
    """The embedded Temporal web UI answers 200."""
    assert infra.temporal_ui_url is not None
    async with httpx.AsyncClient(trust_env=False) as client:
        response = await client.get(infra.temporal_ui_url)
    assert response.status_code == 200


async def test_stop_ends_the_process_and_its_children_with_sigterm(tmp_path: Path) -> None:
    """stop() SIGTERMs the whole process group: parent and grandchild end without escalation."""
    process, child = await _start_family(tmp_path, POLITE)
    pids = {process.pid or 0, child}
    try:
        started = time.monotonic()
        code = process.stop(timeout=20)
        assert time.monotonic() - started < 10
        assert code == -signal.SIGTERM
        assert not alive(pids)
    finally:
        kill_leftovers(pids)


async def test_stop_escalates_to_sigkill_and_leaves_no_process(tmp_path: Path) -> None:
    """stop() SIGKILLs a group that ignores SIGTERM after the timeout; parent and child are gone."""
    process, child = await _start_family(tmp_path, STUBBORN)
    pids = {process.pid or 0, child}
    try:
        code = process.stop(timeout=0.5)
        assert code == -signal.SIGKILL
        assert not alive(pids)
        assert process.stop() == code  # idempotent
    finally:
        kill_leftovers(pids)


async def _never_ready() -> bool:
    """A readiness probe that never succeeds."""
    return False


async def test_wait_ready_fails_fast_with_the_log_tail_when_the_process_exits(tmp_path: Path) -> None:
    """wait_ready raises at once, quoting the log, when the process exits before being ready."""
    script = "import sys; print('boom: cannot bind', flush=True); sys.exit(3)"
    process = ManagedProcess("doomed", [sys.executable, "-c", script], log_path=tmp_path / "doomed.log")
    process.start()

    started = time.monotonic()
    with pytest.raises(ServerStartError, match=r"(?s)doomed exited with code 3.*boom: cannot bind"):
        await process.wait_ready(_never_ready, timeout=60)
    assert time.monotonic() - started < 30


async def test_wait_ready_times_out_and_the_process_can_be_stopped(tmp_path: Path) -> None:
    """wait_ready raises `not ready` after its timeout when the probe never succeeds."""
    script = "import time\nwhile True: time.sleep(1)"
    process = ManagedProcess("sleepy", [sys.executable, "-c", script], log_path=tmp_path / "sleepy.log")
    process.start()

    try:
        with pytest.raises(ServerStartError, match="sleepy not ready"):
            await process.wait_ready(_never_ready, timeout=0.3)
    finally:
        process.stop()
    assert not process.running


async def test_infra_stack_stop_leaves_no_process(tmp_path: Path) -> None:
    """InfraStack.stop() ends all three servers and anything they spawned."""
    stack = InfraStack(tmp_path / "home")
    await stack.start()
    pids: set[int] = set()
    try:
        assert len(stack.processes) == 3
        for process in stack.processes:
            assert process.pid is not None
            pids |= {process.pid, *descendants(process.pid)}
        stack.stop()
        assert not alive(pids)
        assert all(p.returncode is not None for p in stack.processes)
    finally:
        stack.stop()
        kill_leftovers(pids)


async def test_infra_stack_start_failure_stops_the_servers_already_started(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When one server fails to start, InfraStack.start() raises and stops the others."""
    failing = [sys.executable, "-c", "import sys; print('no redis today', flush=True); sys.exit(1)"]
    monkeypatch.setattr(EmbeddedRedis, "argv", lambda self: failing)
    stack = InfraStack(tmp_path / "home")
    with pytest.raises(ServerStartError, match="no redis today"):
        await stack.start()
    pids = {p.pid for p in stack.processes if p.pid is not None}
    assert len(pids) == 3
    assert not alive(pids)


async def test_infra_stack_starts_nothing_for_external_urls(tmp_path: Path) -> None:
    """Given external URLs, InfraStack starts no server and passes the URLs through."""
    stack = InfraStack(
        tmp_path / "home",
        nats_url="nats://127.0.0.1:1",
        temporal_address="127.0.0.1:2",
        redis_url="redis://127.0.0.1:3/0",
    )
    await stack.start()
    assert stack.processes == []
    assert (stack.nats_url, stack.temporal_address, stack.redis_url) == (
        "nats://127.0.0.1:1",
        "127.0.0.1:2",
        "redis://127.0.0.1:3/0",
    )
    assert stack.temporal_ui_url is None
    stack.stop()


async def test_infra_stack_replaces_a_taken_port_and_says_so(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A preferred port already in use is replaced by a free one, and a warning names both."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        taken = listener.getsockname()[1]
        stack = InfraStack(
            tmp_path / "home", nats_url="nats://127.0.0.1:1", temporal_address="127.0.0.1:2", redis_port=taken
        )
        with caplog.at_level("WARNING", logger="drift_cli"):
            await stack.start()
        try:
            port = urlsplit(stack.redis_url).port
            assert port != taken
            assert f"port {taken} for Redis is taken; using {port}" in caplog.text
            client = aioredis.from_url(stack.redis_url)
            assert await client.ping()
            await client.aclose()
        finally:
            stack.stop()
