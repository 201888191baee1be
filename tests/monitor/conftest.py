"""Fixtures of the monitor tests: a store and monitor on a temp SQLite file, a settable clock,
the Synthea data and a throwaway Redis server."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from monitor_helpers import SYNTHEA, T0, Clock

from medagent.monitor.core import Monitor
from medagent.record.store import RecordStore


@pytest.fixture
def db_path(tmp_path: Path) -> str:
    return str(tmp_path / "monitor.db")


@pytest.fixture
def store(db_path: str) -> Iterator[RecordStore]:
    with RecordStore.open(db_path) as s:
        yield s


@pytest.fixture
def clock() -> Clock:
    return Clock(T0 + timedelta(minutes=5))


@pytest.fixture
def monitor(store: RecordStore, clock: Clock) -> Monitor:
    return Monitor(store, clock=clock)


@pytest.fixture(scope="session")
def synthea() -> Path:
    if not SYNTHEA.exists():
        pytest.skip(f"Synthea data not found at {SYNTHEA}")
    return SYNTHEA


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    """A throwaway redis-server on 127.0.0.1 (no persistence), skipped without the binary except
    under CI=true, where it fails."""
    binary = shutil.which("redis-server")
    if binary is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("redis-server is required under CI=true (apt-get install redis-server)")
        pytest.skip("redis-server not installed (Debian package redis-server)")
    port = _free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    import redis

    client = redis.Redis(host="127.0.0.1", port=port)
    for _ in range(100):
        try:
            client.ping()
            break
        except redis.ConnectionError:
            time.sleep(0.05)
    else:
        proc.kill()
        pytest.fail("redis-server did not start")
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(10)
