"""`medagent serve --demo` starts the service on 127.0.0.1 and prints a working sign-in URL."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
from service_helpers import free_port

RUN = "import typer; from medagent.cli.service import serve; typer.run(serve)"


def test_serve_demo(tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "MEDAGENT_AUDIT": str(tmp_path / "audit.db"),
        "MEDAGENT_MONITOR": "0",
    }
    env.pop("MEDAGENT_BASE_URL", None)
    proc = subprocess.Popen(
        [sys.executable, "-c", RUN, "--port", str(port), "--db", f"sqlite:///{tmp_path / 'd.db'}",
         "--demo"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        lines: list[str] = []
        deadline = time.monotonic() + 60
        while not any(line.startswith("API docs") for line in lines):
            assert time.monotonic() < deadline, lines
            line = proc.stdout.readline()
            assert line or proc.poll() is None, lines
            lines.append(line.strip())
        url = next(line.removeprefix("open ") for line in lines if line.startswith("open "))
        assert url.startswith(f"http://127.0.0.1:{port}/auth/session?token=")
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                assert time.monotonic() < deadline
                time.sleep(0.2)
        with httpx.Client(follow_redirects=True, timeout=30) as browser:
            page = browser.get(url)
            assert page.status_code == 200
            assert "Harold Becker" in page.text
    finally:
        proc.terminate()
        proc.wait(timeout=20)
