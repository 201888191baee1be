"""Envelope encryption at rest: AES-256-GCM per record, data keys wrapped by a key-encryption key.

Every record gets its own random 256-bit data key (DEK). The record is encrypted with AES-256-GCM
under the DEK with the record id as associated data (so ciphertexts cannot be swapped between
rows); the DEK is wrapped with AES-256-GCM under a key-encryption key (KEK) from a
:class:`KeyProvider`, again bound to the record id. Rotating the KEK re-wraps the small DEKs only;
record ciphertexts are never touched, so nothing can be lost by a rotation that stops halfway.
"""

from __future__ import annotations

import base64
import os
import sqlite3
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from medagent.secure.errors import AtRestError, RecordNotFoundError

KEY_BYTES = 32
NONCE_BYTES = 12
ENV_VAR = "MEDAGENT_KEK"
_WRAP_LABEL = b"medagent-dek-wrap-v1:"
_DATA_LABEL = b"medagent-record-v1:"


class KeyProvider(Protocol):
    """Wraps and unwraps data keys under key-encryption keys; a KMS client can implement this."""

    def current_key_id(self) -> str:
        """The id of the KEK new data keys are wrapped with."""
        ...

    def wrap(self, key_id: str, data_key: bytes, context: bytes) -> bytes:
        """Wrap ``data_key`` under KEK ``key_id``, bound to ``context``."""
        ...

    def unwrap(self, key_id: str, wrapped: bytes, context: bytes) -> bytes:
        """Unwrap a data key wrapped by :meth:`wrap` with the same KEK and context."""
        ...


