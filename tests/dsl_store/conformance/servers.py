"""Throwaway PostgreSQL and MariaDB servers for the conformance suite: a temp directory, a free port, 127.0.0.1.

Each server runs from the binaries of this machine (Debian's `postgresql` and `mariadb-server`
packages, which `.ci/run` installs), never from a system service, so the suite runs the same on a
machine without database services. PostgreSQL refuses to run as root: when the tests run as root,
its data directory is handed to an unprivileged user (`postgres`, else `nobody`) and the server is
run as that user with `runuser`. MariaDB runs as the current user (`--user=root` when root) without
grant tables: a throwaway server that only the tests reach, on loopback.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

START_TIMEOUT_S = 60.0
POSTGRES_INSTALL = (
    "PostgreSQL server binaries (initdb, postgres) not found: install them (Debian/Ubuntu: "
    "apt-get install postgresql; .ci/run does this as root), or set DRIFT_TEST_POSTGRES_URL to a server's admin URL"
)
MARIADB_INSTALL = (
    "MariaDB server binaries (mariadb-install-db, mariadbd) not found: install them (Debian/Ubuntu: "
    "apt-get install mariadb-server; .ci/run does this as root), or set DRIFT_TEST_MYSQL_URL to a server's admin URL"
)


class MissingServer(RuntimeError):
    """The server's binaries are not on this machine; the message says what to install."""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _postgres_bin() -> Path:
    found = shutil.which("initdb")
    if found and shutil.which("postgres"):
        return Path(found).resolve().parent
    # Debian keeps them out of PATH, per major version.
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if (Path(candidate) / "initdb").exists() and (Path(candidate) / "postgres").exists():
            return Path(candidate)
    raise MissingServer(POSTGRES_INSTALL)


def _wait_port(port: int, process: subprocess.Popen[bytes], log: Path, what: str) -> None:
    """Until the server accepts TCP on `port` (no event to await: another process's state), or it died."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}: {log.read_text(errors='replace')[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what} did not accept connections within {START_TIMEOUT_S:.0f} s") from None
            time.sleep(0.1)


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


@contextmanager
def postgres_server() -> Iterator[str]:
    """The admin URL of a fresh PostgreSQL cluster in a temp directory, stopped and removed afterwards."""
    bindir = _postgres_bin()
    # Under /tmp itself, not pytest's per-user (0700) directory, which the unprivileged user cannot enter.
    base = Path(tempfile.mkdtemp(prefix="drift-pg-"))
    try:
        with _postgres_in(bindir, base) as url:
            yield url
    finally:
        shutil.rmtree(base, ignore_errors=True)


@contextmanager
def _postgres_in(bindir: Path, base: Path) -> Iterator[str]:
    data, log = base / "pg-data", base / "pg.log"
    data.mkdir(parents=True)
    prefix: list[str] = []
    if os.geteuid() == 0:
        user = next((name for name in ("postgres", "nobody") if _has_user(name)), None)
        runuser = shutil.which("runuser")
        if user is None or runuser is None:
            raise MissingServer("running as root, PostgreSQL needs an unprivileged user (postgres) and runuser")
        entry = pwd.getpwnam(user)
        for path in (base, data):
            os.chown(path, entry.pw_uid, entry.pw_gid)
        prefix = [runuser, "-u", user, "--"]
    subprocess.run(
        [*prefix, str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"],
        check=True,
        capture_output=True,
    )
    port = _free_port()
    command = [
        *prefix,
        str(bindir / "postgres"),
        "-D",
        str(data),
        "-p",
        str(port),
        "-k",
        str(base),
        "-c",
        "listen_addresses=127.0.0.1",
        "-c",
        "fsync=off",
    ]
    yield from _serve(command, port, log, "postgres", f"postgresql+asyncpg://postgres@127.0.0.1:{port}/postgres")


@contextmanager
def mariadb_server(base: Path) -> Iterator[str]:
    """The admin URL of a fresh MariaDB server under `base`, stopped afterwards."""
    install, server = shutil.which("mariadb-install-db"), shutil.which("mariadbd") or _sbin("mariadbd")
    if install is None or server is None:
        raise MissingServer(MARIADB_INSTALL)
    data, log = base / "mariadb-data", base / "mariadb.log"
    user = ["--user=root"] if os.geteuid() == 0 else []
    subprocess.run(
        [install, "--no-defaults", f"--datadir={data}", "--auth-root-authentication-method=normal", *user],
        check=True,
        capture_output=True,
    )
    port = _free_port()
    command = [
        server,
        "--no-defaults",
        f"--datadir={data}",
        f"--port={port}",
        "--bind-address=127.0.0.1",
        f"--socket={base / 'mariadb.sock'}",
        f"--pid-file={base / 'mariadb.pid'}",
        "--skip-grant-tables",
        "--skip-log-bin",
        "--innodb-flush-log-at-trx-commit=0",
        *user,
    ]
    yield from _serve(command, port, log, "mariadbd", f"mysql+aiomysql://root@127.0.0.1:{port}/")


def _serve(command: list[str], port: int, log: Path, name: str, url: str) -> Iterator[str]:
    """Yield `url` once the server `command` (its output in `log`) listens on `port`; stop it afterwards."""
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait_port(port, process, log, name)
        yield url
    finally:
        _stop(process)


def _sbin(name: str) -> str | None:
    path = Path("/usr/sbin") / name
    return str(path) if path.exists() else None


def _has_user(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True
