"""The monitor's own tables (observations, dead letters, alerts, ward placement) and migrations."""

from __future__ import annotations

from datetime import datetime
from importlib import resources
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from medagent.secure.at_rest import KeyProvider, SealedColumns

VERSION_TABLE = "monitor_alembic_version"

metadata = sa.MetaData()

# Every accepted reading, stored before it is acknowledged; message_id makes ingestion idempotent.
observations = sa.Table(
    "monitor_observation",
    metadata,
    sa.Column("seq", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("message_id", sa.String(255), nullable=False, unique=True),
    sa.Column("patient_id", sa.String(64), nullable=False),
    sa.Column("signal", sa.String(64), nullable=False),
    sa.Column("loinc", sa.String(32), nullable=False),
    sa.Column("value_num", sa.Float(), nullable=True),
    sa.Column("value_code", sa.String(64), nullable=True),
    sa.Column("unit", sa.String(32), nullable=True),
    sa.Column("original", sa.String(128), nullable=True),
    sa.Column("effective", sa.DateTime(), nullable=False),
    sa.Column("received", sa.DateTime(), nullable=False),
    sa.Column("source", sa.String(32), nullable=False),
    sa.Column("worker", sa.String(64), nullable=True),
)
sa.Index("ix_monitor_observation_patient", observations.c.patient_id, observations.c.seq)

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
    sa.Column("summary", sa.String(255), nullable=False),
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
)
sa.Index("ix_monitor_alert_patient", alerts.c.patient_id, alerts.c.status)

# Where a patient is (ward, bed), from HL7 PV1-3 or the API.
placements = sa.Table(
    "monitor_patient",
    metadata,
    sa.Column("patient_id", sa.String(64), primary_key=True),
    sa.Column("ward", sa.String(64), nullable=True),
    sa.Column("bed", sa.String(64), nullable=True),
    sa.Column("updated", sa.DateTime(), nullable=False),
)


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


def read_dead_letter(row: Any, keys: KeyProvider) -> dict[str, Any]:
    """A dead-letter row as a dict, decrypted (the key columns left out)."""
    out = {k: v for k, v in row._mapping.items() if k not in ("kek_id", "wrapped_key")}
    out.update(DEAD_LETTER_SEALING.open(keys, row) if row.kek_id is not None else {})
    return out


_MIGRATED: set[int] = set()
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
    if id(engine) in _MIGRATED:
        return
    from alembic import command
    from alembic.config import Config

    with resources.as_file(resources.files("medagent.monitor") / "migrations") as script_dir:
        config = Config()
        config.set_main_option("script_location", str(script_dir))
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    _MIGRATED.add(id(engine))
