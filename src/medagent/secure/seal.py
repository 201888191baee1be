"""Sealed packages: HPKE (RFC 9180, KEM MLKEM768_X25519) encryption signed with ML-DSA-65.

Wire format, version 1 (all integers big-endian)::

    magic    6 bytes  b"MASEAL"
    version  1 byte   1
    hlen     2 bytes  length of the header
    header   hlen     canonical JSON (sorted keys, no spaces, UTF-8) with exactly the keys
                      v, suite, sender, recipient, package_id, created, content_type
    clen     4 bytes  length of the HPKE ciphertext
    hpke     clen     RFC 9180 single-shot output: enc || AEAD ciphertext
    slen     2 bytes  length of the signature
    sig      slen     ML-DSA-65 signature, context b"medagent-seal-v1", over every byte above

The header is the HPKE ``info``, so it is bound into the key schedule as well as the signature:
changing the sender, recipient, id or time breaks decryption even for someone who re-signs.
A package is opened only after the signature verifies, the HPKE ciphertext decrypts, the time is
inside the accepted window, and the package id was never recorded in the replay store.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import struct
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hpke

from medagent.secure.errors import (
    MalformedPackageError,
    ReplayError,
    StaleError,
    TamperedError,
    UnknownSenderError,
    WrongRecipientError,
)
from medagent.secure.keys import Identity, PublicIdentity

MAGIC = b"MASEAL"
VERSION = 1
SUITE_NAME = "HPKE-MLKEM768X25519-HKDF-SHA256-AES-256-GCM+ML-DSA-65"
SIGNATURE_CONTEXT = b"medagent-seal-v1"
MAX_PAYLOAD = 64 * 1024 * 1024
DEFAULT_MAX_AGE = 7 * 24 * 3600
DEFAULT_CLOCK_SKEW = 300
_HEADER_KEYS = frozenset(
    {"v", "suite", "sender", "recipient", "package_id", "created", "content_type"}
)
_MAX_HEADER = 2048
_MLDSA65_SIG_LEN = 3309
_SUITE = hpke.Suite(hpke.KEM.MLKEM768_X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM)


@dataclass(frozen=True, slots=True)
class PackageHeader:
    """The authenticated header of a sealed package."""

    sender: str
    recipient: str
    package_id: str
    created: int
    content_type: str

    def to_bytes(self) -> bytes:
        """Canonical JSON encoding, the exact bytes that are signed and used as HPKE info."""
        body = {
            "v": VERSION,
            "suite": SUITE_NAME,
            "sender": self.sender,
            "recipient": self.recipient,
            "package_id": self.package_id,
            "created": self.created,
            "content_type": self.content_type,
        }
        return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> PackageHeader:
        """Parse and check a header; anything unexpected is a MalformedPackageError."""
        try:
            body = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise MalformedPackageError("package header is not valid JSON") from exc
        if not isinstance(body, dict) or set(body) != _HEADER_KEYS:
            raise MalformedPackageError(f"package header must have exactly {sorted(_HEADER_KEYS)}")
        if body["v"] != VERSION or body["suite"] != SUITE_NAME:
            raise MalformedPackageError(
                f"unsupported package version/suite {body['v']!r}/{body['suite']!r}"
            )
        strings = ("sender", "recipient", "package_id", "content_type")
        if not all(isinstance(body[k], str) for k in strings):
            raise MalformedPackageError("package header fields must be strings")
        created = body["created"]
        if not isinstance(created, int) or isinstance(created, bool) or created < 0:
            raise MalformedPackageError("package header 'created' must be a non-negative integer")
        header = cls(
            sender=body["sender"],
            recipient=body["recipient"],
            package_id=body["package_id"],
            created=created,
            content_type=body["content_type"],
        )
        if header.to_bytes() != raw:
            raise MalformedPackageError("package header is not in canonical form")
        return header


@dataclass(frozen=True, slots=True)
class OpenedPackage:
    """A verified, decrypted package."""

    header: PackageHeader
    payload: bytes


class ReplayStore(Protocol):
    """Remembers package ids that were opened, so that a package is opened at most once."""

    def record(self, package_id: str, *, sender: str, created: int) -> bool:
        """Record an id; return False (and record nothing) if it was recorded before."""
        ...

    def prune(self, older_than: int) -> int:
        """Forget ids of packages created before ``older_than`` (unix s); return how many."""
        ...


class MemoryReplayStore:
    """A replay store in memory (one process, for tests and short-lived tools)."""

    def __init__(self) -> None:
        self._seen: dict[str, int] = {}
        self._lock = threading.Lock()

    def record(self, package_id: str, *, sender: str, created: int) -> bool:
        """Record an id; return False if it was recorded before."""
        del sender
        with self._lock:
            if package_id in self._seen:
                return False
            self._seen[package_id] = created
            return True

    def prune(self, older_than: int) -> int:
        """Forget ids created before ``older_than``."""
        with self._lock:
            old = [k for k, v in self._seen.items() if v < older_than]
            for k in old:
                del self._seen[k]
            return len(old)


class SQLiteReplayStore:
    """A replay store in SQLite: the PRIMARY KEY makes check-and-record atomic across processes."""

    def __init__(self, path: Path | str) -> None:
        self._path = str(path)
        with self._connect() as db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS seen_packages ("
                " package_id TEXT PRIMARY KEY, sender TEXT NOT NULL,"
                " created INTEGER NOT NULL, opened_at REAL NOT NULL)"
            )

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self._path, timeout=30)

    def record(self, package_id: str, *, sender: str, created: int) -> bool:
        """Record an id; return False if it was recorded before."""
        db = self._connect()
        try:
            with db:
                db.execute(
                    "INSERT INTO seen_packages VALUES (?, ?, ?, ?)",
                    (package_id, sender, created, time.time()),
                )
        except sqlite3.IntegrityError:
            return False
        finally:
            db.close()
        return True

    def prune(self, older_than: int) -> int:
        """Forget ids created before ``older_than``."""
        db = self._connect()
        try:
            with db:
                cur = db.execute("DELETE FROM seen_packages WHERE created < ?", (older_than,))
                return cur.rowcount
        finally:
            db.close()


def seal(
    payload: bytes,
    *,
    sender: Identity,
    recipient: PublicIdentity,
    content_type: str = "application/octet-stream",
    now: int | None = None,
) -> bytes:
    """Encrypt ``payload`` to ``recipient`` and sign it as ``sender``; return the package bytes."""
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"payload larger than {MAX_PAYLOAD} bytes")
    header = PackageHeader(
        sender=sender.public().signing_key_id,
        recipient=recipient.kem_key_id,
        package_id=secrets.token_hex(16),
        created=int(time.time()) if now is None else now,
        content_type=content_type,
    )
    header_bytes = header.to_bytes()
    ciphertext = _SUITE.encrypt(payload, recipient.hpke_public_key(), info=header_bytes)
    body = b"".join(
        (
            MAGIC,
            struct.pack(">BH", VERSION, len(header_bytes)),
            header_bytes,
            struct.pack(">I", len(ciphertext)),
            ciphertext,
        )
    )
    signature = sender.signing_key.sign(body, SIGNATURE_CONTEXT)
    return body + struct.pack(">H", len(signature)) + signature


def _split(package: bytes) -> tuple[bytes, PackageHeader, bytes, bytes]:
    """Cut a package into (signed body, header, HPKE ciphertext, signature), strictly."""
    fixed = len(MAGIC) + 3
    if len(package) < fixed:
        raise MalformedPackageError(f"truncated package: {len(package)} bytes")
    if package[: len(MAGIC)] != MAGIC:
        raise MalformedPackageError("not a medagent sealed package (bad magic)")
    version, hlen = struct.unpack_from(">BH", package, len(MAGIC))
    if version != VERSION:
        raise MalformedPackageError(f"unsupported package version {version}")
    if hlen > _MAX_HEADER:
        raise MalformedPackageError(f"package header too long ({hlen} bytes)")
    pos = fixed + hlen
    if len(package) < pos + 4:
        raise MalformedPackageError("truncated package (header)")
    header = PackageHeader.from_bytes(package[fixed:pos])
    (clen,) = struct.unpack_from(">I", package, pos)
    pos += 4
    if clen > MAX_PAYLOAD + 4096 or len(package) < pos + clen + 2:
        raise MalformedPackageError("truncated package (ciphertext)")
    ciphertext = package[pos : pos + clen]
    pos += clen
    body = package[:pos]
    (slen,) = struct.unpack_from(">H", package, pos)
    pos += 2
    if slen != _MLDSA65_SIG_LEN:
        raise MalformedPackageError(f"signature length {slen} is not ML-DSA-65's")
    if len(package) < pos + slen:
        raise MalformedPackageError("truncated package (signature)")
    if len(package) > pos + slen:
        raise MalformedPackageError(f"{len(package) - pos - slen} trailing bytes after package")
    return body, header, ciphertext, package[pos:]


def inspect(package: bytes) -> PackageHeader:
    """Parse a package's header without verifying or decrypting anything."""
    return _split(package)[1]


