"""Alembic environment of the service tables: runs on the connection medagent hands over."""

from __future__ import annotations

from alembic import context

from medagent.service.db import VERSION_TABLE, metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, version_table=VERSION_TABLE)
with context.begin_transaction():
    context.run_migrations()
