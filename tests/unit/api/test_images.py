"""POST /v1/images/generations: OpenAI's shape, plus the rendercost cost object."""

from __future__ import annotations

import base64
from decimal import Decimal

from tests.unit.api.conftest import Api

GEN = "/v1/images/generations"


def test_b64_json_returns_the_images_and_their_cost(api: Api) -> None:
    body = {"prompt": "a cat", "n": 2, "response_format": "b64_json", "size": "64x64", "seed": 7}
    response = api.client.post(GEN, json=body, headers=api.headers())
    assert response.status_code == 200
    payload = response.json()
    assert isinstance(payload["created"], int)
    assert len(payload["data"]) == 2
    assert set(payload["data"][0]) == {"b64_json"}  # no null url / revised_prompt
    png = base64.b64decode(payload["data"][0]["b64_json"])
    assert png.startswith(b"\x89PNG")
    cost = payload["rendercost"]
    assert cost["job_id"].startswith("job_")
    assert Decimal(cost["cost_usd"]) == sum(Decimal(s["cost_usd"]) for s in cost["stages"]) > 0
    assert api.runner.calls == [2]  # both images in one pipeline call


def test_url_points_at_the_authenticated_image(api: Api) -> None:
    payload = api.client.post(
        GEN, json={"prompt": "a dog", "output_format": "jpeg"}, headers=api.headers()
    ).json()
    url = payload["data"][0]["url"]
    assert url.startswith("http://testserver/v1/images/job_")
    assert api.client.get(url).status_code == 401
    raw = api.client.get(url, headers={**api.headers(), "Accept": "image/*"})
    assert raw.headers["content-type"] == "image/jpeg" and raw.content[:2] == b"\xff\xd8"
    job = api.client.get(f"/v1/jobs/{payload['rendercost']['job_id']}", headers=api.headers()).json()
    assert job["rendercost"] == payload["rendercost"]  # job results carry the same object


def test_openai_model_names_and_quality_map_to_presets(api: Api) -> None:
    for quality, preset in (("high", "quality"), ("standard", "speed"), ("low", "speed")):
        # the test settings configure no speed LoRA, so "low" falls back to speed
        body = {"prompt": "q", "model": "dall-e-3", "quality": quality}
        cost = api.client.post(GEN, json=body, headers=api.headers()).json()["rendercost"]
        job = api.client.get(f"/v1/jobs/{cost['job_id']}", headers=api.headers()).json()
        assert (job["model"], job["preset"]) == ("default", preset)


def test_openai_size_maps_to_sdxl_and_auto_to_default(api: Api) -> None:
    from rendercost.api.translate import openai_size

    settings = api.server.settings
    assert openai_size(settings, "1792x1024") == (1344, 768)
    assert openai_size(settings, "1536x1024") == (1216, 832)
    assert openai_size(settings, "auto") == (64, 64)
    assert openai_size(settings, None) == (64, 64)
    assert openai_size(settings, "128x64") == (128, 64)


def test_style_and_user_are_kept_on_the_job(api: Api) -> None:
    body = {"prompt": "p", "style": "vivid", "user": "u-17"}
    cost = api.client.post(GEN, json=body, headers=api.headers()).json()["rendercost"]
    job = api.client.get(f"/v1/jobs/{cost['job_id']}", headers=api.headers()).json()
    assert job["request"]["styles"] == ["vivid"]
    assert job["request"]["extra"]["user"] == "u-17"
