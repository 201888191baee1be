"""Append-only, hash-chained audit log in SQLite with ML-DSA-65 signed checkpoints.

Each entry's hash is SHA-256 over the previous entry's hash and the canonical JSON of the entry
(including its sequence number), so editing, deleting, inserting or reordering any entry breaks
the chain at that entry. SQLite triggers refuse UPDATE and DELETE so honest code cannot rewrite
history by accident; someone with write access to the file can drop the triggers, which is what
the chain and the signed checkpoints are for: a checkpoint signs (sequence number, head hash), so
rewriting the log also needs the checkpoint signing key. Entries appended after the last
checkpoint can be removed without trace unless a checkpoint (or its head hash) is kept elsewhere;
checkpoint often and export checkpoints off the machine.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import mldsa

from medagent.errors import Problem
from medagent.secure.errors import AuditError

GENESIS = bytes(32)
CHECKPOINT_CONTEXT = b"medagent-audit-checkpoint-v1"

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
    hash BLOB NOT NULL
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

    def canonical(self) -> bytes:
        """The canonical bytes hashed into the chain."""
        return json.dumps(
            {
                "seq": self.seq,
                "ts": self.ts,
                "actor": self.actor,
                "action": self.action,
                "resource": self.resource,
                "source": self.source,
                "reason": self.reason,
                "outcome": self.outcome,
            },
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=False,
        ).encode()


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


def signer_id(public_key: mldsa.MLDSA65PublicKey) -> str:
    """Key id of a checkpoint signing key (first 16 bytes of SHA-256 of the raw key, hex)."""
    return hashlib.sha256(public_key.public_bytes_raw()).digest()[:16].hex()


class AuditLog:
    """The audit log of one site, in one SQLite file."""

    def __init__(self, path: Path | str) -> None:
        self._path = str(path)
        with self._connect() as db:
            db.executescript(_SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self._path, timeout=30, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        return db

    def append(
        self,
        *,
        actor: str,
        action: str,
        resource: str,
        source: str,
        reason: str,
        outcome: str = "success",
        when: datetime | None = None,
    ) -> AuditEntry:
        """Append one entry atomically (BEGIN IMMEDIATE serialises concurrent writers)."""
        for name, value in (("actor", actor), ("action", action)):
            if not value:
                raise AuditError(f"audit entry needs a non-empty {name}")
        ts = (when or datetime.now(UTC)).astimezone(UTC).isoformat(timespec="microseconds")
        db = self._connect()
        try:
            db.execute("BEGIN IMMEDIATE")
            row = db.execute(
                "SELECT seq, hash FROM audit_entries ORDER BY seq DESC LIMIT 1"
            ).fetchone()
            seq, prev = (row[0] + 1, bytes(row[1])) if row else (1, GENESIS)
            entry = AuditEntry(
                seq=seq,
                ts=ts,
                actor=actor,
                action=action,
                resource=resource,
                source=source,
                reason=reason,
                outcome=outcome,
            )
            db.execute(
                "INSERT INTO audit_entries VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
                    chain_hash(prev, entry),
                ),
            )
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        finally:
            db.close()
        return entry

    def entries(self) -> Iterator[AuditEntry]:
        """Every entry in sequence order."""
        db = self._connect()
        try:
            for row in db.execute(
                "SELECT seq, ts, actor, action, resource, source, reason, outcome"
                " FROM audit_entries ORDER BY seq"
            ):
                yield AuditEntry(*row)
        finally:
            db.close()

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
                "SELECT seq, ts, actor, action, resource, source, reason, outcome,"
                " prev_hash, hash FROM audit_entries ORDER BY seq"
            ).fetchall()
            cps = db.execute(
                "SELECT seq, head_hash, ts, signer, signature FROM audit_checkpoints ORDER BY seq"
            ).fetchall()
        finally:
            db.close()
        expected_prev = GENESIS
        expected_seq = 1
        for row in rows:
            entry = AuditEntry(*row[:8])
            prev_hash, stored_hash = bytes(row[8]), bytes(row[9])
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
