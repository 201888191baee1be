"""Append-only, hash-chained audit log in SQLite with ML-DSA-65 signed checkpoints.

Each entry's hash is SHA-256 over the previous entry's hash and the canonical JSON of the entry
(including its sequence number), so editing, deleting, inserting or reordering any entry breaks
the chain at that entry. SQLite triggers refuse UPDATE and DELETE so honest code cannot rewrite
history by accident; someone with write access to the file can drop the triggers, which is what
the chain and the signed checkpoints are for: a checkpoint signs (sequence number, head hash), so
rewriting the log also needs the checkpoint signing key. Entries appended after the last
checkpoint can be removed without trace unless a checkpoint (or its head hash) is kept elsewhere;
checkpoint often and export checkpoints off the machine.

Appends reuse one SQLite connection per thread (and per process: a connection inherited over
``fork`` is never used), because opening a connection per entry dominated the cost of an entry.
Every append still takes the write lock (``BEGIN IMMEDIATE``) and reads the head of the chain
inside that transaction, so writers in several threads and processes keep one chain.

Entries carry an optional ``detail`` (which resources, how many, which scale …). It is hashed
only when non-empty, so logs written before the column existed verify unchanged.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import mldsa

from medagent.errors import Problem
from medagent.secure.errors import AuditError

GENESIS = bytes(32)
CHECKPOINT_CONTEXT = b"medagent-audit-checkpoint-v1"
ENV_AUDIT = "MEDAGENT_AUDIT"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS audit_entries (
    seq INTEGER PRIMARY KEY,
    ts TEXT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    resource TEXT NOT NULL,
    source TEXT NOT NULL,
    reason TEXT NOT NULL,
    outcome TEXT NOT NULL,
    prev_hash BLOB NOT NULL,
    hash BLOB NOT NULL,
    detail TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS audit_checkpoints (
    seq INTEGER PRIMARY KEY,
    head_hash BLOB NOT NULL,
    ts TEXT NOT NULL,
    signer TEXT NOT NULL,
    signature BLOB NOT NULL
);
CREATE TRIGGER IF NOT EXISTS audit_entries_no_update BEFORE UPDATE ON audit_entries
BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_entries_no_delete BEFORE DELETE ON audit_entries
BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_checkpoints_no_update BEFORE UPDATE ON audit_checkpoints
BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_checkpoints_no_delete BEFORE DELETE ON audit_checkpoints
BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
"""
# Created after the `detail` column exists (it is added to logs made before it was).
_INDEXES = """
CREATE INDEX IF NOT EXISTS audit_entries_resource ON audit_entries (resource);
CREATE INDEX IF NOT EXISTS audit_entries_actor ON audit_entries (actor);
CREATE INDEX IF NOT EXISTS audit_entries_ts ON audit_entries (ts);
"""
_COLUMNS = "seq, ts, actor, action, resource, source, reason, outcome, detail"


def default_audit_path() -> Path:
    """The audit log of this user: env `MEDAGENT_AUDIT`, else beside the default record store."""
    env = os.environ.get(ENV_AUDIT)
    if env:
        return Path(env).expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir("medagent", appauthor=False)) / "medagent-audit.db"