class LocalKeyProvider:
    """KEKs held in this process: from a keyring file or an environment variable.

    Keyring text format (file or ``MEDAGENT_KEK``): entries ``KEY_ID:BASE64_32_BYTES`` separated
    by commas or newlines; the first entry is the current KEK, later ones are older KEKs kept
    only to unwrap data keys not yet re-wrapped. Blank lines and ``#`` comments are ignored.
    """

    def __init__(self, keys: Mapping[str, bytes], current: str) -> None:
        if current not in keys:
            raise AtRestError(f"current KEK {current!r} is not among the keys")
        for key_id, key in keys.items():
            if len(key) != KEY_BYTES:
                raise AtRestError(f"KEK {key_id!r} must be {KEY_BYTES} bytes, not {len(key)}")
        self._keys = dict(keys)
        self._current = current
        self._lock = threading.Lock()

    @classmethod
    def generate(cls, key_id: str = "kek-1") -> LocalKeyProvider:
        """A provider with one fresh random KEK."""
        return cls({key_id: AESGCM.generate_key(bit_length=256)}, key_id)

    @classmethod
    def from_text(cls, text: str) -> LocalKeyProvider:
        """Parse the keyring text format."""
        keys: dict[str, bytes] = {}
        order: list[str] = []
        for raw in text.replace(",", "\n").splitlines():
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            key_id, sep, b64 = line.partition(":")
            if not sep or not key_id:
                raise AtRestError("keyring entries must look like KEY_ID:BASE64")
            try:
                key = base64.b64decode(b64.strip(), validate=True)
            except ValueError as exc:
                raise AtRestError(f"KEK {key_id!r} is not valid base64") from exc
            if key_id in keys:
                raise AtRestError(f"KEK {key_id!r} appears twice")
            keys[key_id] = key
            order.append(key_id)
        if not order:
            raise AtRestError("keyring holds no key")
        return cls(keys, order[0])

    @classmethod
    def from_file(cls, path: Path) -> LocalKeyProvider:
        """Read a keyring file (keep it mode 0600, outside the database directory)."""
        try:
            return cls.from_text(path.read_text())
        except OSError as exc:
            raise AtRestError(f"{path}: {exc.strerror}") from exc

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> LocalKeyProvider:
        """Read the keyring from ``MEDAGENT_KEK``."""
        env = os.environ if environ is None else environ
        text = env.get(ENV_VAR)
        if not text:
            raise AtRestError(f"environment variable {ENV_VAR} is not set")
        return cls.from_text(text)

    def to_text(self) -> str:
        """The keyring in its text format, current key first."""
        ids = [self._current] + [k for k in self._keys if k != self._current]
        return "\n".join(f"{k}:{base64.b64encode(self._keys[k]).decode()}" for k in ids) + "\n"

    def add_key(self, key_id: str, key: bytes | None = None, *, make_current: bool = True) -> None:
        """Add a KEK (random if not given) and by default make it the current one."""
        new = AESGCM.generate_key(bit_length=256) if key is None else key
        if len(new) != KEY_BYTES:
            raise AtRestError(f"KEK {key_id!r} must be {KEY_BYTES} bytes")
        with self._lock:
            if key_id in self._keys:
                raise AtRestError(f"KEK {key_id!r} already exists")
            self._keys[key_id] = new
            if make_current:
                self._current = key_id

    def retire_key(self, key_id: str) -> None:
        """Forget an old KEK (after every data key was re-wrapped away from it)."""
        with self._lock:
            if key_id == self._current:
                raise AtRestError("cannot retire the current KEK")
            self._keys.pop(key_id, None)

    def current_key_id(self) -> str:
        """The id of the current KEK."""
        return self._current

    def _kek(self, key_id: str) -> AESGCM:
        key = self._keys.get(key_id)
        if key is None:
            raise AtRestError(f"unknown KEK {key_id!r} (retired or never loaded)")
        return AESGCM(key)

    def wrap(self, key_id: str, data_key: bytes, context: bytes) -> bytes:
        """AES-256-GCM wrap: nonce || ciphertext+tag, with the KEK id and context as AAD."""
        nonce = os.urandom(NONCE_BYTES)
        aad = _WRAP_LABEL + key_id.encode() + b"\x00" + context
        return nonce + self._kek(key_id).encrypt(nonce, data_key, aad)

    def unwrap(self, key_id: str, wrapped: bytes, context: bytes) -> bytes:
        """Reverse :meth:`wrap`; a wrong KEK or context is an AtRestError."""
        aad = _WRAP_LABEL + key_id.encode() + b"\x00" + context
        try:
            return self._kek(key_id).decrypt(wrapped[:NONCE_BYTES], wrapped[NONCE_BYTES:], aad)
        except InvalidTag as exc:
            raise AtRestError(f"data key does not unwrap under KEK {key_id!r}") from exc


@dataclass(frozen=True, slots=True)
class SealedRecord:
    """One encrypted record as stored."""

    record_id: str
    kek_id: str
    wrapped_key: bytes
    nonce: bytes
    ciphertext: bytes


def encrypt_record(record_id: str, plaintext: bytes, provider: KeyProvider) -> SealedRecord:
    """Encrypt one record under a fresh data key wrapped by the provider's current KEK."""
    data_key = AESGCM.generate_key(bit_length=256)
    nonce = os.urandom(NONCE_BYTES)
    ciphertext = AESGCM(data_key).encrypt(nonce, plaintext, _DATA_LABEL + record_id.encode())
    kek_id = provider.current_key_id()
    wrapped = provider.wrap(kek_id, data_key, record_id.encode())
    return SealedRecord(record_id, kek_id, wrapped, nonce, ciphertext)


def decrypt_record(record: SealedRecord, provider: KeyProvider) -> bytes:
    """Decrypt one record; any corruption or wrong key is an AtRestError."""
    data_key = provider.unwrap(record.kek_id, record.wrapped_key, record.record_id.encode())
    try:
        return AESGCM(data_key).decrypt(
            record.nonce, record.ciphertext, _DATA_LABEL + record.record_id.encode()
        )
    except InvalidTag as exc:
        raise AtRestError(f"record {record.record_id!r} is corrupt or was moved") from exc


