"""The monitor's own tables (observations, dead letters, alerts, ward placement) and migrations."""

from __future__ import annotations

import json
import weakref
from collections.abc import Callable, Mapping
from datetime import datetime
from importlib import resources
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from medagent.secure.at_rest import KeyProvider, SealedColumns

VERSION_TABLE = "monitor_alembic_version"

metadata = sa.MetaData()

# Every accepted reading, stored before it is acknowledged; message_id makes ingestion idempotent.
# The value (`value_sealed`; `value_num` is NULL in encrypted rows), value code, unit and original
# text are encrypted at rest (OBSERVATION_SEALING); patient, signal, LOINC code and times stay in
# clear for the queries that rebuild a twin.
observations = sa.Table(
    "monitor_observation",
    metadata,
    sa.Column("seq", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("message_id", sa.String(255), nullable=False, unique=True),
    sa.Column("patient_id", sa.String(64), nullable=False),
    sa.Column("signal", sa.String(64), nullable=False),
    sa.Column("loinc", sa.String(32), nullable=False),
    sa.Column("value_num", sa.Float(), nullable=True),
    sa.Column("value_code", sa.Text(), nullable=True),
    sa.Column("unit", sa.Text(), nullable=True),
    sa.Column("original", sa.Text(), nullable=True),
    sa.Column("effective", sa.DateTime(), nullable=False),
    sa.Column("received", sa.DateTime(), nullable=False),
    sa.Column("source", sa.String(32), nullable=False),
    sa.Column("worker", sa.String(64), nullable=True),
    sa.Column("value_sealed", sa.Text(), nullable=True),
    sa.Column("kek_id", sa.String(64), nullable=True),
    sa.Column("wrapped_key", sa.LargeBinary(), nullable=True),
)
sa.Index("ix_monitor_observation_patient", observations.c.patient_id, observations.c.seq)
sa.Index("ix_monitor_observation_kek", observations.c.kek_id)
# Bound to message_id, not seq: the message id is unique, never changes and is known before the
# insert, so a reading is sealed and stored in one statement (seq exists only after the insert).
OBSERVATION_SEALING = SealedColumns(
    observations,
    keys=("message_id",),
    columns=("value_sealed", "value_code", "unit", "original"),
    moved=(("value_sealed", "value_num"),),
)

# Messages that could not be accepted, with the reason they were refused. Reason and payload (a
# whole HL7 message or FHIR Bundle: names, ids, values) are encrypted at rest (DEAD_LETTER_SEALING).
dead_letters = sa.Table(
    "monitor_dead_letter",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("received", sa.DateTime(), nullable=False),
    sa.Column("source", sa.String(32), nullable=False),
    sa.Column("reason", sa.Text(), nullable=False),
    sa.Column("payload", sa.Text(), nullable=False),
    sa.Column("kek_id", sa.String(64), nullable=True),
    sa.Column("wrapped_key", sa.LargeBinary(), nullable=True),
)
sa.Index("ix_monitor_dead_letter_kek", dead_letters.c.kek_id)
DEAD_LETTER_SEALING = SealedColumns(dead_letters, keys=("id",), columns=("reason", "payload"))

# Alerts; open_key is set (patient|rule) while the alert is live, so one rule on one patient has at
# most one live alert even with several workers (NULLs do not collide in a unique index).
alerts = sa.Table(
    "monitor_alert",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("open_key", sa.String(255), nullable=True, unique=True),
    sa.Column("patient_id", sa.String(64), nullable=False),
    sa.Column("rule", sa.String(64), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("severity", sa.String(16), nullable=False),
    sa.Column("level", sa.Integer(), nullable=False),
    sa.Column("summary", sa.Text(), nullable=False),
    sa.Column("detail", sa.Text(), nullable=False),
    sa.Column("source_label", sa.String(255), nullable=False),
    sa.Column("source_url", sa.String(512), nullable=True),
    sa.Column("scale_id", sa.String(64), nullable=True),
    sa.Column("scale_version", sa.String(32), nullable=True),
    sa.Column("message_id", sa.String(255), nullable=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("count", sa.Integer(), nullable=False),
    sa.Column("opened_at", sa.DateTime(), nullable=False),
    sa.Column("last_seen", sa.DateTime(), nullable=False),
    sa.Column("acknowledged_by", sa.String(255), nullable=True),
    sa.Column("acknowledged_at", sa.DateTime(), nullable=True),
    sa.Column("escalated_at", sa.DateTime(), nullable=True),
    sa.Column("resolved_at", sa.DateTime(), nullable=True),
    sa.Column("kek_id", sa.String(64), nullable=True),
    sa.Column("wrapped_key", sa.LargeBinary(), nullable=True),
)
sa.Index("ix_monitor_alert_patient", alerts.c.patient_id, alerts.c.status)
sa.Index("ix_monitor_alert_kek", alerts.c.kek_id)
# Summary and detail quote the scores and values. `count` grows with every update that may change
# them, so `store encrypt` never puts back an older plaintext over a newer one.
ALERT_SEALING = SealedColumns(alerts, keys=("id",), columns=("summary", "detail"), version="count")

# Where a patient is (ward, bed), from HL7 PV1-3 or the API.
placements = sa.Table(
    "monitor_patient",
    metadata,
    sa.Column("patient_id", sa.String(64), primary_key=True),
    sa.Column("ward", sa.String(64), nullable=True),
    sa.Column("bed", sa.String(64), nullable=True),
    sa.Column("updated", sa.DateTime(), nullable=False),
)


# Reads take the keyring as a function: it is loaded only when an encrypted row is met, so a
# database of plaintext rows never makes a keyring appear.
KeysGetter = Callable[[], KeyProvider]


def insert_dead_letter(
    conn: Connection,
    *,
    received: datetime,
    source: str,
    reason: str,
    payload: str,
    keys: KeyProvider | None,
) -> None:
    """Keep a refused message; encrypted under ``keys`` (None: in clear)."""
    values = {"received": received, "source": source, "reason": reason, "payload": payload}
    if keys is None:
        conn.execute(sa.insert(dead_letters).values(**values))
        return
    # The ciphertexts are bound to the row id, which the database assigns on insert.
    row_id = conn.execute(
        sa.insert(dead_letters)
        .values({**values, "reason": "", "payload": ""})
        .returning(dead_letters.c.id)
    ).scalar_one()
    sealed = DEAD_LETTER_SEALING.seal(keys, (row_id,), {"reason": reason, "payload": payload})
    conn.execute(sa.update(dead_letters).where(dead_letters.c.id == row_id).values(**sealed))


def read_dead_letter(row: Any, keys: KeysGetter) -> dict[str, Any]:
    """A dead-letter row as a dict, decrypted (the key columns left out)."""
    out = {k: v for k, v in row._mapping.items() if k not in ("kek_id", "wrapped_key")}
    out.update(DEAD_LETTER_SEALING.open_row(keys, row))
    return out


SEALED_TABLES = (DEAD_LETTER_SEALING, OBSERVATION_SEALING, ALERT_SEALING)


def observation_values(values: Mapping[str, Any], keys: KeyProvider | None) -> dict[str, Any]:
    """The columns to store for one reading (``values`` in clear, with ``value_num``): the value,
    value code, unit and original text sealed under ``keys`` (None: all in clear)."""
    out = dict(values)
    if keys is None:
        out.update(value_sealed=None, kek_id=None, wrapped_key=None)
        return out
    value = out["value_num"]
    plain = {
        "value_sealed": None if value is None else json.dumps(value),
        "value_code": out["value_code"],
        "unit": out["unit"],
        "original": out["original"],
    }
    out.update(OBSERVATION_SEALING.seal(keys, (out["message_id"],), plain))
    out["value_num"] = None
    return out


def read_observation(row: Any, keys: KeysGetter) -> dict[str, Any]:
    """The clinical columns of a reading row in clear: ``value`` (a number, else the code),
    ``unit`` and ``original``; plaintext (legacy) rows are read as they are."""
    if row.kek_id is None:
        value = row.value_num if row.value_num is not None else row.value_code
        return {"value": value, "unit": row.unit, "original": row.original}
    plain = OBSERVATION_SEALING.open(keys(), row)
    sealed = plain["value_sealed"]
    return {
        "value": float(json.loads(sealed)) if sealed is not None else plain["value_code"],
        "unit": plain["unit"],
        "original": plain["original"],
    }


def alert_values(
    row: Mapping[str, Any], keys: KeyProvider | None, *, text: bool = True
) -> dict[str, Any]:
    """The columns to write for an alert (``row`` as :meth:`Alert.row` gives it, with its id):
    summary and detail sealed under ``keys`` (None: in clear). ``text=False`` leaves summary,
    detail and the row key as stored (for updates of status, counts and times only)."""
    out = dict(row)
    if not text:
        del out["summary"], out["detail"]
        return out
    if keys is None:
        out.update(kek_id=None, wrapped_key=None)
        return out
    plain = {"summary": out["summary"], "detail": out["detail"]}
    out.update(ALERT_SEALING.seal(keys, (out["id"],), plain))
    return out


def insert_alert(conn: Connection, row: Mapping[str, Any], keys: KeyProvider | None) -> int:
    """Insert an alert (``row`` without id) and return its id; encrypted under ``keys``."""
    if keys is None:
        return int(conn.execute(sa.insert(alerts).values(row).returning(alerts.c.id)).scalar_one())
    # The ciphertexts are bound to the row id, which the database assigns on insert.
    alert_id = int(
        conn.execute(
            sa.insert(alerts).values({**row, "summary": "", "detail": ""}).returning(alerts.c.id)
        ).scalar_one()
    )
    sealed = ALERT_SEALING.seal(
        keys, (alert_id,), {"summary": row["summary"], "detail": row["detail"]}
    )
    conn.execute(sa.update(alerts).where(alerts.c.id == alert_id).values(**sealed))
    return alert_id


def read_alert(row: Any, keys: KeysGetter) -> dict[str, Any]:
    """An alert row as a dict with summary and detail in clear (the key columns left out)."""
    out = {k: v for k, v in row._mapping.items() if k not in ("kek_id", "wrapped_key")}
    out.update(ALERT_SEALING.open_row(keys, row))
    return out


# Engines already migrated. A WeakSet, not ids: a new engine can get the id of one that has been
# garbage-collected, and its fresh database was then never migrated ("no such table").
_MIGRATED: weakref.WeakSet[Engine] = weakref.WeakSet()
_WRITERS: dict[str, Engine] = {}


def writer_engine(engine: Engine) -> Engine:
    """The engine the monitor writes with. For a SQLite file: its own engine on the same file
    whose transactions start with ``BEGIN IMMEDIATE`` (several worker processes then queue for
    the write lock instead of failing on a lock upgrade) with ``synchronous=FULL`` (a commit is
    on disk before the sender is acknowledged) and a busy timeout. Otherwise the same engine."""
    url = engine.url
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return engine
    key = url.render_as_string(hide_password=False)
    if key in _WRITERS:
        return _WRITERS[key]
    writer = sa.create_engine(url, connect_args={"isolation_level": None, "timeout": 30})

    @sa.event.listens_for(writer, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @sa.event.listens_for(writer, "begin")
    def _begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    _WRITERS[key] = writer
    return writer


def migrate(engine: Engine) -> None:
    """Create or upgrade the monitor's tables (Alembic; version table `monitor_alembic_version`)."""
    if engine in _MIGRATED:
        return
    from alembic import command
    from alembic.config import Config

    with resources.as_file(resources.files("medagent.monitor") / "migrations") as script_dir:
        config = Config()
        config.set_main_option("script_location", str(script_dir))
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    _MIGRATED.add(engine)
