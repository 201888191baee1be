"""Commands for the protection of patient data: keys, sealed packages, audit, the PQ gateway."""

from __future__ import annotations

import os
import signal
import sys
import threading
from pathlib import Path
from typing import Annotated

import typer

from medagent.cli._common import JsonFlag, fail, print_json
from medagent.errors import MedAgentError

keys_app = typer.Typer(help="Identities for sealed packages (ML-DSA-65 + ML-KEM-768 + X25519).")
audit_app = typer.Typer(help="The hash-chained, signed audit trail.", no_args_is_help=True)
link_app = typer.Typer(help="The quantum-safe link (TLS 1.3, X25519MLKEM768, pinned peers).")

PassEnv = Annotated[
    str | None,
    typer.Option(help="Name of an environment variable holding the private key's passphrase."),
]


def _passphrase(env: str | None) -> bytes | None:
    if env is None:
        return None
    value = os.environ.get(env)
    if value is None:
        fail(f"environment variable {env} is not set")
    return value.encode()


def _read(path: Path) -> bytes:
    try:
        return sys.stdin.buffer.read() if str(path) == "-" else path.read_bytes()
    except OSError as exc:
        fail(f"{path}: {exc.strerror}")


def _write(path: Path | None, data: bytes) -> None:
    if path is None:
        sys.stdout.buffer.write(data)
        return
    try:
        path.write_bytes(data)
    except OSError as exc:
        fail(f"{path}: {exc.strerror}")


@keys_app.command("generate")
def keys_generate(
    directory: Path,
    name: Annotated[str, typer.Option(help="File name stem: NAME.key.pem and NAME.pub.pem.")],
    passphrase_env: PassEnv = None,
    as_json: JsonFlag = False,
) -> None:
    """Create an identity; the private file is written with mode 0600."""
    from medagent.secure.keys import Identity, write_identity

    identity = Identity.generate()
    private, public = write_identity(
        identity, directory, name=name, passphrase=_passphrase(passphrase_env)
    )
    info = {
        "private": str(private),
        "public": str(public),
        "signing_key_id": identity.public().signing_key_id,
        "kem_key_id": identity.public().kem_key_id,
    }
    if as_json:
        print_json(info)
    else:
        for key, value in info.items():
            sys.stdout.write(f"{key}: {value}\n")


def seal_command(
    path: Annotated[Path, typer.Argument(help="File to seal ('-' for standard input).")],
    sender: Annotated[Path, typer.Option("--from", help="The sender's private key file.")],
    recipient: Annotated[Path, typer.Option("--to", help="The recipient's public key file.")],
    output: Annotated[Path | None, typer.Option("-o", "--output")] = None,
    content_type: Annotated[str, typer.Option()] = "application/octet-stream",
    passphrase_env: PassEnv = None,
) -> None:
    """Encrypt a file to a recipient (HPKE, ML-KEM-768 + X25519) and sign it (ML-DSA-65)."""
    from medagent.secure.keys import read_identity, read_public_identity
    from medagent.secure.seal import seal

    try:
        package = seal(
            _read(path),
            sender=read_identity(sender, _passphrase(passphrase_env)),
            recipient=read_public_identity(recipient),
            content_type=content_type,
        )
    except MedAgentError as exc:
        fail(str(exc))
    _write(output, package)


def open_command(
    path: Annotated[Path, typer.Argument(help="Sealed package ('-' for standard input).")],
    key: Annotated[Path, typer.Option("--key", help="The recipient's private key file.")],
    trust: Annotated[
        list[Path], typer.Option("--trust", help="Public key file of a trusted sender.")
    ],
    replay_db: Annotated[
        Path, typer.Option(help="SQLite file remembering opened packages (refuses replays).")
    ] = Path("medagent-replay.sqlite"),
    output: Annotated[Path | None, typer.Option("-o", "--output")] = None,
    passphrase_env: PassEnv = None,
) -> None:
    """Verify, decrypt and record a sealed package; refuse tampering, wrong keys and replays."""
    from medagent.secure.keys import read_identity, read_public_identity
    from medagent.secure.seal import SQLiteReplayStore, open_package, trusted_senders

    try:
        opened = open_package(
            _read(path),
            recipient=read_identity(key, _passphrase(passphrase_env)),
            senders=trusted_senders(*(read_public_identity(p) for p in trust)),
            replay_store=SQLiteReplayStore(replay_db),
        )
    except MedAgentError as exc:
        fail(str(exc), code=1)
    _write(output, opened.payload)


