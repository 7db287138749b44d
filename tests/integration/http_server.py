"""A real rendercost server for the HTTP tests: uvicorn on 127.0.0.1 (free port) in a thread, with
in-process workers rendering on the tiny model (2 denoising steps), over SQLite or PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from rendercost.api.threaded_server import uvicorn_thread
from rendercost.cli.serve import EmbeddedServer, embedded_server
from rendercost.domain.presets import Preset, get_preset
from rendercost.domain.runner import Runner
from rendercost.execution.models.catalog import RegistryCatalog
from rendercost.execution.models.registry import ModelRegistry
from rendercost.execution.pipeline.runner import DiffusersRunner
from tests.fixtures.models import make_tiny_settings

TEST_STEPS = 2  # denoising steps every preset runs with in these tests


def few_steps(name: str) -> Preset:
    preset = get_preset(name)
    return replace(preset, steps=min(preset.steps, TEST_STEPS))


@dataclass
class LiveServer:
    """A server reachable over HTTP, and the admin key its first start printed."""

    url: str
    embedded: EmbeddedServer
    admin_key: str

    def new_key(self, tenant: str, **kwargs: Any) -> str:
        return self.embedded.services.keys.create(tenant, **kwargs).secret


@contextmanager
def live_server(
    data_dir: Path, model_dir: Path, *, workers: int = 1, runner: Runner | None = None, **overrides: Any
) -> Iterator[LiveServer]:
    """A real server on the tiny model (few steps); ``runner`` replaces the diffusers runner where a test
    checks the HTTP contract rather than rendering."""
    values: dict[str, Any] = {
        "default_size": "64x64",
        "max_wait_ms": 0,
        "webhook_secret": "hook-secret",
        "webhook_allowed_hosts": ["127.0.0.1"],  # the tests' receivers listen on loopback
        "webhook_backoff_base_s": 0.2,  # a retry after a receiver's 503 comes within the tests' waits
    }
    settings = make_tiny_settings(data_dir, model_dir, **{**values, **overrides})
    registry = ModelRegistry(settings)
    runner = runner or DiffusersRunner(registry, settings, preset_lookup=few_steps)
    catalog = RegistryCatalog(registry, settings.default_model)
    with (
        embedded_server(settings, workers=workers, runner=runner, catalog=catalog) as embedded,
        uvicorn_thread(embedded.app) as url,
    ):
        assert embedded.admin_key is not None  # a fresh data dir: the first start made one
        yield LiveServer(url=url, embedded=embedded, admin_key=embedded.admin_key.secret)