@dataclass(frozen=True, slots=True)
class Draft:
    """An entry to append: everything but the sequence number and time, which the log assigns."""

    actor: str
    action: str
    resource: str
    source: str
    reason: str
    outcome: str = "success"
    detail: str = ""


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One audit record: who did what to which resource, when, from where, why, with what result."""

    seq: int
    ts: str
    actor: str
    action: str
    resource: str
    source: str
    reason: str
    outcome: str
    detail: str = ""

    def canonical(self) -> bytes:
        """The canonical bytes hashed into the chain (``detail`` only when it is not empty)."""
        fields: dict[str, object] = {
            "seq": self.seq,
            "ts": self.ts,
            "actor": self.actor,
            "action": self.action,
            "resource": self.resource,
            "source": self.source,
            "reason": self.reason,
            "outcome": self.outcome,
        }
        if self.detail:
            fields["detail"] = self.detail
        return json.dumps(
            fields,
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=False,
        ).encode()

    def to_dict(self) -> dict[str, object]:
        """The entry as JSON-ready data."""
        return {
            "seq": self.seq,
            "ts": self.ts,
            "actor": self.actor,
            "action": self.action,
            "resource": self.resource,
            "detail": self.detail,
            "source": self.source,
            "reason": self.reason,
            "outcome": self.outcome,
        }


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A signed statement that the chain had ``head_hash`` after entry ``seq``."""

    seq: int
    head_hash: bytes
    ts: str
    signer: str
    signature: bytes

    def signed_bytes(self) -> bytes:
        """What the ML-DSA-65 signature covers."""
        return json.dumps(
            {"seq": self.seq, "head": self.head_hash.hex(), "ts": self.ts, "signer": self.signer},
            sort_keys=True,
            separators=(",", ":"),
        ).encode()


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """The result of verifying the log: every problem, each located by entry or checkpoint."""

    entries: int
    checkpoints: int
    problems: tuple[Problem, ...]

    @property
    def ok(self) -> bool:
        """True when no problem was found."""
        return not self.problems

    @property
    def first_bad_seq(self) -> int | None:
        """Sequence number of the first entry found bad, if any."""
        seqs = [int(p.path.split("[")[1].rstrip("]")) for p in self.problems if "[" in p.path]
        return min(seqs) if seqs else None


def chain_hash(prev_hash: bytes, entry: AuditEntry) -> bytes:
    """The hash of ``entry`` chained after ``prev_hash``."""
    return hashlib.sha256(prev_hash + entry.canonical()).digest()


