"""Encryption at rest of clinicians' stored overrides: stored format, values read back intact,
legacy plaintext rows, `store encrypt` / `store rewrap`, and moved ciphertexts refused
(SQLite and a throwaway PostgreSQL server)."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from medagent.cli import app
from medagent.populate import save_override, stored_overrides
from medagent.populate.overrides import OVERRIDE_SEALING, overrides_table
from medagent.record.pgtemp import TempPostgres
from medagent.record.store import RecordStore
from medagent.secure.at_rest import ENV_VAR, TOKEN_PREFIX, LocalKeyProvider
from medagent.secure.errors import AtRestError

AT = datetime(2026, 3, 2, 9, 0)
# (input, value as entered): a quantity with its unit, a boolean, a code
ENTRIES = [
    ("temperature", "38.4 Cel"),
    ("supplemental_oxygen", "true"),
    ("consciousness", "new_confusion"),
]
runner = CliRunner()


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh database, once a SQLite file and once on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'record.db'}"
    server: TempPostgres = request.getfixturevalue("postgres_server")
    return server.create_database(f"o_{uuid.uuid4().hex[:12]}")


def _save(store: RecordStore, patient: str = "p1") -> None:
    for i, (input_id, value) in enumerate(ENTRIES):
        save_override(
            store,
            scale_id="news2",
            patient_id=patient,
            input_id=input_id,
            value=value,
            user="dr.chen",
            at=AT + timedelta(minutes=i),
        )


def _read(url: str, keys: LocalKeyProvider, patient: str = "p1") -> list[tuple[str, str, str]]:
    with RecordStore.open(url, keys=keys) as store:
        found = stored_overrides(store, scale_id="news2", patient_id=patient)
    return [(o.input_id, o.value, o.user) for o in found]


def _raw(store: RecordStore) -> list[sa.Row[tuple[object, ...]]]:
    with store.engine.connect() as conn:
        return list(conn.execute(sa.select(overrides_table).order_by(overrides_table.c.id)))


def test_override_values_are_encrypted_and_read_back_intact(url: str) -> None:
    keys = LocalKeyProvider.generate("k1")
    with RecordStore.open(url, keys=keys) as store:
        _save(store)
        rows = _raw(store)
    assert [r.kek_id for r in rows] == ["k1"] * len(ENTRIES)
    assert all(r.value.startswith(TOKEN_PREFIX) for r in rows)
    assert not any(value in r.value for r in rows for _, value in ENTRIES)
    assert [(r.input_id, r.entered_by) for r in rows] == [(i, "dr.chen") for i, _ in ENTRIES]
    assert _read(url, keys) == [(i, v, "dr.chen") for i, v in ENTRIES]


def test_legacy_rows_are_read_then_encrypted_and_rotated_by_the_commands(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'record.db'}"
    keys = LocalKeyProvider.generate("k1")
    with RecordStore.open(url, keys=keys, encrypt=False) as plain:
        _save(plain, "legacy")
        assert {r.kek_id for r in _raw(plain)} == {None}
    with RecordStore.open(url, keys=keys) as store:
        _save(store, "new")  # encrypted rows beside the plaintext ones
    expected = {p: _read(url, keys, p) for p in ("legacy", "new")}
    assert expected["legacy"] == [(i, v, "dr.chen") for i, v in ENTRIES] == expected["new"]
    monkeypatch.setenv(ENV_VAR, keys.to_text())
    done = runner.invoke(app, ["store", "encrypt", "--db", url])
    assert done.exit_code == 0, done.output
    assert f"encrypted: {len(ENTRIES)} row(s) of populate_override" in done.stdout
    assert {p: _read(url, keys, p) for p in expected} == expected
    # rotation: a new current KEK, rewrap, the old one retired, everything reads back identical
    rotated = LocalKeyProvider.from_text(keys.to_text())
    rotated.add_key("k2")
    monkeypatch.setenv(ENV_VAR, rotated.to_text())
    done = runner.invoke(app, ["store", "rewrap", "--db", url, "--batch", "2"])
    assert done.exit_code == 0, done.output
    assert f"rewrapped: {2 * len(ENTRIES)} row(s) of populate_override" in done.stdout
    status = runner.invoke(app, ["store", "status", "--db", url, "--json"])
    table = json.loads(status.stdout)["tables"]["populate_override"]
    assert table == {"plaintext": 0, "by_kek": {"k2": 2 * len(ENTRIES)}}
    rotated.retire_key("k1")
    assert {p: _read(url, rotated, p) for p in expected} == expected
    with RecordStore.open(url, keys=rotated) as store:
        assert OVERRIDE_SEALING.pending(store.engine, rotated) == (0, 0)


def test_a_value_moved_to_another_override_is_refused(url: str) -> None:
    keys = LocalKeyProvider.generate("k1")
    with RecordStore.open(url, keys=keys) as store:
        _save(store)
        first, second = _raw(store)[:2]
        with store.engine.begin() as conn:
            conn.execute(
                sa.update(overrides_table)
                .where(overrides_table.c.id == first.id)
                .values(value=second.value)
            )
    with pytest.raises(AtRestError, match=f"populate_override/{first.id}: column value"):
        _read(url, keys)
