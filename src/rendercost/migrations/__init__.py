"""Alembic migrations for the one rendercost schema; run them with ``rendercost.db.migrate.migrate``."""
