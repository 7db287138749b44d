"""Bring a database's schema to the newest Alembic revision.

``migrate(url_or_engine)`` is idempotent and safe when several processes start at once: on PostgreSQL
the upgrade runs inside one transaction holding an advisory lock; on SQLite the engine opens every
transaction with ``BEGIN IMMEDIATE``, which takes the database's write lock. Both engines have
transactional DDL, so a process that waits for the lock then finds the schema at head and does nothing.
The Alembic environment lives in the package (``rendercost/migrations``); no ``alembic.ini`` is needed.
"""

from __future__ import annotations

import importlib
import pkgutil
import threading
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, text

import rendercost
from rendercost.db.engine import create_db_engine

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
MIGRATION_LOCK_ID = 7_236_837_434_112_001  # pg_advisory_xact_lock key shared by every rendercost process
_PROCESS_LOCK = threading.Lock()  # Alembic's context proxy is process-global: one upgrade at a time


def load_table_modules() -> None:
    """Import every ``rendercost.<package>.tables`` module so the shared ``metadata`` is complete."""
    root = Path(rendercost.__file__).parent
    for info in pkgutil.iter_modules([str(root)]):
        if info.ispkg and (root / info.name / "tables.py").is_file():
            importlib.import_module(f"rendercost.{info.name}.tables")


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic ``Config`` for rendercost's migrations, optionally bound to ``connection``."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("path_separator", "os")
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest revision this code knows."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise RuntimeError(f"no migrations found in {MIGRATIONS_DIR}")
    return head


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at; None for an empty database."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def migrate(url_or_engine: str | Engine, revision: str = "head") -> None:
    """Upgrade the database to ``revision`` (default: the newest); a no-op when already there."""
    if isinstance(url_or_engine, str):
        engine = create_db_engine(url_or_engine)
        try:
            _upgrade(engine, revision)
        finally:
            engine.dispose()
    else:
        _upgrade(url_or_engine, revision)


def _upgrade(engine: Engine, revision: str) -> None:
    with _PROCESS_LOCK, engine.begin() as conn:  # SQLite: BEGIN IMMEDIATE holds the write lock
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": MIGRATION_LOCK_ID})
        command.upgrade(alembic_config(conn), revision)
