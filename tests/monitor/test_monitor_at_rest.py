"""Encryption at rest of the monitor's readings and alerts: stored format, twin rebuilt from
encrypted rows, legacy plaintext rows, `store encrypt`, rotation and moved ciphertexts refused
(SQLite and a throwaway PostgreSQL server)."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from monitor_helpers import T0, Clock, vitals
from typer.testing import CliRunner

from medagent.cli import app
from medagent.monitor import db
from medagent.monitor.core import Monitor
from medagent.record.pgtemp import TempPostgres
from medagent.record.store import RecordStore
from medagent.secure.at_rest import ENV_VAR, TOKEN_PREFIX, LocalKeyProvider
from medagent.secure.errors import AtRestError

PATIENTS = ("p1", "p2")


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh database, once a SQLite file and once on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'monitor.db'}"
    server: TempPostgres = request.getfixturevalue("postgres_server")
    return server.create_database(f"m_{uuid.uuid4().hex[:12]}")


def _monitor(url: str, keys: LocalKeyProvider, *, encrypt: bool = True) -> Monitor:
    return Monitor(RecordStore.open(url, keys=keys, encrypt=encrypt), clock=Clock(T0))


def _feed(monitor: Monitor, prefix: str = "v", rounds: int = 6) -> None:
    """Readings for two patients; p1 deteriorates (alerts open and worsen), p2 reports a
    consciousness code (a coded, not numeric, value)."""
    for i in range(rounds):
        t = T0 + timedelta(minutes=15 * i)
        monitor.ingest_fhir(vitals(f"{prefix}{i}", t, hr=90 + 8 * i, rr=18 + i, patient="p1"))
        monitor.ingest_fhir(vitals(f"{prefix}w{i}", t, patient="p2", level="A" if i % 2 else "V"))


def _state(monitor: Monitor) -> str:
    return json.dumps(
        {pid: monitor.twin(pid).snapshot() for pid in PATIENTS}, sort_keys=True, default=str
    )


def _rebuilt(url: str, keys: LocalKeyProvider) -> str:
    restarted = _monitor(url, keys)
    restarted.rebuild()
    return _state(restarted)


def _rows(monitor: Monitor, table: sa.Table) -> list[Any]:
    with monitor.engine.connect() as conn:
        return list(conn.execute(sa.select(table).order_by(table.c[_key(table)])).all())


def _key(table: sa.Table) -> str:
    return "seq" if table is db.observations else "id"


def test_readings_and_alerts_are_stored_encrypted_and_rebuild_the_same_twin(url: str) -> None:
    keys = LocalKeyProvider.generate("k1")
    monitor = _monitor(url, keys)
    _feed(monitor)
    monitor.acknowledge(monitor.alerts(patient_id="p1")[0].id, user="nurse")
    readings = _rows(monitor, db.observations)
    assert readings and all(r.kek_id == "k1" and r.value_num is None for r in readings)
    for r in readings:
        sealed = [r.value_sealed, r.value_code, r.unit, r.original]
        assert all(v is None or v.startswith(TOKEN_PREFIX) for v in sealed)
        assert (r.value_sealed is None) != (r.value_code is None)  # a number or a code
    assert any(r.value_code for r in readings)  # the consciousness levels
    alerts = _rows(monitor, db.alerts)
    assert alerts and all(a.kek_id == "k1" for a in alerts)
    assert all(
        a.summary.startswith(TOKEN_PREFIX) and a.detail.startswith(TOKEN_PREFIX) for a in alerts
    )
    raw = json.dumps([list(a) for a in alerts], default=str)
    texts = [t for a in monitor.alerts(patient_id="p1") for t in (a.summary, a.detail)]
    assert texts and not any(t in raw for t in texts)
    # a restarted monitor rebuilds exactly the same twins (values, units, codes, alert texts)
    before = _state(monitor)
    assert "NEWS2" in before and "/min" in before
    assert _rebuilt(url, keys) == before


def test_legacy_plaintext_rows_are_read_then_encrypted_by_the_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'monitor.db'}"
    keys = LocalKeyProvider.generate("k1")
    plain = _monitor(url, keys, encrypt=False)
    _feed(plain, rounds=3)
    assert {r.kek_id for r in _rows(plain, db.observations)} == {None}
    assert any(r.value_num == 98.0 for r in _rows(plain, db.observations))
    # an encrypting monitor continues on the same database: old rows plaintext, new ones sealed
    mixed = _monitor(url, keys)
    mixed.rebuild()
    _feed(mixed, prefix="n", rounds=5)
    assert {r.kek_id for r in _rows(mixed, db.observations)} == {None, "k1"}
    before = _state(mixed)
    assert _rebuilt(url, keys) == before
    monkeypatch.setenv(ENV_VAR, keys.to_text())
    done = CliRunner().invoke(app, ["store", "encrypt", "--db", url, "--batch", "7"])
    assert done.exit_code == 0, done.output
    assert "of monitor_observation" in done.stdout and "of monitor_alert" in done.stdout
    assert db.OBSERVATION_SEALING.pending(mixed.engine, keys) == (0, 0)
    assert db.ALERT_SEALING.pending(mixed.engine, keys) == (0, 0)
    assert all(
        r.value_num is None and r.value_sealed
        for r in _rows(mixed, db.observations)
        if r.value_code is None
    )
    assert _rebuilt(url, keys) == before
    status = CliRunner().invoke(app, ["store", "status", "--db", url, "--json"])
    assert status.exit_code == 0, status.output
    tables = json.loads(status.stdout)["tables"]
    assert tables["monitor_observation"]["plaintext"] == 0
    assert tables["monitor_alert"]["by_kek"] == {"k1": len(_rows(mixed, db.alerts))}


def test_rotation_rewraps_every_row_and_the_twin_reads_back_identical(url: str) -> None:
    old = LocalKeyProvider.generate("k1")
    monitor = _monitor(url, old)
    _feed(monitor)
    before = _state(monitor)
    sealed_before = {r.seq: r.value_sealed for r in _rows(monitor, db.observations)}
    keys = LocalKeyProvider.from_text(old.to_text())
    keys.add_key("k2")
    for spec in (db.OBSERVATION_SEALING, db.ALERT_SEALING):
        assert spec.rewrap_rows(monitor.engine, keys, batch_size=5) > 0
        assert spec.status(monitor.engine) == {"k2": len(_rows(monitor, spec.table))}
    # ciphertexts untouched; the old KEK can go
    assert {r.seq: r.value_sealed for r in _rows(monitor, db.observations)} == sealed_before
    keys.retire_key("k1")
    assert _rebuilt(url, keys) == before


@pytest.mark.parametrize(
    ("table", "columns"),
    [
        (db.observations, ("value_sealed",)),  # one value copied from another reading
        (db.observations, ("value_sealed", "unit", "kek_id", "wrapped_key")),  # whole envelope
        (db.alerts, ("summary",)),
    ],
    ids=["reading-value", "reading-envelope", "alert-summary"],
)
def test_a_ciphertext_moved_between_rows_is_refused(
    url: str, table: sa.Table, columns: tuple[str, ...]
) -> None:
    keys = LocalKeyProvider.generate("k1")
    monitor = _monitor(url, keys)
    _feed(monitor)
    rows = [r for r in _rows(monitor, table) if r.patient_id == "p1"]
    first, second = rows[0], rows[1]
    key = _key(table)
    with monitor.engine.begin() as conn:
        conn.execute(
            sa.update(table)
            .where(table.c[key] == first._mapping[key])
            .values({c: second._mapping[c] for c in columns})
        )
    with pytest.raises(AtRestError, match=f"{table.name}/.*(corrupt or was moved|row was moved)"):
        _rebuilt(url, keys)


def test_rows_written_before_the_migration_are_read_and_encrypted(url: str) -> None:
    # A database at the previous revision with plaintext readings (short VARCHAR columns on
    # PostgreSQL), upgraded by the monitor on start.
    from importlib import resources

    from alembic import command
    from alembic.config import Config

    store = RecordStore.open(url, keys=LocalKeyProvider.generate("k1"))
    with resources.as_file(resources.files("medagent.monitor") / "migrations") as script_dir:
        config = Config()
        config.set_main_option("script_location", str(script_dir))
        with store.engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "monitor_0002_at_rest")
    old = [
        ("m-hr", "heart_rate", "8867-4", 131.0, None, "/min", None),
        ("m-c", "consciousness", "80288-4", None, "V", None, "Voice"),
    ]
    with store.engine.begin() as conn:
        for mid, signal, loinc, num, code, unit, original in old:
            conn.execute(
                sa.text(
                    "INSERT INTO monitor_observation (message_id, patient_id, signal, loinc,"
                    " value_num, value_code, unit, original, effective, received, source)"
                    " VALUES (:m, 'p1', :s, :l, :n, :c, :u, :o, :t, :t, 'hl7')"
                ),
                {"m": mid, "s": signal, "l": loinc, "n": num, "c": code, "u": unit, "o": original,
                 "t": T0},
            )  # fmt: skip
    keys = store.keys
    assert isinstance(keys, LocalKeyProvider)
    monitor = Monitor(store, clock=Clock(T0))
    signals = monitor.twin("p1").snapshot()["signals"]
    assert signals["heart_rate"]["value"] == 131.0 and signals["heart_rate"]["unit"] == "/min"
    assert signals["consciousness"]["value"] == "V"
    before = _state(monitor)
    assert db.OBSERVATION_SEALING.encrypt_rows(monitor.engine, keys) == len(old)
    rows = _rows(monitor, db.observations)
    assert all(r.kek_id == "k1" and r.value_num is None for r in rows)
    assert _rebuilt(url, keys) == before


# Regression: migrated engines were remembered by id(); a new engine that reused a collected
# engine's id skipped the migration of its fresh database ("no such table: monitor_patient").
def test_migrated_engines_are_not_remembered_by_a_reusable_id(tmp_path: Path) -> None:
    import gc

    import sqlalchemy as sa

    from medagent.monitor import db

    gc.collect()
    before = len(db._MIGRATED)
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'a.db'}")
    db.migrate(engine)
    assert len(db._MIGRATED) == before + 1
    engine.dispose()
    del engine
    gc.collect()
    assert len(db._MIGRATED) == before  # the collected engine is forgotten, its id not kept
    fresh = sa.create_engine(f"sqlite:///{tmp_path / 'b.db'}")
    db.migrate(fresh)
    assert "monitor_patient" in sa.inspect(fresh).get_table_names()