@audit_app.command("verify")
def audit_verify(
    database: Annotated[Path, typer.Argument(help="The audit log (SQLite).")],
    public: Annotated[Path, typer.Option(help="Public key file of the checkpoint signer.")],
    as_json: JsonFlag = False,
) -> None:
    """Check the chain and the signed checkpoints; name every edited, deleted or moved entry."""
    from medagent.secure.audit import AuditLog
    from medagent.secure.keys import read_public_identity

    if not database.is_file():
        fail(f"{database}: no such file")
    try:
        report = AuditLog(database).verify(read_public_identity(public).signing_key)
    except MedAgentError as exc:
        fail(str(exc))
    if as_json:
        print_json(
            {
                "ok": report.ok,
                "entries": report.entries,
                "checkpoints": report.checkpoints,
                "problems": [str(p) for p in report.problems],
            }
        )
    else:
        for problem in report.problems:
            sys.stdout.write(f"{problem}\n")
        state = "intact" if report.ok else f"{len(report.problems)} problem(s)"
        sys.stdout.write(f"{report.entries} entries, {report.checkpoints} checkpoints: {state}\n")
    if not report.ok:
        raise typer.Exit(1)


@link_app.command("identity")
def link_identity(
    directory: Path,
    name: Annotated[str, typer.Option(help="File name stem: NAME.crt.pem and NAME.key.pem.")],
) -> None:
    """Create a self-signed ML-DSA-65 link certificate and print its pin for the peer."""
    from medagent.secure.tls import generate_link_identity

    identity = generate_link_identity(directory, name=name)
    sys.stdout.write(f"certificate: {identity.cert_path}\npin: {identity.pin}\n")


def _address(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        fail(f"{text!r}: write an address as HOST:PORT")
    return host, int(port)


@link_app.command("run")
def link_run(
    role: Annotated[str, typer.Argument(help="hospital (plaintext in, link out) or compute.")],
    listen: Annotated[str, typer.Option(help="HOST:PORT to listen on.")],
    to: Annotated[str, typer.Option(help="hospital: the compute side; compute: the upstream.")],
    cert: Annotated[Path, typer.Option(help="This side's certificate (PEM).")],
    key: Annotated[Path, typer.Option(help="This side's private key (PEM).")],
    peer_pin: Annotated[list[str], typer.Option(help="SPKI pin of an accepted peer.")],
) -> None:
    """Run one side of the gateway until interrupted; refuses any classical handshake."""
    from medagent.secure.gateway import ComputeGateway, HospitalGateway
    from medagent.secure.tls import LinkIdentity, LinkPolicy

    policy = LinkPolicy(identity=LinkIdentity(cert, key), peer_pins=frozenset(peer_pin))
    try:
        if role == "hospital":
            gateway: HospitalGateway | ComputeGateway = HospitalGateway(
                remote=_address(to), policy=policy, listen=_address(listen)
            )
        elif role == "compute":
            gateway = ComputeGateway(upstream=_address(to), policy=policy, listen=_address(listen))
        else:
            fail(f"role {role!r}: use hospital or compute")
    except (MedAgentError, OSError) as exc:
        fail(str(exc))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    gateway.start()
    host, port = gateway.address
    sys.stdout.write(f"{role} gateway listening on {host}:{port}\n")
    sys.stdout.flush()
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        gateway.stop()
