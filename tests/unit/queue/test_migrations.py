"""Migrations: idempotent, concurrent-safe, and in step with the table definitions."""

from __future__ import annotations

import threading
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, Table, inspect

from rendercost.db.engine import create_db_engine
from rendercost.db.metadata import metadata
from rendercost.db.migrate import current_revision, head_revision, load_table_modules, migrate
from rendercost.domain.specs import RenderRequest, RenderSpec
from rendercost.queue.sql_store import SqlJobStore

OUR_TABLES = {"jobs", "cost_lines", "artifacts"}  # created by 0001_engine_room


def _diff_tables(diff: list[Any]) -> set[str]:
    """Names (and other strings) a compare_metadata diff mentions; intersect with table names."""
    names: set[str] = set()
    for entry in diff:
        for op in entry if isinstance(entry, list) else [entry]:
            for part in op:
                if isinstance(part, Table):
                    names.add(part.name)
                elif isinstance(part, str):  # op name, table name, column name
                    names.add(part)
                elif isinstance(getattr(part, "table", None), Table):  # columns, indexes, constraints
                    names.add(part.table.name)
    return names


def _columns(engine: Engine) -> dict[str, list[tuple[str, str, bool]]]:
    inspector = inspect(engine)
    return {
        name: [(c["name"], str(c["type"]), c["nullable"]) for c in inspector.get_columns(name)]
        for name in sorted(OUR_TABLES)
    }


def test_migrate_twice_is_a_no_op(migrated_engine: Engine) -> None:
    assert current_revision(migrated_engine) == head_revision()
    store = SqlJobStore(migrated_engine)
    job = store.enqueue("acme", RenderRequest(spec=RenderSpec(prompt="kept")))
    before = _columns(migrated_engine)
    migrate(migrated_engine)
    assert current_revision(migrated_engine) == head_revision()
    assert _columns(migrated_engine) == before
    assert store.get(job.id) == job


def test_the_migration_matches_the_table_definitions(migrated_engine: Engine) -> None:
    load_table_modules()
    with migrated_engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(context, metadata)
    assert _diff_tables(diff) & OUR_TABLES == set(), diff


def test_concurrent_migrations_from_one_url(db_url: str) -> None:
    errors: list[BaseException] = []

    def run() -> None:
        try:
            migrate(db_url)
        except BaseException as exc:  # surfaced by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    engine = create_db_engine(db_url)
    try:
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()
