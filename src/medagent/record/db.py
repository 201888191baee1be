"""Database schema of the record store and how to open it (SQLite or PostgreSQL, with Alembic)."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

VERSION_TABLE = "record_alembic_version"
ENV_DB = "MEDAGENT_DB"

metadata = sa.MetaData()

# One row per FHIR resource: its JSON plus the columns look-ups filter on. Times are naive UTC.
# `body` is encrypted (medagent.secure.at_rest token `ma1:…`) under the row's data key, stored
# wrapped in `wrapped_key` under KEK `kek_id`; a NULL `kek_id` marks a plaintext (legacy) row.
resources_table = sa.Table(
    "fhir_resource",
    metadata,
    sa.Column("resource_type", sa.String(64), primary_key=True),
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("patient_id", sa.String(64), nullable=True),
    sa.Column("time_start", sa.DateTime(), nullable=True),
    sa.Column("time_end", sa.DateTime(), nullable=True),
    sa.Column("status", sa.String(64), nullable=True),
    sa.Column("clinical_status", sa.String(64), nullable=True),
    sa.Column("verification_status", sa.String(64), nullable=True),
    sa.Column("version_id", sa.Integer(), nullable=False),
    sa.Column("last_updated", sa.DateTime(), nullable=False),
    sa.Column("body", sa.Text(), nullable=False),
    sa.Column("kek_id", sa.String(64), nullable=True),
    sa.Column("wrapped_key", sa.LargeBinary(), nullable=True),
)
sa.Index("ix_fhir_resource_patient", resources_table.c.patient_id, resources_table.c.resource_type)
sa.Index("ix_fhir_resource_updated", resources_table.c.last_updated)
sa.Index("ix_fhir_resource_kek", resources_table.c.kek_id)

# The codes of each resource (code, and Observation components), for code and prefix look-ups.
codes_table = sa.Table(
    "fhir_code",
    metadata,
    sa.Column("resource_type", sa.String(64), nullable=False),
    sa.Column("resource_id", sa.String(64), nullable=False),
    sa.Column("system", sa.String(255), nullable=False),
    sa.Column("code", sa.String(128), nullable=False),
    sa.Column("component", sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(
        ["resource_type", "resource_id"],
        ["fhir_resource.resource_type", "fhir_resource.id"],
        ondelete="CASCADE",
    ),
)
sa.Index(
    "ix_fhir_code_lookup", codes_table.c.system, codes_table.c.code, codes_table.c.resource_type
)
sa.Index("ix_fhir_code_resource", codes_table.c.resource_type, codes_table.c.resource_id)


def default_url() -> str:
    """The database URL: env `MEDAGENT_DB`, else a SQLite file in the user's data directory."""
    env = os.environ.get(ENV_DB)
    if env:
        return env
    from platformdirs import user_data_dir

    path = Path(user_data_dir("medagent", appauthor=False)) / "medagent.db"
    return f"sqlite:///{path}"


def normalize_url(url: str) -> str:
    """Accept a bare file path or a `postgresql://` URL and return a SQLAlchemy URL."""
    if "://" not in url:
        return f"sqlite:///{Path(url).expanduser()}"
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def create_engine(url: str) -> Engine:
    """Create the engine for a URL, making the SQLite file's folder when needed."""
    sa_url = sa.make_url(normalize_url(url))
    if sa_url.get_backend_name() == "sqlite":
        if sa_url.database and sa_url.database != ":memory:":
            Path(sa_url.database).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(sa_url)
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return sa.create_engine(sa_url, pool_pre_ping=True)


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision with the migrations shipped in the package."""
    from alembic import command
    from alembic.config import Config

    with resources.as_file(resources.files("medagent.record") / "migrations") as script_dir:
        config = Config()
        config.set_main_option("script_location", str(script_dir))
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
