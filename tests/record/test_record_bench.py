"""The record benchmark's own measurements (bench/record_bench.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench"


def test_child_peak_memory_is_its_own_not_the_parents() -> None:
    """Regression: children reported the bench process's peak RSS (ru_maxrss survives exec)."""
    ballast = bytearray(300 * 1024 * 1024)
    ballast[::4096] = b"\1" * len(range(0, len(ballast), 4096))  # make the pages resident
    code = (
        f"import sys; sys.path.insert(0, {str(BENCH)!r}); import record_bench; "
        "print(record_bench._peak_rss_mb())"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert float(done.stdout) < 150, done.stdout  # the child itself needs far less than 300 MB
    del ballast
