"""Envelope encryption at rest: AES-256-GCM per record, data keys wrapped by a key-encryption key.

Every record gets its own random 256-bit data key (DEK). The record is encrypted with AES-256-GCM
under the DEK with the record id as associated data (so ciphertexts cannot be swapped between
rows); the DEK is wrapped with AES-256-GCM under a key-encryption key (KEK) from a
:class:`KeyProvider`, again bound to the record id. Rotating the KEK re-wraps the small DEKs only;
record ciphertexts are never touched, so nothing can be lost by a rotation that stops halfway.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import sqlalchemy as sa
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy.engine import Engine

from medagent.secure.errors import AtRestError, RecordNotFoundError

KEY_BYTES = 32
NONCE_BYTES = 12
ENV_VAR = "MEDAGENT_KEK"
ENV_FILE_VAR = "MEDAGENT_KEK_FILE"
TOKEN_PREFIX = "ma1:"
_WRAP_LABEL = b"medagent-dek-wrap-v1:"
_DATA_LABEL = b"medagent-record-v1:"
_FIELD_LABEL = b"medagent-field-v1:"

log = logging.getLogger(__name__)


class MissingKeyError(AtRestError):
    """Data is wrapped under a KEK that the configured keyring does not hold."""


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
        self._ciphers = {key_id: AESGCM(key) for key_id, key in self._keys.items()}
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
        ids = self.key_ids()
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
            self._ciphers[key_id] = AESGCM(new)
            if make_current:
                self._current = key_id

    def retire_key(self, key_id: str) -> None:
        """Forget an old KEK (after every data key was re-wrapped away from it)."""
        with self._lock:
            if key_id == self._current:
                raise AtRestError("cannot retire the current KEK")
            self._keys.pop(key_id, None)
            self._ciphers.pop(key_id, None)

    def current_key_id(self) -> str:
        """The id of the current KEK."""
        return self._current

    def key_ids(self) -> list[str]:
        """The ids of the KEKs held, current first."""
        return [self._current] + [k for k in self._keys if k != self._current]

    def has_key(self, key_id: str) -> bool:
        """True if this keyring holds KEK ``key_id``."""
        return key_id in self._ciphers

    def _kek(self, key_id: str) -> AESGCM:
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise MissingKeyError(f"unknown KEK {key_id!r} (retired or never loaded)")
        return cipher

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


# ---- keyring files and which keyring is used ----------------------------------------------------


def new_key_id() -> str:
    """A fresh KEK id: ``kek-`` + UTC date + 6 random hex digits (sorts by creation day)."""
    return f"kek-{datetime.now(UTC):%Y%m%d}-{secrets.token_hex(3)}"


def _write_private(path: Path, text: str, *, exclusive: bool) -> bool:
    """Write ``text`` to ``path`` with mode 0600 atomically (temp file, then link or rename).

    With ``exclusive`` the file is only created if it does not exist yet (False when it did):
    two processes creating the default keyring at once end up sharing one, never two.
    """
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        if not exclusive:
            os.replace(tmp, path)
            return True
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        except OSError:  # a file system without hard links: create the file itself exclusively
            try:
                final = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                return False
            with os.fdopen(final, "w", encoding="utf-8") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
        return True
    finally:
        tmp.unlink(missing_ok=True)


class KeyringFile:
    """A :class:`KeyProvider` over a keyring file, re-read when the file changes.

    A long-running service notices within a second that ``medagent store keys add`` made a new
    KEK current, and at once when it meets a data key wrapped under a KEK it does not hold yet.
    """

    RELOAD_SECONDS = 1.0

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._provider, self._stamp = self._read()
        self._checked = time.monotonic()

    def _read(self) -> tuple[LocalKeyProvider, tuple[int, int, int]]:
        try:
            st = self.path.stat()
        except OSError as exc:
            raise AtRestError(f"keyring {self.path}: {exc.strerror}") from exc
        try:
            provider = LocalKeyProvider.from_file(self.path)
        except AtRestError as exc:
            raise AtRestError(f"keyring {self.path}: {exc}") from exc
        return provider, (st.st_mtime_ns, st.st_size, st.st_ino)

    def _fresh(self, *, force: bool = False) -> LocalKeyProvider:
        now = time.monotonic()
        if not force and now - self._checked < self.RELOAD_SECONDS:
            return self._provider
        with self._lock:
            self._checked = now
            try:
                st = self.path.stat()
            except OSError:
                return self._provider  # keep the keys we have; a write will fail loudly later
            if (st.st_mtime_ns, st.st_size, st.st_ino) != self._stamp:
                self._provider, self._stamp = self._read()
            return self._provider

    def current_key_id(self) -> str:
        """The id of the current KEK (the first entry of the file)."""
        return self._fresh().current_key_id()

    def key_ids(self) -> list[str]:
        """The ids of the KEKs in the file, current first."""
        return self._fresh(force=True).key_ids()

    def wrap(self, key_id: str, data_key: bytes, context: bytes) -> bytes:
        """Wrap under KEK ``key_id`` (see :meth:`LocalKeyProvider.wrap`)."""
        return self._fresh().wrap(key_id, data_key, context)

    def unwrap(self, key_id: str, wrapped: bytes, context: bytes) -> bytes:
        """Unwrap; a KEK not held yet makes the file be re-read once before giving up."""
        provider = self._fresh()
        if not provider.has_key(key_id):
            provider = self._fresh(force=True)
        return provider.unwrap(key_id, wrapped, context)

    def add_key(self, key_id: str | None = None, *, make_current: bool = True) -> str:
        """Add a fresh random KEK to the file (current by default) and return its id."""
        with self._lock:
            provider, _ = self._read()
            new_id = key_id or new_key_id()
            provider.add_key(new_id, make_current=make_current)
            _write_private(self.path, provider.to_text(), exclusive=False)
            self._provider, self._stamp = self._read()
        return new_id

    def retire_key(self, key_id: str) -> None:
        """Remove an old KEK from the file (after nothing is wrapped under it any more)."""
        with self._lock:
            provider, _ = self._read()
            if key_id not in provider.key_ids():
                raise MissingKeyError(f"KEK {key_id!r} is not in {self.path}")
            provider.retire_key(key_id)
            _write_private(self.path, provider.to_text(), exclusive=False)
            self._provider, self._stamp = self._read()


def create_keyring(path: Path) -> str:
    """Create a keyring file (mode 0600) with one random KEK; refuses an existing file."""
    kek = new_key_id()
    if not _write_private(path, LocalKeyProvider.generate(kek).to_text(), exclusive=True):
        raise AtRestError(f"keyring {path} already exists")
    return kek


def default_keyring_path() -> Path:
    """Where the keyring is created when nothing else is configured (user config dir)."""
    from platformdirs import user_config_dir

    return Path(user_config_dir("medagent", appauthor=False)) / "keyring"


@dataclass(frozen=True, slots=True)
class KeySource:
    """The keyring in use and where it came from (``$MEDAGENT_KEK`` or a file path)."""

    provider: KeyProvider
    origin: str
    file: KeyringFile | None = None


_SOURCES: dict[tuple[str | None, str | None], KeySource] = {}
_SOURCES_LOCK = threading.Lock()


def configured_keys(environ: Mapping[str, str] | None = None) -> KeySource:
    """The keyring to use: ``$MEDAGENT_KEK`` > ``$MEDAGENT_KEK_FILE`` > the default keyring file.

    The default file (:func:`default_keyring_path`) is created on first use with one random KEK
    and mode 0600, and a one-line warning says where it is and that it must be backed up. The
    answer is cached per configuration, so every store of a process shares one keyring.
    """
    env = os.environ if environ is None else environ
    text, file_name = env.get(ENV_VAR) or None, env.get(ENV_FILE_VAR) or None
    cache_key = (text, None if text else file_name)
    with _SOURCES_LOCK:
        cached = _SOURCES.get(cache_key)
        if cached is not None:
            return cached
        if text:
            source = KeySource(LocalKeyProvider.from_text(text), ENV_VAR)
        else:
            if file_name:
                path = Path(file_name).expanduser()
            else:
                path = default_keyring_path()
                if not path.exists():
                    first = LocalKeyProvider.generate(new_key_id())
                    if _write_private(path, first.to_text(), exclusive=True):  # else: a race lost
                        log.warning(
                            "medagent: created the key-encryption keyring %s; back it up "
                            "(without it the encrypted patient data cannot be read)",
                            path,
                        )
            keyring = KeyringFile(path)
            source = KeySource(keyring, str(path), keyring)
        _SOURCES[cache_key] = source
        return source


def default_key_provider() -> KeyProvider:
    """The provider of :func:`configured_keys` for the current environment."""
    return configured_keys().provider


def forget_configured_keys() -> None:
    """Drop the cached keyrings (after the environment changed, e.g. in tests)."""
    with _SOURCES_LOCK:
        _SOURCES.clear()


# ---- encrypted columns of SQL tables ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RowKey:
    """The data key of one row, and how it is stored (KEK id and wrapped form)."""

    kek_id: str
    wrapped: bytes
    data_key: bytes = field(repr=False)


def new_row_key(provider: KeyProvider, context: bytes) -> RowKey:
    """A fresh data key for the row ``context``, wrapped under the current KEK."""
    data_key = AESGCM.generate_key(bit_length=256)
    kek_id = provider.current_key_id()
    return RowKey(kek_id, provider.wrap(kek_id, data_key, context), data_key)


def _row_name(context: bytes) -> str:
    """A row context as people read it: ``table/key/key``."""
    return context.decode(errors="replace").replace("\x00", "/")


def open_row_key(provider: KeyProvider, kek_id: str, wrapped: bytes, context: bytes) -> bytes:
    """Unwrap a row's data key; the error names the row and what to do about a missing KEK."""
    try:
        return provider.unwrap(kek_id, bytes(wrapped), context)
    except MissingKeyError as exc:
        raise MissingKeyError(
            f"{_row_name(context)} is encrypted under KEK {kek_id!r}, which the keyring does "
            f"not hold: restore the keyring (or set {ENV_VAR} / {ENV_FILE_VAR}) that has it"
        ) from exc
    except AtRestError as exc:
        raise AtRestError(
            f"{_row_name(context)}: {exc} (wrong keyring, or the row was moved)"
        ) from exc


