"""Idempotent inserts on both engines: ``INSERT ... ON CONFLICT (...) DO NOTHING``."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, Insert, Table
from sqlalchemy.dialects import postgresql, sqlite


def insert_ignoring_conflicts(conn: Connection, table: Table, index_elements: Sequence[str]) -> Insert:
    """An insert into ``table`` that skips rows clashing on the unique ``index_elements``.

    Add ``.returning(...)`` to learn which rows were new (``rowcount`` is not reliable on every driver).
    """
    name = conn.dialect.name
    if name == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing(index_elements=list(index_elements))
    if name == "sqlite":
        return sqlite.insert(table).on_conflict_do_nothing(index_elements=list(index_elements))
    raise ValueError(f"no conflict-ignoring insert for {name}: create_db_engine refuses such databases")
