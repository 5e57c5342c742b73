"""A PostgreSQL server of a test's own, which the test can stop and start again: ``initdb`` and
``pg_ctl`` from the machine's PostgreSQL, a cluster in a temporary folder, listening on a
free port of 127.0.0.1 only (no Unix socket), trusting local connections.

PostgreSQL refuses to run as root: under root the cluster belongs to an unprivileged user
(``postgres`` if there is one, else ``nobody``) and its commands run as that user."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest

from tests.api.conftest import free_port
from tests.conftest import IN_CI


def _bindir() -> Path | None:
    """Where ``initdb`` and ``pg_ctl`` are: on the PATH, where ``pg_config`` says, or in the
    newest of Debian's /usr/lib/postgresql/<version>/bin."""
    found = shutil.which("pg_ctl")
    if found and shutil.which("initdb"):
        return Path(found).parent
    candidates: list[Path] = []
    if pg_config := shutil.which("pg_config"):
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True)
        if out.returncode == 0:
            candidates.append(Path(out.stdout.strip()))
    candidates += [
        Path(p).parent
        for p in sorted(
            glob.glob("/usr/lib/postgresql/*/bin/initdb"),
            key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0,
            reverse=True,
        )
    ]
    return next(
        (c for c in candidates if (c / "initdb").exists() and (c / "pg_ctl").exists()), None
    )


class PostgresServer:
    def __init__(self, bindir: Path, folder: Path, user: pwd.struct_passwd | None) -> None:
        self.bindir = bindir
        self.folder = folder
        self.data = folder / "data"
        self.log = folder / "postgresql.log"
        self.user = user
        self.port = free_port()
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        command = [str(self.bindir / args[0]), *args[1:]]
        if self.user is not None:
            command = ["runuser", "-u", self.user.pw_name, "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, cwd=self.folder)
        if done.returncode != 0:
            tail = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise RuntimeError(f"{args[0]} failed: {done.stdout}{done.stderr}{tail}")

    def init(self) -> None:
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(
                f"listen_addresses = '127.0.0.1'\nport = {self.port}\n"
                "unix_socket_directories = ''\nfsync = off\nsynchronous_commit = off\n"
                "full_page_writes = off\nmax_connections = 50\n"
            )

    def start(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "start")

    def stop(self) -> None:
        """A fast shutdown: sessions are ended, what they had under way rolled back."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "-t", "60", "stop")

    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()


def _unprivileged() -> pwd.struct_passwd | None:
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise RuntimeError("running as root, with neither a postgres nor a nobody user")


def _missing(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"a PostgreSQL server of the test's own is required under CI=true: {reason}")
    pytest.skip(reason)


@contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    """A server started on an empty cluster; stopped and deleted afterwards. Under CI=true a
    missing ``initdb`` or ``pg_ctl`` fails the test; otherwise it is skipped with the reason."""
    bindir = _bindir()
    if bindir is None:
        _missing("initdb and pg_ctl not found (PATH, pg_config, /usr/lib/postgresql/*/bin)")
    assert bindir is not None
    user = _unprivileged()
    if user is not None and shutil.which("runuser") is None:
        _missing("running as root without runuser: PostgreSQL refuses to run as root")
    # Not under pytest's folder: that one is private to the current user.
    folder = Path(tempfile.mkdtemp(prefix="pathway-pg-"))
    if user is not None:
        os.chown(folder, user.pw_uid, user.pw_gid)
    server = PostgresServer(bindir, folder, user)
    try:
        server.init()
        server.start()
        yield server
    finally:
        if server.running():
            with suppress(RuntimeError):
                server.stop()
        shutil.rmtree(folder, ignore_errors=True)
