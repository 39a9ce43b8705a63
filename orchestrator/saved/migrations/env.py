"""Alembic environment: migrations run on the connection `orchestrator.saved.database` passes."""

from alembic import context

from orchestrator.saved.tables import Base

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata)
with context.begin_transaction():
    context.run_migrations()
