"""Alembic environment of the feedback store.

Takes: the connection :class:`kgllm.feedback.store.FeedbackStore` passes in ``config.attributes`` (already
inside its transaction, holding the write lock), or, for the ``alembic`` command, ``sqlalchemy.url`` of an
ini file whose ``script_location`` is ``kgllm.feedback:migrations``.
Makes: the schema at the requested revision, recorded in ``kgllm_feedback_version``.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

from kgllm.feedback.store import VERSION_TABLE, metadata


def _migrate(connection: sa.Connection) -> None:
    context.configure(connection=connection, target_metadata=metadata, version_table=VERSION_TABLE,
                      render_as_batch=connection.dialect.name == "sqlite")
    with context.begin_transaction():  # a no-op inside the store's own transaction
        context.run_migrations()


def run() -> None:
    if context.is_offline_mode():
        context.configure(url=context.config.get_main_option("sqlalchemy.url"), target_metadata=metadata,
                          version_table=VERSION_TABLE, literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _migrate(connection)
        return
    engine = sa.create_engine(context.config.get_main_option("sqlalchemy.url"), poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        _migrate(conn)


run()
