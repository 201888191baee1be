"""The quantum-safe link: TLS 1.3, hybrid X25519MLKEM768 key exchange, ML-DSA-65 pinned peers.

Built on pyOpenSSL over the OpenSSL that ships inside ``cryptography`` (OpenSSL 4 here); Python's
``ssl`` module links the system OpenSSL (3.0 on this system), which has no ML-KEM. Policy:

* TLS 1.3 only; the only key-exchange group offered or accepted is ``X25519MLKEM768``, so a
  classical-only peer fails the handshake (downgrade protection), and after every handshake the
  negotiated group is checked again through pyOpenSSL's public ``get_group_name()``;
* both sides present a self-signed ML-DSA-65 certificate and accept only peers whose
  SubjectPublicKeyInfo SHA-256 is in their pin set (mutual authentication, no CA);
* no session tickets or session cache, so every connection runs a fresh hybrid key exchange
  (forward secrecy per connection, and the pin is checked on every connection).

pyOpenSSL has no public call to restrict the groups list, so :func:`make_context` calls OpenSSL's
``SSL_CTX_set1_curves_list`` (the documented alias of ``SSL_CTX_set1_groups_list``) through the
cffi binding that pyOpenSSL itself uses.
"""

from __future__ import annotations

import hashlib
import os
import select
import socket
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.bindings.openssl.binding import Binding
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import mldsa
from cryptography.x509.oid import NameOID
from OpenSSL import SSL, crypto

from medagent.secure.errors import LinkError

HYBRID_GROUP = "X25519MLKEM768"
DEFAULT_HANDSHAKE_TIMEOUT = 10.0
_lib: Any = Binding.lib


def spki_pin(cert: x509.Certificate) -> str:
    """SHA-256 (hex) of a certificate's DER SubjectPublicKeyInfo: what peers pin."""
    spki = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(spki).hexdigest()


def pin_of_file(cert_path: Path) -> str:
    """The SPKI pin of a PEM certificate file."""
    return spki_pin(x509.load_pem_x509_certificate(cert_path.read_bytes()))


@dataclass(frozen=True, slots=True)
class LinkIdentity:
    """A link endpoint's certificate and private key files (PEM)."""

    cert_path: Path
    key_path: Path

    @property
    def pin(self) -> str:
        """This endpoint's SPKI pin, to give to its peers."""
        return pin_of_file(self.cert_path)


def generate_link_identity(directory: Path, *, name: str, days: int = 365) -> LinkIdentity:
    """Create a self-signed ML-DSA-65 certificate and key as ``NAME.crt.pem``/``NAME.key.pem``."""
    key = mldsa.MLDSA65PrivateKey.generate()
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, None)
    )
    directory.mkdir(parents=True, exist_ok=True)
    cert_path = directory / f"{name}.crt.pem"
    key_path = directory / f"{name}.key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    return LinkIdentity(cert_path=cert_path, key_path=key_path)


@dataclass(frozen=True, slots=True)
class LinkPolicy:
    """Who this endpoint is, which peers it accepts, and which key exchange it allows."""

    identity: LinkIdentity
    peer_pins: frozenset[str]
    groups: str = HYBRID_GROUP
    required_group: str = HYBRID_GROUP
    handshake_timeout: float = DEFAULT_HANDSHAKE_TIMEOUT


def make_context(policy: LinkPolicy) -> SSL.Context:
    """An OpenSSL context enforcing the link policy (used for both the client and server role)."""
    ctx = SSL.Context(SSL.TLS_METHOD)
    ctx.set_min_proto_version(SSL.TLS1_3_VERSION)
    ctx.set_max_proto_version(SSL.TLS1_3_VERSION)
    if _lib.SSL_CTX_set1_curves_list(ctx._context, policy.groups.encode()) != 1:
        raise LinkError(f"OpenSSL refused the groups list {policy.groups!r}")
    ctx.set_options(SSL.OP_NO_TICKET)
    ctx.set_session_cache_mode(SSL.SESS_CACHE_OFF)
    try:
        ctx.use_certificate_file(str(policy.identity.cert_path))
        ctx.use_privatekey_file(str(policy.identity.key_path))
        ctx.check_privatekey()
    except SSL.Error as exc:
        raise LinkError(f"cannot load link certificate/key: {exc}") from exc
    pins = policy.peer_pins

    def verify(_conn: SSL.Connection, cert: crypto.X509, _errno: int, depth: int, _ok: int) -> bool:
        # Self-signed peers: the chain is one certificate, accepted only by its pin.
        return depth == 0 and spki_pin(cert.to_cryptography()) in pins

    ctx.set_verify(SSL.VERIFY_PEER | SSL.VERIFY_FAIL_IF_NO_PEER_CERT, verify)
    return ctx


