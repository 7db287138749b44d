"""The API tests' ``make_api`` fixture (the real app over SQLite, the model at its Runner seam), shared
with the web pages' tests."""

from tests.unit.api.conftest import make_api

__all__ = ["make_api"]
