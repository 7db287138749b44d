"""``POST /v1/estimate``: the admission estimate per preset, device time, and the cache's $0 answer."""

from __future__ import annotations

from decimal import Decimal

from rendercost.admission.estimate import FALLBACK_PER_MEGAPIXEL
from rendercost.domain.presets import PRESETS
from rendercost.testing.waiting import wait_for_job
from tests.unit.api.conftest import Api

BODY = {"prompt": "a red fox", "size": "64x64", "n": 2, "seed": 7, "preset": "speed"}


def _render(api: Api) -> str:
    response = api.client.post("/v1/jobs", json=BODY, headers=api.headers())
    assert response.status_code == 202, response.text
    job_id = str(response.json()["id"])
    wait_for_job(lambda: api.server.services.store.get(job_id), what=job_id, timeout_s=20)
    return job_id


def _rows(api: Api, **body: object) -> dict[str, dict[str, object]]:
    response = api.client.post("/v1/estimate", json=body, headers=api.headers())
    assert response.status_code == 200, response.text
    return {row["preset"]: row for row in response.json()["estimates"]}


def test_every_preset_has_an_estimate_and_no_history_falls_back_per_megapixel(api: Api) -> None:
    rows = _rows(api, size="64x64", n=3)
    assert list(rows) == list(PRESETS)
    per_image = FALLBACK_PER_MEGAPIXEL * 64 * 64 / 1_000_000
    assert Decimal(str(rows["speed"]["per_image_usd"])) == per_image.quantize(Decimal("1e-10"))
    assert Decimal(str(rows["speed"]["cost_usd"])) == Decimal(str(rows["speed"]["per_image_usd"])) * 3
    assert rows["speed"]["seconds_per_image"] is None
    assert rows["speed"]["cached"] is False


def test_the_estimate_is_admissions_and_a_cached_repeat_costs_nothing(api: Api) -> None:
    job_id = _render(api)
    job = api.client.get(f"/v1/jobs/{job_id}", headers=api.headers()).json()
    per_image = Decimal(job["receipt"]["total_usd"]) / 2
    estimator = api.server.services.admission.budget.estimator  # type: ignore[union-attr]
    reserved = estimator.per_image(job["model"], "speed", 64, 64)
    assert reserved == per_image.quantize(Decimal("1e-10"))  # the recent average: this one render
    fresh = _rows(api, prompt="a red fox", size="64x64", n=2, presets=["speed"])  # random seed
    assert Decimal(str(fresh["speed"]["cost_usd"])) == reserved * 2
    seconds = fresh["speed"]["seconds_per_image"]
    assert isinstance(seconds, float) and seconds >= 0
    repeat = _rows(api, prompt="a red fox", size="64x64", n=2, seed=7, presets=["speed", "quality"])
    assert repeat["speed"]["cached"] is True and Decimal(str(repeat["speed"]["cost_usd"])) == 0
    assert repeat["quality"]["cached"] is False


def test_bad_input_is_a_400_with_its_code(api: Api) -> None:
    bad = api.client.post("/v1/estimate", json={"presets": ["turbo"]}, headers=api.headers())
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "unknown_preset"
    big = api.client.post("/v1/estimate", json={"n": 99}, headers=api.headers())
    assert big.status_code == 400 and big.json()["error"]["param"] == "n"
    assert api.client.post("/v1/estimate", json={}).status_code == 401
