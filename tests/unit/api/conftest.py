"""Fixtures for the API unit tests: the real app, store, worker and ledger over SQLite, with the model
replaced at its one seam (``Runner``) by a painter that returns small real images at once."""

from __future__ import annotations

import io
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from rendercost.api.translate import SettingsModelCatalog
from rendercost.cli.serve import EmbeddedServer, embedded_server
from rendercost.domain.batch import BatchPlan, RenderedImage, RenderResult
from rendercost.domain.costs import Stage
from rendercost.domain.runner import StepCallback
from rendercost.settings import Settings

ENCODERS = {"png": ("PNG", "image/png"), "jpeg": ("JPEG", "image/jpeg"), "webp": ("WEBP", "image/webp")}


@dataclass
class PaintingRunner:
    """Paints each image a flat colour from its seed; ``gate`` (when set) holds every call until opened."""

    calls: list[int] = field(default_factory=list)  # batch sizes seen
    gate: threading.Event | None = None
    fail_with: Exception | None = None

    def run(self, plan: BatchPlan, on_step: StepCallback | None = None) -> RenderResult:
        if self.gate is not None:
            self.gate.wait(30)
        if self.fail_with is not None:
            raise self.fail_with
        self.calls.append(plan.size)
        images = []
        for item in plan.items:
            spec = item.spec
            fmt, media_type = ENCODERS[str(spec.output_format)]
            buffer = io.BytesIO()
            colour = (spec.seed % 256, (spec.seed // 256) % 256, 128)
            Image.new("RGB", (spec.width, spec.height), colour).save(buffer, fmt)
            images.append(
                RenderedImage(item=item, data=buffer.getvalue(), media_type=media_type, seed=spec.seed)
            )
        stages = {Stage.TEXT_ENCODE: 0.01, Stage.DENOISE: 0.05, Stage.DECODE: 0.02, Stage.POSTPROCESS: 0.001}
        return RenderResult(batch_id=plan.batch_id, images=tuple(images), stage_seconds=stages, device="cpu")


def api_settings(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": tmp_path,
        "min_side": 64,
        "default_size": "64x64",
        "max_n": 4,
        "max_wait_ms": 0,
        "images_wait_timeout_s": 10.0,
        "webhook_secret": "test-secret",
    }
    values.update(overrides)
    return Settings(**values)


@dataclass
class Api:
    """A running app, a client for it, and a key for tenant ``acme``."""

    server: EmbeddedServer
    client: TestClient
    runner: PaintingRunner
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
        *, workers: int = 1, runner: PaintingRunner | None = None, webhooks: bool = True, **overrides: Any
    ) -> Api:
        painter = runner or PaintingRunner()
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
