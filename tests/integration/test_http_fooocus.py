"""A Fooocus-API client, unchanged, against a real server rendering on the tiny model (2 steps)."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from rendercost.artifacts.a1111 import parse_parameters
from rendercost.testing.waiting import wait_until
from tests.integration.http_server import LiveServer, live_server

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("fooocus-server"), tiny_model_dir, max_n=2) as live:
        yield live


def generate(server: LiveServer, params: dict[str, Any], **headers: str) -> httpx.Response:
    """As Fooocus-API's examples call it: a JSON string body, the key in X-API-KEY."""
    return httpx.post(
        f"{server.url}/v1/generation/text-to-image",
        content=json.dumps(params),
        headers={"X-API-KEY": server.admin_key, **headers},
        timeout=120,
    )


BASE = {
    "prompt": "a lighthouse on a cliff",
    "style_selections": ["photographic"],
    "performance_selection": "Speed",
    "aspect_ratios_selection": "64*64",
    "image_seed": 31,
}


def test_sync_base64_renders_pngs_that_state_their_settings(server: LiveServer) -> None:
    response = generate(server, {**BASE, "image_number": 2, "require_base64": True})
    assert response.status_code == 200, response.text
    images = response.json()
    assert [image["seed"] for image in images] == ["31", "32"]
    assert Decimal(response.headers["X-Rendercost-Cost-USD"]) > 0
    for image in images:
        with Image.open(io.BytesIO(base64.b64decode(image["base64"]))) as picture:
            assert picture.size == (64, 64)
            params = parse_parameters(picture.text["parameters"])  # type: ignore[attr-defined]
        assert params.prompt.startswith("photograph of a lighthouse on a cliff")  # the style's template
        assert (params.seed, params.width, params.height) == (int(image["seed"]), 64, 64)
        fetched = httpx.get(image["url"])  # the file URL needs no key, as Fooocus-API's
        assert fetched.status_code == 200 and fetched.content == base64.b64decode(image["base64"])


def test_async_job_is_polled_to_success_and_png_mode_answers_bytes(server: LiveServer) -> None:
    queued = generate(server, {**BASE, "async_process": True, "image_seed": 40}).json()
    assert queued["job_stage"] in {"WAITING", "RUNNING", "SUCCESS"}

    def finished() -> dict[str, Any] | None:
        job: dict[str, Any] = httpx.get(
            f"{server.url}/v1/generation/query-job",
            params={"job_id": queued["job_id"]},
            headers={"X-API-KEY": server.admin_key},
        ).json()
        return job if job["job_stage"] in {"SUCCESS", "ERROR"} else None

    done = wait_until(finished, what="query-job SUCCESS", timeout_s=120)
    assert done["job_stage"] == "SUCCESS" and done["job_result"][0]["seed"] == "40"
    png = generate(server, BASE, Accept="image/png")
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(png.content)).size == (64, 64)
