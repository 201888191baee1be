"""A throwaway PostgreSQL server on 127.0.0.1 (initdb + pg_ctl) for tests and benchmarks."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType

from medagent.errors import MedAgentError


class PostgresUnavailableError(MedAgentError, RuntimeError):
    """No PostgreSQL server binaries here, or the server would not start."""


def find_bin_dir() -> Path | None:
    """The newest `/usr/lib/postgresql/*/bin` holding initdb and pg_ctl (or those on PATH)."""
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name or 0)
    )
    for directory in reversed(candidates):
        if (Path(directory) / "initdb").exists() and (Path(directory) / "pg_ctl").exists():
            return Path(directory)
    initdb = shutil.which("initdb")
    if initdb and shutil.which("pg_ctl"):
        return Path(initdb).parent
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class TempPostgres:
    """Start with `start()` (or `with`), get `url`, and `stop()` removes the data directory.

    PostgreSQL refuses to run as root; as root the server runs as the `postgres` system user.
    """

    def __init__(self, bin_dir: Path | None = None) -> None:
        found = bin_dir or find_bin_dir()
        if found is None:
            raise PostgresUnavailableError(
                "PostgreSQL server binaries not found (/usr/lib/postgresql/*/bin; "
                "install the `postgresql` package)"
            )
        self.bin_dir = found
        self.port = _free_port()
        self.root = Path(tempfile.mkdtemp(prefix="medagent-pg-"))
        self.data = self.root / "data"
        self._user: str | None = None
        if os.geteuid() == 0:
            try:
                pwd.getpwnam("postgres")
            except KeyError as exc:
                raise PostgresUnavailableError(
                    "running as root and no `postgres` user to run the server as"
                ) from exc
            self._user = "postgres"
            shutil.chown(self.root, user="postgres")

    @property
    def url(self) -> str:
        """SQLAlchemy URL of the `postgres` database."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def url_for(self, database: str) -> str:
        """SQLAlchemy URL of another database on this server."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, *args: str) -> None:
        command = [str(self.bin_dir / args[0]), *args[1:]]
        if self._user:
            command = ["runuser", "-u", self._user, "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise PostgresUnavailableError(
                f"{args[0]} failed ({result.returncode}): {result.stderr.strip()[-2000:]}"
            )

    def start(self) -> TempPostgres:
        """initdb a fresh cluster (trust auth, UTF-8) and start it on a random local port."""
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8")
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(self.root / "log"),
            "-w",
            "start",
        )
        return self

    def create_database(self, name: str) -> str:
        """Create an empty database and return its URL."""
        import psycopg

        with psycopg.connect(
            f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres", autocommit=True
        ) as conn:
            conn.execute(f'CREATE DATABASE "{name}"'.encode())
        return self.url_for(name)

    def drop_database(self, name: str) -> None:
        """Drop a database (closing its remaining connections)."""
        import psycopg

        with psycopg.connect(
            f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres", autocommit=True
        ) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'.encode())

    def stop(self) -> None:
        """Stop the server and delete its files."""
        try:
            if (self.data / "postmaster.pid").exists():
                self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> TempPostgres:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
