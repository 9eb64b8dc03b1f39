"""A private, throw-away PostgreSQL server for tests and benchmarks (Debian ``postgresql``).

Takes: a working directory (a pytest ``tmp_path``). Makes: a cluster made by ``initdb`` in that
directory, a ``postgres`` server on a free 127.0.0.1 port (its Unix socket in the same directory, never
the system's), a database ``kgllm``, :attr:`Postgres.url` (an SQLAlchemy URL), and a clean stop by PID.

Usage::

    with Postgres(tmp_path / "pg") as pg:
        engine = sqlalchemy.create_engine(pg.url)

:func:`postgres_or_fail` is the policy for fixtures, as for Virtuoso: a missing server skips the test
on a developer machine but FAILS when ``CI`` is set. Debian installs the binaries under
``/usr/lib/postgresql/VERSION/bin``; tests run as root, so the cluster is owned by the ``postgres``
user (initdb refuses root) and started through ``runuser``.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest


def _bin(name: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else shutil.which(name)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Postgres:
    def __init__(self, workdir: str | os.PathLike):
        self.workdir = Path(workdir)
        if os.geteuid() == 0:
            # The server runs as `postgres`, which must reach its directory: pytest's temp root is
            # private to root (mode 700), so as root the cluster lives in its own traversable directory.
            self.workdir = Path(tempfile.mkdtemp(prefix="kgllm-pg-"))
            os.chmod(self.workdir, 0o711)
            self._own_dir = True
        else:
            self._own_dir = False
        self.data = self.workdir / "data"
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/kgllm"

    def _as_owner(self, argv: list[str]) -> list[str]:
        if os.geteuid() == 0:
            return ["runuser", "-u", "postgres", "--", *argv]
        return argv

    def start(self, timeout: float = 60.0) -> Postgres:
        initdb, postgres = _bin("initdb"), _bin("postgres")
        if not initdb or not postgres:
            raise RuntimeError("PostgreSQL is not installed (apt-get install postgresql)")
        self.workdir.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.workdir, "postgres", "postgres")
        subprocess.run(self._as_owner([initdb, "-D", str(self.data), "-U", "postgres", "--auth=trust",
                                       "-E", "UTF8", "--no-sync"]), check=True, capture_output=True, timeout=120)
        self.proc = subprocess.Popen(
            self._as_owner([postgres, "-D", str(self.data), "-p", str(self.port), "-h", "127.0.0.1",
                            "-k", str(self.workdir), "-c", "fsync=off", "-c", "max_connections=60"]),
            stdout=subprocess.DEVNULL, stderr=open(self.workdir / "server.log", "wb"), start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"postgres exited: {(self.workdir / 'server.log').read_text()[-2000:]}")
            r = subprocess.run(self._as_owner([_bin("psql") or "psql", "-h", "127.0.0.1", "-p", str(self.port),
                                               "-U", "postgres", "-c", "CREATE DATABASE kgllm"]),
                               capture_output=True, text=True)
            if r.returncode == 0:
                return self
            time.sleep(0.3)
        self.stop()
        raise RuntimeError("postgres did not start in time")

    def stop(self, timeout: float = 30.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGINT)  # "fast shutdown"; runuser forwards to the server
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        if self._own_dir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> Postgres:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def postgres_or_fail(workdir: str | os.PathLike) -> Postgres:
    try:
        return Postgres(workdir).start()
    except (RuntimeError, OSError, subprocess.SubprocessError) as e:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"PostgreSQL unavailable: {e}")
