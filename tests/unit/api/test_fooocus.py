"""Fooocus-API v1 clients, unchanged, against the real app (the model is the painter at its seam).

The calls are written as Fooocus-API's users write them (``json.dumps`` bodies, ``X-API-KEY``, plain
httpx); every answer is validated against the models below, written from Fooocus-API's response
models (``fooocusapi/models/common/response.py``, ``task.py``), not from rendercost's.
"""

from __future__ import annotations

import base64
import io
import json
from decimal import Decimal
from enum import StrEnum
from typing import Any

import httpx
import pytest
from PIL import Image
from pydantic import BaseModel, TypeAdapter

from rendercost.testing.waiting import wait_until
from tests.unit.api.conftest import Api, ApiFactory

URL = "/v1/generation/text-to-image"


# ---- Fooocus-API's response models (the contract old clients parse) ------------------------------


class GenerationFinishReason(StrEnum):
    success = "SUCCESS"
    queue_is_full = "QUEUE_IS_FULL"
    user_cancel = "USER_CANCEL"
    error = "ERROR"


class AsyncJobStage(StrEnum):
    waiting = "WAITING"
    running = "RUNNING"
    success = "SUCCESS"
    error = "ERROR"


class TaskType(StrEnum):
    text_2_img = "Text to Image"
    not_found = "Not Found"


class GeneratedImageResult(BaseModel):
    base64: str | None
    url: str | None
    seed: str
    finish_reason: GenerationFinishReason


class AsyncJobResponse(BaseModel):
    job_id: str = ""
    job_type: TaskType
    job_stage: AsyncJobStage
    job_progress: int
    job_status: str | None = None
    job_step_preview: str | None = None
    job_result: list[GeneratedImageResult] | None = None


class JobQueueInfo(BaseModel):
    running_size: int
    finished_size: int
    last_job_id: str | None


class JobHistoryInfo(BaseModel):
    job_id: str
    is_finished: bool = False


class JobHistoryResponse(BaseModel):
    queue: list[JobHistoryInfo] = []
    history: list[JobHistoryInfo] = []


class AllModelNamesResponse(BaseModel):
    model_config = {"protected_namespaces": ()}
    model_filenames: list[str]
    lora_filenames: list[str]


class StopResponse(BaseModel):
    msg: str


SyncAnswer = TypeAdapter(list[GeneratedImageResult])


def params(**overrides: Any) -> dict[str, Any]:
    """The request body of Fooocus-API's own examples, at a size the painter renders fast."""
    values: dict[str, Any] = {
        "prompt": "a girl in the ground",
        "negative_prompt": "",
        "style_selections": ["Fooocus Enhance", "Fooocus Sharp"],
        "performance_selection": "Speed",
        "aspect_ratios_selection": "64*64",
        "image_number": 1,
        "image_seed": -1,
        "sharpness": 2,
        "guidance_scale": 4,
        "require_base64": False,
        "async_process": False,
    }
    values.update(overrides)
    return values


def post(api: Api, body: dict[str, Any], key: str | None = None, **headers: str) -> httpx.Response:
    """``requests.post(url, data=json.dumps(params), headers=...)``: no Content-Type, as in their docs."""
    return api.client.post(URL, content=json.dumps(body), headers={"X-API-KEY": key or api.key, **headers})


def test_sync_base64_answers_images_with_their_seeds_and_receipts(api: Api) -> None:
    response = post(api, params(image_number=2, image_seed=1234, require_base64=True))
    assert response.status_code == 200, response.text
    images = SyncAnswer.validate_python(response.json())
    assert [image.seed for image in images] == ["1234", "1235"]  # a string, +1 per image
    assert all(image.finish_reason is GenerationFinishReason.success for image in images)
    picture = Image.open(io.BytesIO(base64.b64decode(images[0].base64 or "")))
    assert picture.size == (64, 64)  # "W*H" renders as asked
    assert "rendercost" in picture.text  # type: ignore[attr-defined]
    extras = [item["rendercost"] for item in response.json()]
    billed = Decimal(response.headers["X-Rendercost-Cost-USD"])
    assert sum(Decimal(extra["cost_usd"]) for extra in extras) == billed > 0
    assert extras[0]["styles_applied"] == ["Fooocus Enhance", "Fooocus Sharp"]
    assert set(extras[0]["ignored"]) == {"sharpness"}  # guidance_scale is acted on (Speed, Quality)
    job = api.client.get(f"/v1/jobs/{extras[0]['job_id']}", headers=api.headers()).json()
    assert job["preset"] == "speed" and job["request"]["extra"]["api"] == "fooocus"
    assert job["request"]["spec"]["prompt"].startswith("a girl in the ground")  # wrapped by the styles
    assert job["request"]["spec"]["prompt"] != "a girl in the ground"


