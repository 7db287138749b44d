"""A real rendercost server for the HTTP tests: uvicorn on 127.0.0.1 (free port) in a thread, with
in-process workers rendering on the tiny model (2 denoising steps), over SQLite or PostgreSQL."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI

from rendercost.cli.serve import EmbeddedServer, RegistryCatalog, embedded_server
from rendercost.domain.presets import Preset, get_preset
from rendercost.execution.registry import ModelRegistry
from rendercost.execution.runner import DiffusersRunner
from tests.fixtures.models import make_tiny_settings

TEST_STEPS = 2  # denoising steps every preset runs with in these tests


def few_steps(name: str) -> Preset:
    preset = get_preset(name)
    return replace(preset, steps=min(preset.steps, TEST_STEPS))


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def uvicorn_thread(app: FastAPI) -> Iterator[str]:
    """Serve ``app`` on a free loopback port until the block ends; yields the base URL."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)


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
    data_dir: Path, model_dir: Path, *, workers: int = 1, **overrides: Any
) -> Iterator[LiveServer]:
    values: dict[str, Any] = {"default_size": "64x64", "max_wait_ms": 0, "webhook_secret": "hook-secret"}
    settings = make_tiny_settings(data_dir, model_dir, **{**values, **overrides})
    registry = ModelRegistry(settings)
    runner = DiffusersRunner(registry, settings, preset_lookup=few_steps)
    catalog = RegistryCatalog(registry, settings.default_model)
    with (
        embedded_server(settings, workers=workers, runner=runner, catalog=catalog) as embedded,
        uvicorn_thread(embedded.app) as url,
    ):
        assert embedded.admin_key is not None  # a fresh data dir: the first start made one
        yield LiveServer(url=url, embedded=embedded, admin_key=embedded.admin_key.secret)
