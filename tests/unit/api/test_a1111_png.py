"""A rendered PNG's A1111 ``parameters`` text parses back to the request (real app, painter runner)."""

from __future__ import annotations

import io

from PIL import Image

from rendercost.artifacts.a1111 import parse_parameters
from tests.unit.api.conftest import Api
from tests.unit.api.test_jobs import wait_done


def test_a_rendered_png_parses_back_to_the_request(api: Api) -> None:
    body = {"prompt": "a lighthouse at dusk", "negative_prompt": "fog", "seed": 99, "size": "64x72"}
    job = api.client.post("/v1/jobs", json={**body, "preset": "quality"}, headers=api.headers()).json()
    done = wait_done(api, job["id"])
    image_url = done["results"][0]["url"]
    raw = api.client.get(image_url, headers={**api.headers(), "Accept": "image/png"}).content
    with Image.open(io.BytesIO(raw)) as image:
        params = parse_parameters(image.text["parameters"])  # type: ignore[attr-defined]
    assert (params.prompt, params.negative_prompt, params.seed) == ("a lighthouse at dusk", "fog", 99)
    assert (params.steps, params.width, params.height) == (60, 64, 72)
    assert (params.sampler, params.cfg_scale, params.model) == ("DPM++ 2M SDE Karras", 4.0, "default")