def seal_text(data_key: bytes, context: bytes, column: str, text: str) -> str:
    """Encrypt one column value: ``ma1:`` + base64(nonce || ciphertext+tag)."""
    nonce = os.urandom(NONCE_BYTES)
    aad = _FIELD_LABEL + context + b"\x00" + column.encode()
    sealed = AESGCM(data_key).encrypt(nonce, text.encode("utf-8"), aad)
    return TOKEN_PREFIX + base64.b64encode(nonce + sealed).decode("ascii")


def open_text(data_key: bytes, context: bytes, column: str, token: str) -> str:
    """Decrypt a value made by :func:`seal_text` for the same row and column."""
    if not token.startswith(TOKEN_PREFIX):
        raise AtRestError(f"{_row_name(context)}: column {column} is not an encrypted value")
    try:
        # No base64 validation pass (it costs more than the decryption): a damaged token fails
        # the GCM tag check below anyway.
        raw = binascii.a2b_base64(token[len(TOKEN_PREFIX) :])
        aad = _FIELD_LABEL + context + b"\x00" + column.encode()
        return AESGCM(data_key).decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], aad).decode("utf-8")
    except (binascii.Error, ValueError, InvalidTag) as exc:
        raise AtRestError(f"{_row_name(context)}: column {column} is corrupt or was moved") from exc


