"""Fixtures for the API unit tests: the real app, store, worker and ledger over SQLite, with the model
replaced at its one seam (``Runner``) by ``FakeRunner``, which returns small real images at once."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from rendercost.cli.serve import EmbeddedServer, embedded_server
from rendercost.execution.models.catalog import SettingsModelCatalog
from rendercost.settings import Settings
from rendercost.testing.runner import FakeRunner


def api_settings(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": tmp_path,
        "min_side": 64,
        "default_size": "64x64",
        "max_n": 4,
        "max_wait_ms": 0,
        "images_wait_timeout_s": 10.0,
        "webhook_secret": "test-secret",
        "webhook_allowed_hosts": ["127.0.0.1"],  # the tests' receivers listen on loopback
    }
    values.update(overrides)
    return Settings(**values)


@dataclass
class Api:
    """A running app, a client for it, and a key for tenant ``acme``."""

    server: EmbeddedServer
    client: TestClient
    runner: FakeRunner
    key: str

    def headers(self, key: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {key or self.key}"}

    def new_key(self, tenant: str, **kwargs: Any) -> str:
        return self.server.services.keys.create(tenant, **kwargs).secret


ApiFactory = Callable[..., Api]


@pytest.fixture
def make_api(tmp_path: Path) -> Iterator[ApiFactory]:
    """Start an app with ``workers`` painter workers and any settings overrides."""
    stack: list[Any] = []

    def make(
        *, workers: int = 1, runner: FakeRunner | None = None, webhooks: bool = True, **overrides: Any
    ) -> Api:
        painter = runner or FakeRunner()
        settings = api_settings(tmp_path, **overrides)
        catalog = SettingsModelCatalog(settings)
        context = embedded_server(
            settings, workers=workers, runner=painter, catalog=catalog, webhooks=webhooks
        )
        server = context.__enter__()
        stack.append(context)
        client = TestClient(server.app, raise_server_exceptions=False)
        client.__enter__()
        stack.append(client)
        key = server.services.keys.create("acme", tags={"team": "ml"}).secret
        return Api(server=server, client=client, runner=painter, key=key)

    yield make
    for context in reversed(stack):
        context.__exit__(None, None, None)


@pytest.fixture
def api(make_api: ApiFactory) -> Api:
    return make_api()
