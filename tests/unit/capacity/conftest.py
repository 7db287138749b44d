"""Fixtures for the planner tests: the API tests' real app (store, worker, ledger over SQLite, the
painter at the model's seam), reused as is."""

from __future__ import annotations

from tests.unit.api.conftest import make_api

__all__ = ["make_api"]