def test_sync_url_answer_links_a_file_fetched_without_a_key(api: Api) -> None:
    response = post(api, params(save_extension="webp"))
    assert response.status_code == 200, response.text
    (image,) = SyncAnswer.validate_python(response.json())
    assert image.base64 is None and image.url is not None
    assert "/files/" in image.url
    fetched = api.client.get(httpx.URL(image.url).path)
    assert fetched.status_code == 200 and fetched.headers["content-type"] == "image/webp"
    forged = httpx.URL(image.url).path.replace("-0-", "-1-")
    assert api.client.get(forged).status_code == 404


def test_accept_image_png_answers_the_bytes(api: Api) -> None:
    response = post(api, params(image_number=3), Accept="image/png")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(response.content)).size == (64, 64)
    assert Decimal(response.headers["X-Rendercost-Cost-USD"]) > 0
    assert len(api.runner.plans) == 1 and len(api.runner.plans[0].items) == 1  # one image in PNG mode


def test_async_then_query_job_until_success(api: Api) -> None:
    response = post(api, params(async_process=True, image_seed=77, require_base64=True))
    assert response.status_code == 200, response.text
    queued = AsyncJobResponse.model_validate(response.json())
    assert queued.job_type is TaskType.text_2_img and queued.job_id

    def succeeded() -> AsyncJobResponse | None:
        answer = api.client.get(
            "/v1/generation/query-job", params={"job_id": queued.job_id}, headers={"X-API-KEY": api.key}
        )
        assert answer.status_code == 200
        job = AsyncJobResponse.model_validate(answer.json())
        return job if job.job_stage is AsyncJobStage.success else None

    done = wait_until(succeeded, what="query-job SUCCESS")
    assert done.job_progress == 100 and done.job_result is not None
    assert done.job_result[0].seed == "77" and done.job_result[0].base64
    missing = api.client.get(
        "/v1/generation/query-job", params={"job_id": "nope"}, headers={"X-API-KEY": api.key}
    )
    assert missing.status_code == 404
    assert AsyncJobResponse.model_validate(missing.json()).job_type is TaskType.not_found


def test_job_queue_and_history_list_the_callers_jobs(make_api: ApiFactory) -> None:
    api = make_api(workers=0)
    first = AsyncJobResponse.model_validate(post(api, params(async_process=True)).json())
    assert first.job_stage is AsyncJobStage.waiting
    second = AsyncJobResponse.model_validate(post(api, params(async_process=True)).json())
    headers = {"X-API-KEY": api.key}
    queue = JobQueueInfo.model_validate(api.client.get("/v1/generation/job-queue", headers=headers).json())
    assert (queue.running_size, queue.finished_size, queue.last_job_id) == (2, 0, second.job_id)
    stopped = api.client.delete(f"/v1/jobs/{first.job_id}", headers=api.headers())  # cancel by id
    assert stopped.status_code == 200
    history = JobHistoryResponse.model_validate(
        api.client.get("/v1/generation/job-history", headers=headers).json()
    )
    assert [item.job_id for item in history.queue] == [second.job_id]
    assert [(item.job_id, item.is_finished) for item in history.history] == [(first.job_id, True)]
    other = api.new_key("globex")
    theirs = api.client.get("/v1/generation/job-queue", headers={"X-API-KEY": other}).json()
    assert JobQueueInfo.model_validate(theirs).running_size == 0


def test_stop_answers_success(api: Api) -> None:
    response = api.client.post("/v1/generation/stop", headers={"X-API-KEY": api.key})
    assert response.status_code == 200
    assert StopResponse.model_validate(response.json()).msg == "success"


def test_engines_list_models_and_styles(api: Api) -> None:
    headers = {"X-API-KEY": api.key}
    models = AllModelNamesResponse.model_validate(
        api.client.get("/v1/engines/all-models", headers=headers).json()
    )
    assert models.model_filenames == ["default"]
    listed = api.client.get("/v1/engines/styles", headers=headers).json()
    styles = TypeAdapter(list[str]).validate_python(listed)
    assert {"Fooocus V2", "Fooocus Enhance", "Fooocus Sharp", "cinematic", "photographic"} <= set(styles)
    assert api.client.get("/ping").json() == "pong"


def test_a_bad_performance_selection_is_422_with_detail(api: Api) -> None:
    response = post(api, params(performance_selection="Turbo"))
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert detail[0]["loc"] == ["body", "performance_selection"]


def test_rendercost_refusals_name_the_fooocus_field(api: Api) -> None:
    response = post(api, params(aspect_ratios_selection="65*64"))
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "aspect_ratios_selection"]
    too_many = post(api, params(image_number=5))  # settings.max_n is 4 here
    assert too_many.status_code == 422
    assert too_many.json()["detail"][0]["loc"] == ["body", "image_number"]


@pytest.mark.parametrize("key", ["rc_wrong", ""])
def test_a_wrong_or_missing_api_key_is_403(api: Api, key: str) -> None:
    headers = {"X-API-KEY": key} if key else {}
    response = api.client.post(URL, content=json.dumps(params()), headers=headers)
    assert response.status_code == 403
    assert response.json()["detail"] == "Forbidden"
    assert response.json()["error"]["code"] == "invalid_api_key"  # rendercost's shape beside it
    assert api.client.get("/v1/generation/job-queue", headers=headers).status_code == 403