def _iso(value: datetime) -> str:
    """A time as the log stores it (UTC ISO 8601; a naive time is taken as UTC)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def signer_id(public_key: mldsa.MLDSA65PublicKey) -> str:
    """Key id of a checkpoint signing key (first 16 bytes of SHA-256 of the raw key, hex)."""
    return hashlib.sha256(public_key.public_bytes_raw()).digest()[:16].hex()


class AuditLog:
    """The audit log of one site, in one SQLite file."""

    def __init__(self, path: Path | str) -> None:
        self._path = str(path)
        self._local = threading.local()
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        db = self._connect()
        try:
            db.executescript(_SCHEMA)
            self._add_detail_column(db)
            db.executescript(_INDEXES)
        finally:
            db.close()

    @property
    def path(self) -> Path:
        """The SQLite file of the log."""
        return Path(self._path)

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self._path, timeout=30, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        return db

    @staticmethod
    def _add_detail_column(db: sqlite3.Connection) -> None:
        """Logs made before entries had a detail get the column (old entries keep '')."""
        columns = {row[1] for row in db.execute("PRAGMA table_info(audit_entries)")}
        if "detail" in columns:
            return
        db.execute("BEGIN IMMEDIATE")
        try:
            columns = {row[1] for row in db.execute("PRAGMA table_info(audit_entries)")}
            if "detail" not in columns:  # another process may have added it meanwhile
                db.execute("ALTER TABLE audit_entries ADD COLUMN detail TEXT NOT NULL DEFAULT ''")
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise

    def _writer(self) -> sqlite3.Connection:
        """This thread's connection for appending (reopened in a forked child)."""
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None or getattr(self._local, "pid", None) != os.getpid():
            db = self._connect()
            self._local.db, self._local.pid = db, os.getpid()
        return db

    def close(self) -> None:
        """Close this thread's append connection (others close when their thread ends)."""
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is not None and getattr(self._local, "pid", None) == os.getpid():
            db.close()
        self._local.db = None

    def append(
        self,
        *,
        actor: str,
        action: str,
        resource: str,
        source: str,
        reason: str,
        outcome: str = "success",
        detail: str = "",
        when: datetime | None = None,
    ) -> AuditEntry:
        """Append one entry atomically (BEGIN IMMEDIATE serialises concurrent writers)."""
        draft = Draft(actor, action, resource, source, reason, outcome, detail)
        return self.append_many([draft], when=when)[0]

    def append_many(
        self, drafts: Sequence[Draft], *, when: datetime | None = None
    ) -> list[AuditEntry]:
        """Append several entries in one transaction (one commit, consecutive numbers)."""
        for draft in drafts:
            for name, value in (("actor", draft.actor), ("action", draft.action)):
                if not value:
                    raise AuditError(f"audit entry needs a non-empty {name}")
        if not drafts:
            return []
        db = self._writer()
        entries: list[AuditEntry] = []
        try:
            db.execute("BEGIN IMMEDIATE")
            # the time is taken under the write lock, so times never go back along the chain
            ts = (when or datetime.now(UTC)).astimezone(UTC).isoformat(timespec="microseconds")
            row = db.execute(
                "SELECT seq, hash FROM audit_entries ORDER BY seq DESC LIMIT 1"
            ).fetchone()
            seq, prev = (row[0] + 1, bytes(row[1])) if row else (1, GENESIS)
            rows = []
            for draft in drafts:
                entry = AuditEntry(
                    seq=seq,
                    ts=ts,
                    actor=draft.actor,
                    action=draft.action,
                    resource=draft.resource,
                    source=draft.source,
                    reason=draft.reason,
                    outcome=draft.outcome,
                    detail=draft.detail,
                )
                digest = chain_hash(prev, entry)
                rows.append(
                    (
                        entry.seq,
                        entry.ts,
                        entry.actor,
                        entry.action,
                        entry.resource,
                        entry.source,
                        entry.reason,
                        entry.outcome,
                        prev,
                        digest,
                        entry.detail,
                    )
                )
                entries.append(entry)
                seq, prev = seq + 1, digest
            db.executemany(
                "INSERT INTO audit_entries (seq, ts, actor, action, resource, source, reason,"
                " outcome, prev_hash, hash, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
            db.execute("COMMIT")
        except BaseException:
            try:
                if db.in_transaction:
                    db.execute("ROLLBACK")
            finally:
                self.close()  # a connection in an unknown state is not reused
            raise
        return entries

    def entries(self) -> Iterator[AuditEntry]:
        """Every entry in sequence order."""
        db = self._connect()
        try:
            for row in db.execute(f"SELECT {_COLUMNS} FROM audit_entries ORDER BY seq"):
                yield AuditEntry(*row)
        finally:
            db.close()

    def search(
        self,
        *,
        patient: str | None = None,
        actor: str | None = None,
        action: str | None = None,
        resource: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int | None = None,
    ) -> list[AuditEntry]:
        """Entries matching every filter given, oldest first (the newest ``limit`` of them).

        ``patient`` matches entries about that patient's record: resource ``Patient/ID`` (data
        reads and writes, scores, overrides, links) and the access decisions, whose resource is
        ``Type/ID`` with the patient id after the slash.
        """
        where: list[str] = []
        params: list[object] = []
        if patient is not None:
            escaped = patient.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            where.append("(resource = ? OR resource LIKE ? ESCAPE '\\')")
            params += [f"Patient/{patient}", f"%/{escaped}"]
        for column, value in (("actor", actor), ("action", action), ("resource", resource)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        if since is not None:
            where.append("ts >= ?")
            params.append(_iso(since))
        if until is not None:
            where.append("ts <= ?")
            params.append(_iso(until))
        sql = f"SELECT {_COLUMNS} FROM audit_entries"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY seq DESC"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        db = self._connect()
        try:
            rows = db.execute(sql, params).fetchall()
        finally:
            db.close()
        return [AuditEntry(*row) for row in reversed(rows)]

    def checkpoint(self, key: mldsa.MLDSA65PrivateKey, when: datetime | None = None) -> Checkpoint:
        """Sign the current head of the chain; returns the stored checkpoint."""
        ts = (when or datetime.now(UTC)).astimezone(UTC).isoformat(timespec="microseconds")
        db = self._connect()
        try:
            db.execute("BEGIN IMMEDIATE")
            row = db.execute(
                "SELECT seq, hash FROM audit_entries ORDER BY seq DESC LIMIT 1"
            ).fetchone()
            if row is None:
                db.execute("ROLLBACK")
                raise AuditError("cannot checkpoint an empty audit log")
            unsigned = Checkpoint(
                seq=row[0],
                head_hash=bytes(row[1]),
                ts=ts,
                signer=signer_id(key.public_key()),
                signature=b"",
            )
            signature = key.sign(unsigned.signed_bytes(), CHECKPOINT_CONTEXT)
            cp = Checkpoint(
                seq=unsigned.seq,
                head_hash=unsigned.head_hash,
                ts=ts,
                signer=unsigned.signer,
                signature=signature,
            )
            db.execute(
                "INSERT OR IGNORE INTO audit_checkpoints VALUES (?, ?, ?, ?, ?)",
                (cp.seq, cp.head_hash, cp.ts, cp.signer, cp.signature),
            )
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        finally:
            db.close()
        return cp

    def verify(self, public_key: mldsa.MLDSA65PublicKey) -> VerifyReport:
        """Recompute the chain and check every checkpoint; report every problem and where."""
        problems: list[Problem] = []
        heads: dict[int, bytes] = {}
        db = self._connect()
        try:
            rows = db.execute(
                f"SELECT {_COLUMNS}, prev_hash, hash FROM audit_entries ORDER BY seq"
            ).fetchall()
            cps = db.execute(
                "SELECT seq, head_hash, ts, signer, signature FROM audit_checkpoints ORDER BY seq"
            ).fetchall()
        finally:
            db.close()
        expected_prev = GENESIS
        expected_seq = 1
        for row in rows:
            entry = AuditEntry(*row[:9])
            prev_hash, stored_hash = bytes(row[9]), bytes(row[10])
            where = f"entry[{entry.seq}]"
            if entry.seq != expected_seq:
                missing = (
                    f"{expected_seq}"
                    if entry.seq == expected_seq + 1
                    else (f"{expected_seq}..{entry.seq - 1}")
                )
                problems.append(Problem(where, f"entries {missing} are missing (deleted)"))
            if prev_hash != expected_prev:
                problems.append(
                    Problem(where, "chain broken: previous-hash does not match the entry before")
                )
            actual = chain_hash(prev_hash, entry)
            if actual != stored_hash:
                problems.append(Problem(where, "entry content does not match its hash (edited)"))
            heads[entry.seq] = stored_hash
            expected_prev = stored_hash
            expected_seq = entry.seq + 1
        last_seq = expected_seq - 1
        signer = signer_id(public_key)
        for seq, head, ts, cp_signer, signature in cps:
            cp = Checkpoint(
                seq=seq, head_hash=bytes(head), ts=ts, signer=cp_signer, signature=bytes(signature)
            )
            where = f"checkpoint[{cp.seq}]"
            if cp.signer != signer:
                problems.append(Problem(where, f"signed by key {cp.signer}, expected {signer}"))
                continue
            try:
                public_key.verify(cp.signature, cp.signed_bytes(), CHECKPOINT_CONTEXT)
            except InvalidSignature:
                problems.append(Problem(where, "checkpoint signature does not verify"))
                continue
            if cp.seq > last_seq:
                problems.append(
                    Problem(
                        f"entry[{last_seq + 1}]",
                        f"entries {last_seq + 1}..{cp.seq} signed at checkpoint {cp.seq} "
                        "are missing (log truncated)",
                    )
                )
            elif heads.get(cp.seq) != cp.head_hash:
                problems.append(
                    Problem(
                        f"entry[{cp.seq}]",
                        f"chain head differs from the one signed at checkpoint {cp.seq}",
                    )
                )
        return VerifyReport(entries=len(rows), checkpoints=len(cps), problems=tuple(problems))
