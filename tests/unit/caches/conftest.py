"""The caches' HTTP tests reuse the API's app fixtures (real app, store, worker, ledger over SQLite)."""

from tests.unit.api.conftest import api, make_api

__all__ = ["api", "make_api"]
