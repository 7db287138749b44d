"""The OpenAI SDK against a real server rendering on the tiny model."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import httpx
import openai
import pytest
from PIL import Image

from tests.integration.http_server import LiveServer, live_server

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Iterator[LiveServer]:
    data_dir = tmp_path_factory.mktemp("openai-server")
    with live_server(data_dir, tiny_model_dir, max_n=2, rate_limit_key_images_per_minute=20) as live:
        yield live


def client(server: LiveServer, key: str | None = None) -> openai.OpenAI:
    return openai.OpenAI(api_key=key or server.admin_key, base_url=f"{server.url}/v1", max_retries=0)


def test_b64_json_images_with_their_cost(server: LiveServer) -> None:
    result = client(server).images.generate(
        prompt="a red bicycle",
        n=2,
        size="64x64",
        quality="low",
        response_format="b64_json",  # type: ignore[arg-type]
    )
    assert len(result.data or []) == 2
    for image in result.data or []:
        picture = Image.open(io.BytesIO(base64.b64decode(image.b64_json or "")))
        assert picture.size == (64, 64)
        assert "rendercost" in picture.text  # type: ignore[attr-defined]  # the receipt travels with the file
    extra = result.model_extra or {}
    cost = extra["rendercost"]
    assert Decimal(cost["cost_usd"]) > 0
    assert {s["stage"] for s in cost["stages"]} >= {"text_encode", "denoise", "decode"}
    job = httpx.get(
        f"{server.url}/v1/jobs/{cost['job_id']}", headers={"Authorization": f"Bearer {server.admin_key}"}
    ).json()
    assert job["preset"] == "lightning"  # quality=low on a model with the lightning LoRA


def test_url_response_and_authenticated_fetch(server: LiveServer) -> None:
    result = client(server).images.generate(prompt="a blue door", size="64x64", output_format="webp")  # type: ignore[arg-type]
    url = (result.data or [])[0].url or ""
    assert url.startswith(f"{server.url}/v1/images/")
    assert httpx.get(url).status_code == 401
    raw = httpx.get(url, headers={"Authorization": f"Bearer {server.admin_key}", "Accept": "image/webp"})
    assert raw.status_code == 200 and raw.headers["content-type"] == "image/webp"
    assert Image.open(io.BytesIO(raw.content)).size == (64, 64)


def test_typed_errors(server: LiveServer) -> None:
    with pytest.raises(openai.AuthenticationError) as auth:
        client(server, "rc_wrong").images.generate(prompt="x", size="64x64")  # type: ignore[arg-type]
    assert auth.value.code == "invalid_api_key"
    with pytest.raises(openai.BadRequestError) as bad:
        client(server).images.generate(prompt="x", n=3, size="64x64")  # type: ignore[arg-type]
    assert bad.value.code == "invalid_request" and bad.value.param == "n"
    with pytest.raises(openai.BadRequestError) as unknown:
        client(server).images.generate(prompt="x", model="sdxl-nope", size="64x64")  # type: ignore[arg-type]
    assert unknown.value.code == "unknown_model"
    with pytest.raises(openai.BadRequestError) as long_prompt:
        client(server).images.generate(prompt="word " * 200, size="64x64")  # type: ignore[arg-type]
    assert long_prompt.value.code == "prompt_too_long"


def test_rate_limit_is_a_typed_error(server: LiveServer) -> None:
    limited = server.new_key("limited")
    server.embedded.services.limiter.settings = server.embedded.settings.model_copy(
        update={"rate_limit_tenant_requests_per_minute": 1}
    )
    try:
        httpx.get(f"{server.url}/v1/jobs", headers={"Authorization": f"Bearer {limited}"})
        with pytest.raises(openai.RateLimitError) as refused:
            client(server, limited).images.generate(prompt="x", size="64x64")  # type: ignore[arg-type]
    finally:
        server.embedded.services.limiter.settings = server.embedded.settings
    assert refused.value.code == "rate_limit_exceeded"
    assert int(refused.value.response.headers["Retry-After"]) >= 1
