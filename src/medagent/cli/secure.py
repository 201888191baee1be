"""Commands for the protection of patient data: keys, sealed packages, audit, the PQ gateway."""

from __future__ import annotations

import hashlib
import os
import signal
import sys
import threading
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from medagent.cli._common import JsonFlag, audit_event, fail, print_json
from medagent.errors import MedAgentError

if TYPE_CHECKING:
    from medagent.secure.audit import AuditLog

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
    from medagent.secure.seal import inspect, seal

    try:
        data = _read(path)
        to = read_public_identity(recipient)
        package = seal(
            data,
            sender=read_identity(sender, _passphrase(passphrase_env)),
            recipient=to,
            content_type=content_type,
        )
    except MedAgentError as exc:
        fail(str(exc))
    # written before the package leaves: an export that was made is never missing from the trail
    audit_event(
        action="export",
        resource="sealed-package",
        reason="seal a file for a recipient",
        detail=(
            f"package {inspect(package).package_id}: {path} ({len(data)} bytes, {content_type})"
            f" to recipient key {to.kem_key_id}, written to {output or 'standard output'}"
        ),
    )
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
        audit_event(
            action="receive",
            resource="sealed-package",
            reason="open a sealed package",
            detail=f"{path}",
            outcome=f"refused: {type(exc).__name__}",
        )
        fail(str(exc), code=1)
    header = opened.header
    audit_event(
        action="receive",
        resource="sealed-package",
        reason="open a sealed package",
        detail=(
            f"package {header.package_id} from sender key {header.sender}: {path}"
            f" ({len(opened.payload)} bytes, {header.content_type}),"
            f" written to {output or 'standard output'}"
        ),
    )
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


LogArgument = Annotated[
    Path | None,
    typer.Argument(
        help="The audit log (SQLite; default: $MEDAGENT_AUDIT, else the user data dir).",
        show_default=False,
    ),
]


def _existing_log(database: Path | None) -> AuditLog:
    from medagent.secure.audit import AuditLog, default_audit_path

    path = database or default_audit_path()
    if not path.is_file():
        fail(f"{path}: no such file")
    return AuditLog(path)


def _when(text: str | None, option: str) -> datetime | None:
    if text is None:
        return None
    try:
        return datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        fail(f"{option} {text!r} is not an ISO 8601 time (e.g. 2026-03-01T08:00Z)")


@audit_app.command("list")
def audit_list(
    database: LogArgument = None,
    patient: Annotated[
        str | None, typer.Option(help="Entries about this patient (reads, writes, decisions).")
    ] = None,
    actor: Annotated[str | None, typer.Option(help="Entries of this actor only.")] = None,
    action: Annotated[
        str | None, typer.Option(help="read, write, delete, score, override, export, login …")
    ] = None,
    resource: Annotated[
        str | None, typer.Option(help="Exactly this resource, e.g. 'Patient/*' for list reads.")
    ] = None,
    since: Annotated[str | None, typer.Option(help="From this time (ISO 8601; UTC if bare).")] = (
        None
    ),
    until: Annotated[str | None, typer.Option(help="Up to this time (ISO 8601).")] = None,
    limit: Annotated[int, typer.Option(help="At most the newest N entries.", min=1)] = 1000,
    as_json: JsonFlag = False,
) -> None:
    """Who did what to which record, when, from where and why — e.g. who looked at a patient."""
    log = _existing_log(database)
    entries = log.search(
        patient=patient,
        actor=actor,
        action=action,
        resource=resource,
        since=_when(since, "--since"),
        until=_when(until, "--until"),
        limit=limit,
    )
    if as_json:
        print_json([e.to_dict() for e in entries])
        return
    for e in entries:
        detail = f" [{e.detail}]" if e.detail else ""
        sys.stdout.write(
            f"{e.seq}\t{e.ts}\t{e.actor}\t{e.source}\t{e.action}\t{e.resource}{detail}"
            f"\t{e.reason}\t{e.outcome}\n"
        )
    sys.stderr.write(f"{len(entries)} entries\n")


@audit_app.command("checkpoint")
def audit_checkpoint(
    database: LogArgument = None,
    key: Annotated[
        Path, typer.Option(help="Private key file whose ML-DSA-65 key signs the checkpoint.")
    ] = Path("hospital.key.pem"),
    passphrase_env: PassEnv = None,
    as_json: JsonFlag = False,
) -> None:
    """Sign the head of the chain (ML-DSA-65); copy the output off the machine."""
    from medagent.secure.keys import read_identity

    log = _existing_log(database)
    try:
        cp = log.checkpoint(read_identity(key, _passphrase(passphrase_env)).signing_key)
    except MedAgentError as exc:
        fail(str(exc))
    info = {
        "seq": cp.seq,
        "head_hash": cp.head_hash.hex(),
        "ts": cp.ts,
        "signer": cp.signer,
        "signature_sha256": hashlib.sha256(cp.signature).hexdigest(),
    }
    if as_json:
        print_json(info)
    else:
        sys.stdout.write(
            f"checkpoint at entry {cp.seq}: head {info['head_hash']} signed by {cp.signer}"
            f" at {cp.ts}\n"
        )


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