ProgressCallback = Callable[[int], None]


@dataclass(frozen=True, slots=True)
class SealedColumns:
    """Which text columns of a table are encrypted, per row, under a data key kept in the row.

    The table needs the nullable columns ``kek_id`` (indexed) and ``wrapped_key``; a row whose
    ``kek_id`` is NULL is a plaintext row (written before encryption, or with it off). The
    context every ciphertext is bound to is the table name and the primary key, so a value or a
    whole key moved to another row, table or column does not decrypt.
    """

    table: sa.Table
    keys: tuple[str, ...]
    columns: tuple[str, ...]
    version: str | None = None  # a column every rewrite of the row changes (guards `encrypt`)
    # (sealed column, clear column) pairs: a non-text value kept encrypted as text in the sealed
    # column, its clear column NULL in encrypted rows; `encrypt_rows` moves it across.
    moved: tuple[tuple[str, str], ...] = ()

    def context(self, key_values: Sequence[object]) -> bytes:
        """The associated data of a row: table name and primary key values."""
        return "\x00".join([self.table.name, *(str(v) for v in key_values)]).encode()

    def seal(
        self, provider: KeyProvider, key_values: Sequence[object], values: Mapping[str, str | None]
    ) -> dict[str, Any]:
        """Column values to store for one row: sealed columns, ``kek_id`` and ``wrapped_key``."""
        context = self.context(key_values)
        row_key = new_row_key(provider, context)
        out: dict[str, Any] = {"kek_id": row_key.kek_id, "wrapped_key": row_key.wrapped}
        for column in self.columns:
            value = values.get(column)
            out[column] = (
                None if value is None else seal_text(row_key.data_key, context, column, value)
            )
        return out

    def open(self, provider: KeyProvider, row: Any) -> dict[str, str | None]:
        """The plaintext of the sealed columns of a row (plaintext rows pass through)."""
        mapping = row._mapping
        if mapping["kek_id"] is None:
            return {c: mapping[c] for c in self.columns}
        context = self.context([mapping[k] for k in self.keys])
        data_key = open_row_key(provider, mapping["kek_id"], mapping["wrapped_key"], context)
        return {
            c: None if mapping[c] is None else open_text(data_key, context, c, mapping[c])
            for c in self.columns
        }

    def open_row(self, keys: Callable[[], KeyProvider], row: Any) -> dict[str, str | None]:
        """Like :meth:`open`, but the keyring is asked for only when the row is encrypted, so
        reading a database of plaintext rows never loads (or creates) one."""
        if row._mapping["kek_id"] is None:
            return {c: row._mapping[c] for c in self.columns}
        return self.open(keys(), row)

    def status(self, engine: Engine) -> dict[str | None, int]:
        """Rows per KEK id (None: plaintext rows)."""
        col = self.table.c.kek_id
        with engine.connect() as conn:
            rows = conn.execute(sa.select(col, sa.func.count()).group_by(col)).all()
        return {kek: int(n) for kek, n in rows}

    def _page(self, where: Sequence[Any], last: tuple[Any, ...] | None, size: int) -> Any:
        key_cols = [self.table.c[k] for k in self.keys]
        extra = [self.table.c[c] for c in self.columns] + (
            [self.table.c[self.version]] if self.version else []
        )
        extra += [self.table.c[clear] for _, clear in self.moved]
        stmt = sa.select(*key_cols, self.table.c.kek_id, self.table.c.wrapped_key, *extra)
        clauses = list(where)
        if last is not None:
            clauses.append(
                key_cols[0] > last[0] if len(key_cols) == 1 else sa.tuple_(*key_cols) > last
            )
        return stmt.where(*clauses).order_by(*key_cols).limit(size)

    def _key_match(self, row: Any) -> list[Any]:
        return [self.table.c[k] == row._mapping[k] for k in self.keys]

    def encrypt_rows(
        self,
        engine: Engine,
        provider: KeyProvider,
        *,
        batch_size: int = 500,
        limit: int | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> int:
        """Encrypt plaintext rows in place, one transaction per batch; returns how many.

        A row is replaced only if it is still the plaintext that was read (and, with a version
        column, the same version), so concurrent writers win; it can stop and resume anywhere.
        """
        return self._walk(
            engine,
            provider,
            where=lambda: [self.table.c.kek_id.is_(None)],
            change=self._encrypted_values,
            guard=self._plain_guard,
            batch_size=batch_size,
            limit=limit,
            on_progress=on_progress,
        )

    def rewrap_rows(
        self,
        engine: Engine,
        provider: KeyProvider,
        *,
        batch_size: int = 500,
        limit: int | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> int:
        """Re-wrap every row's data key that is not under the current KEK; returns how many.

        Only ``kek_id`` and ``wrapped_key`` change (the ciphertexts are not touched); a row is
        updated only if it still holds the wrapped key that was read, so writes during the
        rotation win, and a rotation stopped at any point is resumed by running it again.
        """
        return self._walk(
            engine,
            provider,
            where=lambda: [
                self.table.c.kek_id.is_not(None),
                self.table.c.kek_id != provider.current_key_id(),
            ],
            change=self._rewrapped_values,
            guard=lambda row: [self.table.c.wrapped_key == row._mapping["wrapped_key"]],
            batch_size=batch_size,
            limit=limit,
            on_progress=on_progress,
        )

    def _encrypted_values(self, provider: KeyProvider, row: Any) -> dict[str, Any]:
        mapping = row._mapping
        plain: dict[str, str | None] = {c: mapping[c] for c in self.columns}
        for sealed, clear in self.moved:
            plain[sealed] = None if mapping[clear] is None else json.dumps(mapping[clear])
        values = self.seal(provider, [mapping[k] for k in self.keys], plain)
        values.update({clear: None for _, clear in self.moved})
        return values

    def _plain_guard(self, row: Any) -> list[Any]:
        guard = [self.table.c.kek_id.is_(None)]
        if self.version:
            guard.append(self.table.c[self.version] == row._mapping[self.version])
        return guard

    def _rewrapped_values(self, provider: KeyProvider, row: Any) -> dict[str, Any]:
        mapping = row._mapping
        context = self.context([mapping[k] for k in self.keys])
        data_key = open_row_key(provider, mapping["kek_id"], mapping["wrapped_key"], context)
        current = provider.current_key_id()
        return {"kek_id": current, "wrapped_key": provider.wrap(current, data_key, context)}

    def _walk(
        self,
        engine: Engine,
        provider: KeyProvider,
        *,
        where: Callable[[], list[Any]],
        change: Callable[[KeyProvider, Any], dict[str, Any]],
        guard: Callable[[Any], list[Any]],
        batch_size: int,
        limit: int | None,
        on_progress: ProgressCallback | None,
    ) -> int:
        # One pass in primary-key order: each batch is read, transformed outside any transaction
        # (so SQLite readers and writers are not blocked by the crypto), then written in one
        # short transaction with a guard per row.
        done = seen = 0
        last: tuple[Any, ...] | None = None
        while limit is None or seen < limit:
            size = batch_size if limit is None else min(batch_size, limit - seen)
            with engine.connect() as conn:
                rows = conn.execute(self._page(where(), last, size)).all()
            if not rows:
                break
            updates = [(row, change(provider, row)) for row in rows]
            with engine.begin() as conn:
                for row, values in updates:
                    stmt = (
                        sa.update(self.table)
                        .where(*self._key_match(row), *guard(row))
                        .values(**values)
                    )
                    done += conn.execute(stmt).rowcount or 0
            seen += len(rows)
            last = tuple(row._mapping[k] for k in self.keys)
            if on_progress is not None:
                on_progress(len(rows))
        return done

    def pending(self, engine: Engine, provider: KeyProvider) -> tuple[int, int]:
        """(plaintext rows, rows under another KEK than the current one)."""
        col = self.table.c.kek_id
        current = provider.current_key_id()
        with engine.connect() as conn:
            plain = conn.execute(sa.select(sa.func.count()).where(col.is_(None))).scalar_one()
            other = conn.execute(
                sa.select(sa.func.count()).where(col.is_not(None), col != current)
            ).scalar_one()
        return int(plain), int(other)
