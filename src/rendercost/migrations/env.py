"""Alembic environment for rendercost.

Online runs use the connection that ``rendercost.db.migrate`` passes in ``config.attributes`` (it holds
the migration lock and the transaction); offline runs (``--sql``) render SQL for the URL in the config.
"""

from __future__ import annotations

from alembic import context

from rendercost.db.metadata import metadata
from rendercost.db.migrate import load_table_modules

load_table_modules()


def run_offline() -> None:
    context.configure(
        url=context.config.get_main_option("sqlalchemy.url"),
        target_metadata=metadata,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("run rendercost migrations with rendercost.db.migrate.migrate(url)")
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by copying them
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
