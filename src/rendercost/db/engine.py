"""Engines for the two databases: SQLite (embedded default) and PostgreSQL (many processes).

SQLite runs in WAL mode with a busy timeout and foreign keys on; its transactions begin with
``BEGIN IMMEDIATE`` so a claim takes the write lock up front (no lost updates between workers). Each
SQLite connection also gets the ``decimal_sum`` aggregate behind ``db.types.exact_sum``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

from rendercost.db.types import DecimalSum
from rendercost.errors import InvalidRequest

SQLITE_BUSY_TIMEOUT_MS = 30_000  # how long a writer waits for the lock before failing


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def _normalize(url: str) -> str:
    """Use psycopg 3 for plain ``postgresql://`` URLs."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


SUPPORTED_BACKENDS = ("sqlite", "postgresql")


def create_db_engine(url: str, **kwargs: Any) -> Engine:
    """An Engine for ``url``; for SQLite the parent folder is created and WAL is turned on. Any other
    backend than SQLite or PostgreSQL is refused here, before anything is written."""
    backend = make_url(url).get_backend_name()
    if backend not in SUPPORTED_BACKENDS:
        raise InvalidRequest(
            f"database_url: rendercost runs on sqlite:// or postgresql:// databases, not {backend}",
            param="database_url",
        )
    url = _normalize(url)
    if not is_sqlite(url):
        kwargs.setdefault("pool_pre_ping", True)
        return create_engine(url, **kwargs)
    database = make_url(url).database
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"check_same_thread": False}, **kwargs)
    event.listen(engine, "connect", _sqlite_on_connect)
    event.listen(engine, "begin", _sqlite_on_begin)
    return engine


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # let SQLAlchemy's "begin" event issue BEGIN itself
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()
    dbapi_connection.create_aggregate("decimal_sum", 1, DecimalSum)


def _sqlite_on_begin(connection: Any) -> None:
    connection.exec_driver_sql("BEGIN IMMEDIATE")
