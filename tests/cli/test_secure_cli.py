"""The security commands: keys, seal/open with every refusal, audit verify, the gateway pair."""

from __future__ import annotations

import http.server
import socket
import sqlite3
import ssl
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from medagent.cli import app

runner = CliRunner()


@pytest.fixture
def keys(tmp_path: Path) -> Path:
    for name in ("hospital", "compute", "stranger"):
        out = runner.invoke(app, ["keys", "generate", str(tmp_path), "--name", name])
        assert out.exit_code == 0, out.output
    return tmp_path


def _seal(keys: Path, message: bytes) -> Path:
    plain = keys / "referral.json"
    plain.write_bytes(message)
    package = keys / "referral.sealed"
    out = runner.invoke(
        app,
        [
            "seal", str(plain), "--from", str(keys / "hospital.key.pem"),
            "--to", str(keys / "compute.pub.pem"), "-o", str(package),
        ],
    )  # fmt: skip
    assert out.exit_code == 0, out.output
    return package


def _open(keys: Path, package: Path, *, key: str = "compute", trust: str = "hospital") -> object:
    return runner.invoke(
        app,
        [
            "open", str(package), "--key", str(keys / f"{key}.key.pem"),
            "--trust", str(keys / f"{trust}.pub.pem"),
            "--replay-db", str(keys / "replay.sqlite"),
            "-o", str(keys / "opened.json"),
        ],
    )  # fmt: skip


def test_seal_then_open_round_trips(keys: Path) -> None:
    package = _seal(keys, b'{"resourceType": "Bundle"}')
    out = _open(keys, package)
    assert out.exit_code == 0, out.output  # type: ignore[attr-defined]
    assert (keys / "opened.json").read_bytes() == b'{"resourceType": "Bundle"}'


def test_replayed_package_is_refused(keys: Path) -> None:
    package = _seal(keys, b"x")
    assert _open(keys, package).exit_code == 0  # type: ignore[attr-defined]
    again = _open(keys, package)
    assert again.exit_code == 1  # type: ignore[attr-defined]
    assert "replay" in again.output.lower()  # type: ignore[attr-defined]


def test_tampered_truncated_wrong_key_and_untrusted_are_refused(keys: Path) -> None:
    package = _seal(keys, b"patient data")
    raw = package.read_bytes()
    tampered = keys / "tampered.sealed"
    tampered.write_bytes(raw[:200] + bytes([raw[200] ^ 1]) + raw[201:])
    truncated = keys / "truncated.sealed"
    truncated.write_bytes(raw[:-10])
    for bad in (tampered, truncated):
        out = _open(keys, bad)
        assert out.exit_code == 1, out.output  # type: ignore[attr-defined]
        assert "error:" in out.output  # type: ignore[attr-defined]
    assert _open(keys, package, key="stranger").exit_code == 1  # type: ignore[attr-defined]
    assert _open(keys, package, trust="stranger").exit_code == 1  # type: ignore[attr-defined]


def test_audit_verify_finds_an_edited_entry(keys: Path) -> None:
    from medagent.secure.audit import AuditLog
    from medagent.secure.keys import read_identity

    db = keys / "audit.sqlite"
    log = AuditLog(db)
    signer = read_identity(keys / "hospital.key.pem")
    for n in range(5):
        log.append(
            actor="dr.x", action="read", resource=f"Patient/{n}", source="127.0.0.1", reason="care"
        )
    log.checkpoint(signer.signing_key)
    args = ["audit", "verify", str(db), "--public", str(keys / "hospital.pub.pem")]
    ok = runner.invoke(app, args)
    assert ok.exit_code == 0, ok.output
    assert "intact" in ok.output
    with sqlite3.connect(db) as con:  # an attacker with file access, triggers removed
        names = [r[0] for r in con.execute("select name from sqlite_master where type='trigger'")]
        for name in names:
            con.execute(f"drop trigger {name}")
        tables = [r[0] for r in con.execute("select name from sqlite_master where type='table'")]
        table = next(t for t in tables if "entr" in t)
        cols = [r[1] for r in con.execute(f"pragma table_info({table})")]
        field = next(c for c in cols if c in ("resource", "data", "payload", "body"))
        con.execute(f"update {table} set {field} = replace({field}, 'Patient/2', 'Patient/9')")
    bad = runner.invoke(app, [*args, "--json"])
    assert bad.exit_code == 1
    assert "edited" in bad.output


@pytest.fixture
def upstream() -> Iterator[int]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b'{"resourceType": "Patient", "id": "p1"}'
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()


def _start(args: list[str]) -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "medagent.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert "listening on" in line, proc.stderr.read() if proc.stderr else line
    return proc, int(line.rsplit(":", 1)[1])


def test_gateway_pair_from_the_command_line(tmp_path: Path, upstream: int) -> None:
    pins = {}
    for side in ("hospital", "compute"):
        out = runner.invoke(app, ["gateway", "identity", str(tmp_path), "--name", side])
        assert out.exit_code == 0, out.output
        pins[side] = out.output.split("pin: ")[1].strip()
    compute, compute_port = _start(
        [
            "gateway", "run", "compute", "--listen", "127.0.0.1:0", "--to", f"127.0.0.1:{upstream}",
            "--cert", str(tmp_path / "compute.crt.pem"), "--key", str(tmp_path / "compute.key.pem"),
            "--peer-pin", pins["hospital"],
        ]
    )  # fmt: skip
    hospital, hospital_port = _start(
        [
            "gateway", "run", "hospital", "--listen", "127.0.0.1:0",
            "--to", f"127.0.0.1:{compute_port}",
            "--cert", str(tmp_path / "hospital.crt.pem"),
            "--key", str(tmp_path / "hospital.key.pem"),
            "--peer-pin", pins["compute"],
        ]
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{hospital_port}/fhir/Patient/p1", timeout=5
                ) as r:
                    assert b'"Patient"' in r.read()
                break
            except (ConnectionError, OSError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        # A classical TLS client cannot talk to the compute side at all.
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        with (
            socket.create_connection(("127.0.0.1", compute_port), timeout=5) as raw,
            pytest.raises((ssl.SSLError, ConnectionError, OSError)),
            ctx.wrap_socket(raw) as tls,
        ):
            tls.sendall(b"GET / HTTP/1.0\r\n\r\n")
            assert tls.recv(100) == b""
    finally:
        for proc in (hospital, compute):
            proc.terminate()
            proc.wait(timeout=10)
