"""Alembic environment: migrations run on the connection the engine hands over."""

from alembic import context

from engine.store import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only the engine runs migrations
    raise RuntimeError("run migrations through engine.store.upgrade()")

context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
