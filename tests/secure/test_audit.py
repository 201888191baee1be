"""Tests of the audit log: append-only, and verify() finds edits, deletions and reordering."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import mldsa

from medagent.secure.audit import AuditLog
from medagent.secure.errors import AuditError

KEY = mldsa.MLDSA65PrivateKey.generate()


def _filled(tmp_path: Path, n: int = 10, *, checkpoint_every: int = 0) -> AuditLog:
    log = AuditLog(tmp_path / "audit.sqlite")
    for i in range(1, n + 1):
        log.append(
            actor=f"dr.{i % 3}",
            action="read" if i % 2 else "score",
            resource=f"Patient/{i}",
            source="10.0.0.7",
            reason="treatment",
        )
        if checkpoint_every and i % checkpoint_every == 0:
            log.checkpoint(KEY)
    return log


def _raw(log_path: Path) -> sqlite3.Connection:
    """A writer who bypasses the library: drops the triggers, as an attacker with the file could."""
    db = sqlite3.connect(log_path, isolation_level=None)
    for name in ("entries_no_update", "entries_no_delete", "checkpoints_no_delete"):
        db.execute(f"DROP TRIGGER audit_{name}")
    return db


def test_clean_log_verifies(tmp_path: Path) -> None:
    log = _filled(tmp_path, 25, checkpoint_every=10)
    report = log.verify(KEY.public_key())
    assert report.ok, report.problems
    assert (report.entries, report.checkpoints) == (25, 2)
    assert [e.seq for e in log.entries()] == list(range(1, 26))


def test_update_and_delete_are_refused_by_sqlite(tmp_path: Path) -> None:
    _filled(tmp_path, 3)
    db = sqlite3.connect(tmp_path / "audit.sqlite")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        db.execute("UPDATE audit_entries SET actor='x' WHERE seq=2")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        db.execute("DELETE FROM audit_entries WHERE seq=2")


def test_edited_entry_is_located(tmp_path: Path) -> None:
    log = _filled(tmp_path)
    _raw(tmp_path / "audit.sqlite").execute(
        "UPDATE audit_entries SET reason='curiosity' WHERE seq=4"
    )
    report = log.verify(KEY.public_key())
    assert not report.ok
    assert report.first_bad_seq == 4
    assert any("edited" in p.message for p in report.problems)


def test_deleted_entry_is_located(tmp_path: Path) -> None:
    log = _filled(tmp_path)
    _raw(tmp_path / "audit.sqlite").execute("DELETE FROM audit_entries WHERE seq=6")
    report = log.verify(KEY.public_key())
    assert report.first_bad_seq == 7
    assert any("6 are missing" in p.message for p in report.problems)


def test_reordered_entries_are_located(tmp_path: Path) -> None:
    log = _filled(tmp_path)
    db = _raw(tmp_path / "audit.sqlite")
    db.execute("UPDATE audit_entries SET seq=-3 WHERE seq=3")
    db.execute("UPDATE audit_entries SET seq=3 WHERE seq=5")
    db.execute("UPDATE audit_entries SET seq=5 WHERE seq=-3")
    report = log.verify(KEY.public_key())
    assert report.first_bad_seq == 3
    bad = {p.path for p in report.problems}
    assert {"entry[3]", "entry[5]"} <= bad


def test_rewritten_chain_is_caught_by_checkpoint(tmp_path: Path) -> None:
    """An attacker rewrites an entry and recomputes every later hash: the checkpoint catches it."""
    from medagent.secure.audit import GENESIS, AuditEntry, chain_hash

    log = _filled(tmp_path, 10, checkpoint_every=5)
    db = _raw(tmp_path / "audit.sqlite")
    db.execute("UPDATE audit_entries SET actor='nobody' WHERE seq=2")
    prev = GENESIS
    rows = db.execute(
        "SELECT seq, ts, actor, action, resource, source, reason, outcome FROM audit_entries"
        " ORDER BY seq"
    ).fetchall()
    for row in rows:
        h = chain_hash(prev, AuditEntry(*row))
        db.execute("UPDATE audit_entries SET prev_hash=?, hash=? WHERE seq=?", (prev, h, row[0]))
        prev = h
    report = log.verify(KEY.public_key())
    assert not report.ok
    assert {p.path for p in report.problems} == {"entry[5]", "entry[10]"}
    assert all("signed at checkpoint" in p.message for p in report.problems)


def test_truncated_tail_is_caught_by_checkpoint(tmp_path: Path) -> None:
    log = _filled(tmp_path, 10, checkpoint_every=10)
    _raw(tmp_path / "audit.sqlite").execute("DELETE FROM audit_entries WHERE seq > 7")
    report = log.verify(KEY.public_key())
    assert report.first_bad_seq == 8
    assert "truncated" in report.problems[0].message


def test_forged_checkpoint_is_refused(tmp_path: Path) -> None:
    log = _filled(tmp_path, 4)
    log.checkpoint(mldsa.MLDSA65PrivateKey.generate())
    report = log.verify(KEY.public_key())
    assert report.problems[0].path == "checkpoint[4]"
    assert "expected" in report.problems[0].message


def test_empty_log_cannot_be_checkpointed(tmp_path: Path) -> None:
    with pytest.raises(AuditError, match="empty"):
        AuditLog(tmp_path / "a.sqlite").checkpoint(KEY)
    with pytest.raises(AuditError, match="actor"):
        AuditLog(tmp_path / "a.sqlite").append(
            actor="", action="read", resource="r", source="s", reason="x"
        )


def test_concurrent_writers_keep_one_chain(tmp_path: Path) -> None:
    path = tmp_path / "audit.sqlite"
    AuditLog(path)

    def work(who: str) -> None:
        log = AuditLog(path)
        for i in range(25):
            log.append(actor=who, action="read", resource=f"Patient/{i}", source="t", reason="x")

    threads = [threading.Thread(target=work, args=(f"u{n}",)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    report = AuditLog(path).verify(KEY.public_key())
    assert report.ok and report.entries == 100