def test_queue_full_is_200_in_json_and_409_in_png_mode(make_api: ApiFactory) -> None:
    api = make_api(workers=0, max_queue_depth=0)
    sync = post(api, params())
    assert sync.status_code == 200
    (full,) = SyncAnswer.validate_python(sync.json())
    assert full.finish_reason is GenerationFinishReason.queue_is_full
    queued = post(api, params(async_process=True))
    assert queued.status_code == 200
    answer = AsyncJobResponse.model_validate(queued.json())
    assert answer.job_stage is AsyncJobStage.error and answer.job_result is not None
    assert answer.job_result[0].finish_reason is GenerationFinishReason.queue_is_full
    png = post(api, params(), Accept="image/png")
    assert png.status_code == 409 and png.text == "QUEUE_IS_FULL"


def test_unknown_model_style_and_lora_are_substituted_and_said(api: Api) -> None:
    body = params(
        base_model_name="juggernautXL_v8Rundiffusion.safetensors",
        style_selections=["Fooocus Sharp", "No Such Style"],
        loras=[{"model_name": "missing.safetensors", "weight": 0.5}],
    )
    response = post(api, body)
    assert response.status_code == 200, response.text
    extra = response.json()[0]["rendercost"]
    substituted = {(item["field"], item["asked"], item["used"]) for item in extra["substituted"]}
    assert substituted == {
        ("base_model_name", "juggernautXL_v8Rundiffusion.safetensors", "default"),
        ("style_selections", "No Such Style", None),
        ("loras.0.model_name", "missing.safetensors", None),
    }


def test_the_strict_setting_refuses_what_would_be_substituted(make_api: ApiFactory) -> None:
    api = make_api(fooocus_strict=True)
    response = post(api, params(style_selections=["No Such Style"]))
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "style_selections"]
    response = post(api, params(base_model_name="juggernautXL_v8Rundiffusion.safetensors"))
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "base_model_name"]


def test_fooocus_v2_asks_for_the_prompt_rewrite(api: Api) -> None:
    response = post(api, params(style_selections=["Fooocus V2"], image_seed=5))
    assert response.status_code == 200, response.text
    job_id = response.json()[0]["rendercost"]["job_id"]
    job = api.client.get(f"/v1/jobs/{job_id}", headers=api.headers()).json()
    rewrite = job["request"]["extra"]["rewrite"]
    assert rewrite["original_prompt"] == "a girl in the ground"
    assert job["request"]["spec"]["prompt"] == rewrite["revised_prompt"] != "a girl in the ground"


def test_an_exact_repeat_is_answered_from_the_result_cache_at_no_cost(api: Api) -> None:
    first = post(api, params(image_seed=900))
    again = post(api, params(image_seed=900, async_process=True))
    assert first.status_code == again.status_code == 200
    assert Decimal(first.headers["X-Rendercost-Cost-USD"]) > 0
    cached = AsyncJobResponse.model_validate(again.json())
    assert cached.job_stage is AsyncJobStage.success and cached.job_result is not None  # at once
    assert Decimal(again.headers["X-Rendercost-Cost-USD"]) == 0
    assert again.json()["rendercost"]["job"]["cache"]["result"] == "hit"
    assert len(api.runner.plans) == 1  # rendered once


def test_a_webhook_url_must_be_http(api: Api) -> None:
    response = post(api, params(webhook_url="ftp://example.com/hook"))
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "webhook_url"]


def test_a_webhook_to_an_internal_address_is_refused(make_api: ApiFactory) -> None:
    api = make_api(webhook_allowed_hosts=[])
    response = post(api, params(webhook_url="http://169.254.169.254/latest/meta-data/"))
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "webhook_url"]
    assert api.runner.plans == []  # nothing was rendered


def test_a_model_named_as_its_file_is_the_configured_model(api: Api) -> None:
    response = post(api, params(base_model_name="default.safetensors", style_selections=[]))
    assert response.status_code == 200, response.text
    assert response.json()[0]["rendercost"]["substituted"] == []


def test_the_tenants_budget_refuses_a_fooocus_render_with_402(make_api: ApiFactory) -> None:
    api = make_api()
    admin = api.new_key("ops", admin=True)
    first = post(api, params(image_seed=11))
    spent = Decimal(first.headers["X-Rendercost-Cost-USD"])
    assert spent > 0
    amount = format((spent * Decimal("1.5")).quantize(Decimal("1e-10")), "f")  # room for less than 2
    budget = {"amount_usd": amount, "period": "day"}
    assert api.client.put("/v1/budgets/acme", json=budget, headers=api.headers(admin)).status_code == 200
    refused = post(api, params(image_seed=12))
    assert refused.status_code == 402
    assert refused.json()["error"]["code"] == "budget_exceeded" and refused.json()["detail"]
