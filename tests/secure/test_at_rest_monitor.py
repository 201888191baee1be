"""Encryption at rest of the monitor's dead letters (whole refused HL7 / FHIR messages)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from medagent.cli import app
from medagent.monitor import db
from medagent.monitor.core import Monitor
from medagent.record import RecordStore
from medagent.secure.at_rest import ENV_VAR, TOKEN_PREFIX, LocalKeyProvider

HL7 = "MSH|^~\\&|DEV|WARD|||20250101||ORU^R01|1|P|2.5\rPID|||MRN-42||Lovelace^Ada\rOBX|1|NM|oops"


def _monitor(path: Path, keys: LocalKeyProvider, *, encrypt: bool = True) -> Monitor:
    store = RecordStore.open(str(path), keys=keys, encrypt=encrypt)
    return Monitor(store, clock=lambda: datetime(2025, 1, 1, tzinfo=UTC).replace(tzinfo=None))


def test_dead_letters_are_encrypted_and_read_back(tmp_path: Path) -> None:
    keys = LocalKeyProvider.generate("k1")
    monitor = _monitor(tmp_path / "m.db", keys)
    monitor.dead_letter("hl7", "PID-3 MRN-42 has no observation", HL7)
    with monitor.engine.connect() as conn:
        raw = conn.execute(sa.select(db.dead_letters)).one()
    assert raw.payload.startswith(TOKEN_PREFIX) and raw.reason.startswith(TOKEN_PREFIX)
    assert "Lovelace" not in raw.payload and raw.kek_id == "k1"
    (letter,) = monitor.dead_letters()
    assert letter["payload"] == HL7 and letter["reason"] == "PID-3 MRN-42 has no observation"
    assert letter["source"] == "hl7" and "kek_id" not in letter


def test_plaintext_dead_letters_are_encrypted_by_the_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys = LocalKeyProvider.generate("k1")
    plain = _monitor(tmp_path / "m.db", keys, encrypt=False)
    plain.dead_letter("fhir", "not an Observation", '{"resourceType": "Patient"}')
    plain.store.close()
    monkeypatch.setenv(ENV_VAR, keys.to_text())
    done = CliRunner().invoke(app, ["store", "encrypt", "--db", str(tmp_path / "m.db")])
    assert done.exit_code == 0, done.output
    assert "encrypted: 1 row(s) of monitor_dead_letter" in done.stdout
    again = _monitor(tmp_path / "m.db", keys)
    (letter,) = again.dead_letters()
    assert letter["payload"] == '{"resourceType": "Patient"}'
    assert db.DEAD_LETTER_SEALING.status(again.engine) == {"k1": 1}