def rewrap_record(record: SealedRecord, provider: KeyProvider) -> SealedRecord:
    """The same record with its data key re-wrapped under the current KEK."""
    context = record.record_id.encode()
    data_key = provider.unwrap(record.kek_id, record.wrapped_key, context)
    kek_id = provider.current_key_id()
    return SealedRecord(
        record.record_id,
        kek_id,
        provider.wrap(kek_id, data_key, context),
        record.nonce,
        record.ciphertext,
    )


class EncryptedStore:
    """A key-value store of encrypted records in SQLite (one row per record)."""

    def __init__(self, path: Path | str, provider: KeyProvider) -> None:
        self._path = str(path)
        self.provider = provider
        with self._connect() as db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS encrypted_records ("
                " record_id TEXT PRIMARY KEY, kek_id TEXT NOT NULL, wrapped_key BLOB NOT NULL,"
                " nonce BLOB NOT NULL, ciphertext BLOB NOT NULL)"
            )
            db.execute(
                "CREATE INDEX IF NOT EXISTS encrypted_records_kek ON encrypted_records(kek_id)"
            )

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self._path, timeout=30)
        db.execute("PRAGMA journal_mode=WAL")
        return db

    def put(self, record_id: str, plaintext: bytes) -> None:
        """Encrypt and store (insert or replace) one record."""
        rec = encrypt_record(record_id, plaintext, self.provider)
        db = self._connect()
        try:
            with db:
                db.execute(
                    "INSERT OR REPLACE INTO encrypted_records VALUES (?, ?, ?, ?, ?)",
                    (rec.record_id, rec.kek_id, rec.wrapped_key, rec.nonce, rec.ciphertext),
                )
        finally:
            db.close()

    def get(self, record_id: str) -> bytes:
        """Read and decrypt one record."""
        db = self._connect()
        try:
            row = db.execute(
                "SELECT record_id, kek_id, wrapped_key, nonce, ciphertext"
                " FROM encrypted_records WHERE record_id = ?",
                (record_id,),
            ).fetchone()
        finally:
            db.close()
        if row is None:
            raise RecordNotFoundError(f"no record {record_id!r}")
        return decrypt_record(SealedRecord(*row), self.provider)

    def ids(self) -> Iterator[str]:
        """Every record id, sorted."""
        db = self._connect()
        try:
            rows = db.execute(
                "SELECT record_id FROM encrypted_records ORDER BY record_id"
            ).fetchall()
        finally:
            db.close()
        for (record_id,) in rows:
            yield record_id

    def kek_usage(self) -> dict[str, int]:
        """How many records each KEK wraps."""
        db = self._connect()
        try:
            rows = db.execute(
                "SELECT kek_id, COUNT(*) FROM encrypted_records GROUP BY kek_id"
            ).fetchall()
        finally:
            db.close()
        return {k: n for k, n in rows}

    def rewrap(self, *, batch_size: int = 500, limit: int | None = None) -> int:
        """Re-wrap every data key not under the current KEK; return how many were re-wrapped.

        Each batch is one transaction, and a row is updated only if it still holds the wrapped
        key that was read (a concurrent put() wins), so the rotation can run during a workload
        and be interrupted and resumed at any point. ``limit`` stops after that many rows.
        """
        done = 0
        while limit is None or done < limit:
            size = batch_size if limit is None else min(batch_size, limit - done)
            current = self.provider.current_key_id()
            db = self._connect()
            try:
                rows = db.execute(
                    "SELECT record_id, kek_id, wrapped_key, nonce, ciphertext"
                    " FROM encrypted_records WHERE kek_id != ? LIMIT ?",
                    (current, size),
                ).fetchall()
                if not rows:
                    return done
                with db:
                    for row in rows:
                        old = SealedRecord(*row)
                        new = rewrap_record(old, self.provider)
                        cur = db.execute(
                            "UPDATE encrypted_records SET kek_id = ?, wrapped_key = ?"
                            " WHERE record_id = ? AND wrapped_key = ?",
                            (new.kek_id, new.wrapped_key, old.record_id, old.wrapped_key),
                        )
                        done += cur.rowcount
            finally:
                db.close()
        return done