def _wait(
    sock: socket.socket, *, write: bool, deadline: float, what: str = "TLS handshake"
) -> None:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise LinkError(f"{what} timed out")
    r, w, _ = select.select([] if write else [sock], [sock] if write else [], [], remaining)
    if not r and not w:
        raise LinkError(f"{what} timed out")


def handshake(conn: SSL.Connection, sock: socket.socket, policy: LinkPolicy) -> None:
    """Run the handshake on a non-blocking socket within the timeout, then check the policy."""
    sock.setblocking(False)
    deadline = time.monotonic() + policy.handshake_timeout
    while True:
        try:
            conn.do_handshake()
            break
        except SSL.WantReadError:
            _wait(sock, write=False, deadline=deadline, what="TLS read")
        except SSL.WantWriteError:
            _wait(sock, write=True, deadline=deadline, what="TLS read")
        except SSL.Error as exc:
            raise LinkError(f"TLS handshake refused: {exc}") from exc
    check_established(conn, policy)


def check_established(conn: SSL.Connection, policy: LinkPolicy) -> None:
    """Refuse a connection that is not TLS 1.3 with the hybrid group and a pinned peer."""
    version = conn.get_protocol_version_name()
    if version != "TLSv1.3":
        raise LinkError(f"refused: negotiated {version}, not TLSv1.3")
    group = conn.get_group_name()
    if group != policy.required_group:
        raise LinkError(f"refused: key exchange {group!r} is not {policy.required_group}")
    peer = conn.get_peer_certificate(as_cryptography=True)
    if peer is None or spki_pin(peer) not in policy.peer_pins:
        raise LinkError("refused: peer key is not pinned")


def connect(
    address: tuple[str, int], policy: LinkPolicy, context: SSL.Context | None = None
) -> tuple[SSL.Connection, socket.socket]:
    """Open a link to ``address`` as the client; returns the connection and its raw socket.

    Pass a ``context`` from :func:`make_context` to reuse it across connections (it reads the
    certificate and key files once); without one, a context is built from ``policy``.
    """
    try:
        sock = socket.create_connection(address, timeout=policy.handshake_timeout)
    except OSError as exc:
        raise LinkError(f"cannot reach {address[0]}:{address[1]}: {exc}") from exc
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    conn = SSL.Connection(context or make_context(policy), sock)
    conn.set_connect_state()
    try:
        handshake(conn, sock, policy)
    except BaseException:
        sock.close()
        raise
    return conn, sock


def accept(sock: socket.socket, context: SSL.Context, policy: LinkPolicy) -> SSL.Connection:
    """Run the server side of the handshake on an accepted socket."""
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    conn = SSL.Connection(context, sock)
    conn.set_accept_state()
    handshake(conn, sock, policy)
    return conn


def send_all(conn: SSL.Connection, sock: socket.socket, data: bytes, *, timeout: float) -> None:
    """Write every byte over a non-blocking TLS connection."""
    view = memoryview(data)
    deadline = time.monotonic() + timeout
    while view:
        try:
            sent = conn.send(view[:65536])
            view = view[sent:]
        except SSL.WantWriteError:
            _wait(sock, write=True, deadline=deadline, what="TLS write")
        except SSL.WantReadError:
            _wait(sock, write=False, deadline=deadline, what="TLS write")


def recv_ready(conn: SSL.Connection) -> bytes | None:
    """Application data already decryptable, b"" at close_notify, or None when there is none yet.

    Never waits: a readable socket may hold only a record that carries no application data (a
    TLS 1.3 NewSessionTicket, a partial record), and a forwarder that then blocked for data
    would stop serving its other direction.
    """
    try:
        return conn.recv(65536)
    except SSL.ZeroReturnError:
        return b""
    except (SSL.WantReadError, SSL.WantWriteError):
        return None


def recv_some(conn: SSL.Connection, sock: socket.socket, *, timeout: float) -> bytes:
    """Read what is available (at least one byte) or b"" at the peer's close_notify."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return conn.recv(65536)
        except SSL.ZeroReturnError:
            return b""
        except SSL.WantReadError:
            _wait(sock, write=False, deadline=deadline, what="TLS read")
        except SSL.WantWriteError:
            _wait(sock, write=True, deadline=deadline, what="TLS read")
