"""Clinician overrides kept in the store's database, so that they survive restarts."""

from __future__ import annotations

import weakref
from datetime import UTC, datetime
from importlib import resources
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from medagent.populate.errors import PopulateError
from medagent.populate.model import Override
from medagent.secure.at_rest import SealedColumns

if TYPE_CHECKING:
    from medagent.record.store import RecordStore

VERSION_TABLE = "populate_alembic_version"

metadata = sa.MetaData()

overrides_table = sa.Table(
    "populate_override",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("patient_id", sa.String(64), nullable=False),
    sa.Column("scale_id", sa.String(64), nullable=False),
    sa.Column("input_id", sa.String(64), nullable=False),
    sa.Column("value", sa.Text(), nullable=False),  # as entered, e.g. "true", "1.4 mg/dL"
    sa.Column("entered_by", sa.String(255), nullable=False),
    sa.Column("entered_at", sa.DateTime(), nullable=False),  # naive UTC
    sa.Column("kek_id", sa.String(64), nullable=True),
    sa.Column("wrapped_key", sa.LargeBinary(), nullable=True),
)
sa.Index(
    "ix_populate_override_lookup",
    overrides_table.c.patient_id,
    overrides_table.c.scale_id,
    overrides_table.c.input_id,
)
sa.Index("ix_populate_override_kek", overrides_table.c.kek_id)
# The value a clinician entered is encrypted at rest; patient, scale, input, user and time stay
# in clear (the look-ups filter on them).
OVERRIDE_SEALING = SealedColumns(overrides_table, keys=("id",), columns=("value",))
SEALED_TABLES = (OVERRIDE_SEALING,)

# Engines whose override table is known to be current (weak: a new engine is checked again).
_MIGRATED: weakref.WeakSet[Engine] = weakref.WeakSet()


def migrate(engine: Engine) -> None:
    """Create or upgrade the override table (Alembic; version table `populate_alembic_version`)."""
    if engine in _MIGRATED:
        return
    from alembic import command
    from alembic.config import Config

    with resources.as_file(resources.files("medagent.populate") / "migrations") as script_dir:
        config = Config()
        config.set_main_option("script_location", str(script_dir))
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    _MIGRATED.add(engine)


def _naive_utc(when: datetime) -> datetime:
    return when.astimezone(UTC).replace(tzinfo=None) if when.tzinfo else when


def save_override(
    store: RecordStore,
    *,
    scale_id: str,
    patient_id: str,
    input_id: str,
    value: str,
    user: str,
    at: datetime | None = None,
) -> Override:
    """Store a clinician's value for one input of one scale; it wins over the record from then on.

    The value is checked against the scale's input (type, unit, range) before it is stored.
    """
    from medagent.errors import InputError
    from medagent.scales import get_scale
    from medagent.scales.engine import normalize_inputs

    if not user.strip():
        raise PopulateError("an override needs the name of the user who enters it")
    scale = get_scale(scale_id)
    if input_id not in scale.input_ids:
        raise PopulateError(f"{input_id!r} is not an input of {scale_id}")
    try:
        normalize_inputs(scale, {input_id: value})
    except InputError as error:
        raise PopulateError(str(error)) from error
    entered_at = _naive_utc(at or datetime.now(UTC))
    migrate(store.engine)
    keys = store.keys if store.encrypt else None
    with store.engine.begin() as conn:
        row_id = conn.execute(
            overrides_table.insert()
            .values(
                patient_id=patient_id,
                scale_id=scale_id,
                input_id=input_id,
                value=value if keys is None else "",
                entered_by=user,
                entered_at=entered_at,
            )
            .returning(overrides_table.c.id)
        ).scalar_one()
        if keys is not None:
            # The ciphertext is bound to the row id, which the database assigns on insert.
            sealed = OVERRIDE_SEALING.seal(keys, (row_id,), {"value": value})
            conn.execute(
                sa.update(overrides_table).where(overrides_table.c.id == row_id).values(**sealed)
            )
    return Override(input_id, value, user, entered_at, scale_id=scale_id, patient_id=patient_id)


def stored_overrides(
    store: RecordStore, *, scale_id: str | None, patient_id: str, at: datetime | None = None
) -> list[Override]:
    """The overrides of a patient (for one scale, or all) entered at or before ``at``, oldest
    first."""
    migrate(store.engine)
    t = overrides_table.c
    stmt = sa.select(overrides_table).where(t.patient_id == patient_id)
    if scale_id is not None:
        stmt = stmt.where(t.scale_id == scale_id)
    if at is not None:
        stmt = stmt.where(t.entered_at <= _naive_utc(at))
    stmt = stmt.order_by(t.entered_at, t.id)
    with store.engine.connect() as conn:
        rows = conn.execute(stmt).all()
    return [
        Override(r.input_id, _value(store, r), r.entered_by, r.entered_at, r.scale_id, r.patient_id)
        for r in rows
    ]


def _value(store: RecordStore, row: Any) -> str:
    """The value of an override row in clear (the keyring is loaded only for encrypted rows)."""
    return str(OVERRIDE_SEALING.open_row(lambda: store.keys, row)["value"])
