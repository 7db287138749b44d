"""A single-file checkpoint renders through the API (real pipeline) with per-request steps, guidance
and sampler: the receipt names the file's hash and what ran, the A1111 text parses back, the cache
keys on them."""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from rendercost.artifacts.a1111 import parse_parameters
from rendercost.cli.serve import embedded_server
from rendercost.settings import ModelConfig
from rendercost.testing.waiting import wait_for_job
from tests.fixtures.single_file import TinyCheckpoint
from tests.unit.api.conftest import api_settings

pytestmark = pytest.mark.slow


@pytest.fixture
def real_api(tmp_path: Path, tiny_checkpoint: TinyCheckpoint) -> Iterator[tuple[TestClient, dict[str, str]]]:
    model = ModelConfig(source=str(tiny_checkpoint.path), config=tiny_checkpoint.config)
    settings = api_settings(
        tmp_path, models={"tinyfile": model}, default_model="tinyfile", max_steps=6, torch_threads=1
    )
    with embedded_server(settings, workers=1) as server, TestClient(server.app) as client:
        key = server.services.keys.create("acme").secret
        yield client, {"Authorization": f"Bearer {key}"}


def _done(client: TestClient, headers: dict[str, str], job_id: str) -> dict[str, Any]:
    def read() -> dict[str, Any]:
        job: dict[str, Any] = client.get(f"/v1/jobs/{job_id}", headers=headers).json()
        return job

    return wait_for_job(read, what=job_id, timeout_s=120)


def _png(client: TestClient, headers: dict[str, str], job: dict[str, Any]) -> Image.Image:
    raw = client.get(job["results"][0]["url"], headers={**headers, "Accept": "image/png"}).content
    return Image.open(io.BytesIO(raw))


def test_a_checkpoint_renders_with_overrides_and_its_receipt_names_the_file_hash(
    real_api: tuple[TestClient, dict[str, str]], tiny_checkpoint: TinyCheckpoint
) -> None:
    client, headers = real_api
    file_hash = hashlib.sha256(tiny_checkpoint.path.read_bytes()).hexdigest()
    body = {"prompt": "a lighthouse", "model": "tinyfile", "seed": 7, "size": "64x72", "preset": "speed"}
    ask = {**body, "steps": 3, "guidance_scale": 2.5, "sampler": "euler_a", "negative_prompt": "fog"}

    job = _done(client, headers, client.post("/v1/jobs", json=ask, headers=headers).json()["id"])

    assert job["state"] == "succeeded", job
    assert (
        job["request"]["spec"] | {"steps": 3, "guidance_scale": 2.5, "sampler": "euler_a"}
        == job["request"]["spec"]
    )
    with _png(client, headers, job) as image:
        payload = json.loads(image.text["rendercost"])  # type: ignore[attr-defined]
        params = parse_parameters(image.text["parameters"])  # type: ignore[attr-defined]
    assert payload["model_hash"] == file_hash
    assert (payload["steps"], payload["guidance_scale"], payload["sampler"]) == (3, 2.5, "euler_a")
    assert (params.prompt, params.negative_prompt, params.seed) == ("a lighthouse", "fog", 7)
    assert (params.steps, params.width, params.height, params.cfg_scale) == (3, 64, 72, 2.5)
    assert (params.sampler, params.model_hash, params.model) == ("Euler a", file_hash[:10], "tinyfile")

    again = _done(client, headers, client.post("/v1/jobs", json=ask, headers=headers).json()["id"])
    other = _done(
        client, headers, client.post("/v1/jobs", json={**ask, "steps": 4}, headers=headers).json()["id"]
    )
    assert again["rendercost"]["cache"]["result"] == "hit"  # the cache keys on the overrides ...
    assert other["rendercost"]["cache"]["result"] == "miss"  # ... so other steps render anew
    with _png(client, headers, other) as image:
        assert parse_parameters(image.text["parameters"]).steps == 4  # type: ignore[attr-defined]


def test_out_of_range_overrides_are_400_naming_the_field(real_api: tuple[TestClient, dict[str, str]]) -> None:
    client, headers = real_api
    base = {"prompt": "a lighthouse", "seed": 1, "size": "64x64"}
    cases = {"steps": {"steps": 7}, "guidance_scale": {"guidance_scale": 31}, "sampler": {"sampler": "plms"}}
    for field, extra in cases.items():
        for path in ("/v1/jobs", "/v1/images/generations"):
            answer = client.post(path, json={**base, **extra}, headers=headers)
            assert answer.status_code == 400, (path, answer.text)
            assert answer.json()["error"]["param"] == field
    assert client.get("/v1/jobs", headers=headers).json()["data"] == []  # nothing was queued