def open_package(
    package: bytes,
    *,
    recipient: Identity,
    senders: Mapping[str, PublicIdentity],
    replay_store: ReplayStore,
    now: int | None = None,
    max_age: int = DEFAULT_MAX_AGE,
    clock_skew: int = DEFAULT_CLOCK_SKEW,
) -> OpenedPackage:
    """Verify, decrypt and record a package; raise a SealError subclass saying why if refused.

    ``senders`` maps a signing key id to the trusted sender's public identity; use
    :func:`trusted_senders` to build it from a list of identities.
    """
    body, header, ciphertext, signature = _split(package)
    if header.recipient != recipient.public().kem_key_id:
        raise WrongRecipientError(
            f"package {header.package_id} is sealed for key {header.recipient}, "
            f"not for {recipient.public().kem_key_id}"
        )
    sender = senders.get(header.sender)
    if sender is None:
        raise UnknownSenderError(f"package signed by untrusted key {header.sender}")
    try:
        sender.signing_key.verify(signature, body, SIGNATURE_CONTEXT)
    except InvalidSignature as exc:
        raise TamperedError(
            f"package {header.package_id}: ML-DSA-65 signature does not verify"
        ) from exc
    current = int(time.time()) if now is None else now
    if header.created > current + clock_skew:
        raise StaleError(f"package {header.package_id} is dated in the future ({header.created})")
    if header.created < current - max_age:
        raise StaleError(
            f"package {header.package_id} is older than the accepted {max_age} s window"
        )
    try:
        payload = _SUITE.decrypt(ciphertext, recipient.hpke_private_key(), info=body_header(body))
    except (InvalidTag, ValueError) as exc:
        raise TamperedError(f"package {header.package_id}: HPKE decryption failed") from exc
    if not replay_store.record(header.package_id, sender=header.sender, created=header.created):
        raise ReplayError(f"package {header.package_id} was already opened (replay)")
    return OpenedPackage(header=header, payload=payload)


def body_header(body: bytes) -> bytes:
    """The raw header bytes inside a signed body (the HPKE info)."""
    (hlen,) = struct.unpack_from(">H", body, len(MAGIC) + 1)
    start = len(MAGIC) + 3
    return body[start : start + hlen]


def trusted_senders(*identities: PublicIdentity) -> dict[str, PublicIdentity]:
    """Map each identity's signing key id to the identity, for :func:`open_package`."""
    return {identity.signing_key_id: identity for identity in identities}
