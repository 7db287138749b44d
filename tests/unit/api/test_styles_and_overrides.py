"""Styles from every door go through admission; overrides are recorded on the job as asked (real app,
the painter at the model's seam)."""

from __future__ import annotations

from typing import Any

from rendercost.admission.styles import apply_styles, shipped_styles
from rendercost.api.fooocus_schemas import Text2ImgRequest
from rendercost.api.fooocus_translate import _overrides
from rendercost.api.translate import Overrides
from tests.unit.api.conftest import Api
from tests.unit.api.test_fooocus import params, post
from tests.unit.api.test_jobs import wait_done


def _job(api: Api, job_id: str) -> dict[str, Any]:
    job: dict[str, Any] = api.client.get(f"/v1/jobs/{job_id}", headers=api.headers()).json()
    return job


def test_jobs_styles_are_applied_by_admission_and_recorded(api: Api) -> None:
    body = {
        "prompt": "a red fox",
        "negative_prompt": "people",
        "styles": ["Fooocus Photograph", "noir"],
        "seed": 4,
    }
    submitted = api.client.post("/v1/jobs", json=body, headers=api.headers())
    assert submitted.status_code == 202, submitted.text
    job = wait_done(api, submitted.json()["id"])

    want = apply_styles("a red fox", "people", ["Fooocus Photograph", "noir"])
    assert (job["request"]["spec"]["prompt"], job["request"]["spec"]["negative_prompt"]) == (
        want.prompt,
        want.negative_prompt,
    )
    assert want.prompt != "a red fox"
    assert job["request"]["styles"] == ["Fooocus Photograph", "noir"]
    assert job["request"]["styles_applied"] == ["Fooocus Photograph", "noir"]


def test_the_images_api_takes_styles_as_an_extension_and_openai_style_as_free_text(api: Api) -> None:
    body = {"prompt": "a red fox", "styles": ["watercolor"], "style": "vivid", "seed": 2, "size": "64x64"}
    answer = api.client.post("/v1/images/generations", json=body, headers=api.headers())
    assert answer.status_code == 200, answer.text
    job = _job(api, answer.json()["rendercost"]["job_id"])
    assert job["request"]["spec"]["prompt"] == apply_styles("a red fox", "", ["watercolor"]).prompt
    assert job["request"]["styles_applied"] == ["watercolor"]
    assert job["request"]["styles"] == ["vivid", "watercolor"]  # vivid: no template, left to the rewriter


def test_unknown_styles_are_400_naming_the_field(api: Api) -> None:
    jobs = api.client.post(
        "/v1/jobs", json={"prompt": "p", "styles": ["No Such Style"]}, headers=api.headers()
    )
    images = api.client.post(
        "/v1/images/generations", json={"prompt": "p", "styles": ["nope"]}, headers=api.headers()
    )
    assert (jobs.status_code, jobs.json()["error"]["param"]) == (400, "styles")
    assert (images.status_code, images.json()["error"]["param"]) == (400, "styles")


def test_the_api_lists_the_style_set(api: Api) -> None:
    listed = api.client.get("/v1/styles", headers=api.headers()).json()["data"]
    assert [style["name"] for style in listed] == shipped_styles().names()
    assert all("{prompt}" in style["prompt"] for style in listed)


def test_jobs_overrides_are_kept_on_the_spec(api: Api) -> None:
    body = {"prompt": "p", "seed": 1, "steps": 9, "guidance_scale": 6.5, "sampler": "DDIM"}
    job = wait_done(api, api.client.post("/v1/jobs", json=body, headers=api.headers()).json()["id"])
    spec = job["request"]["spec"]
    assert (spec["steps"], spec["guidance_scale"], spec["sampler"]) == (9, 6.5, "ddim")
    plain = wait_done(
        api, api.client.post("/v1/jobs", json={"prompt": "p", "seed": 1}, headers=api.headers()).json()["id"]
    )
    assert not {"steps", "guidance_scale", "sampler"} & set(plain["request"]["spec"])


def test_fooocus_guidance_steps_and_sampler_apply_to_speed_and_quality_only(api: Api) -> None:
    advanced = {"overwrite_step": 12, "sampler_name": "euler_ancestral"}
    speed = post(api, params(guidance_scale=6, advanced_params=advanced, image_seed=3))
    assert speed.status_code == 200, speed.text
    spec = _job(api, speed.json()[0]["rendercost"]["job_id"])["request"]["spec"]
    assert (spec["steps"], spec["guidance_scale"], spec["sampler"]) == (12, 6.0, "euler_a")

    default = post(api, params(image_seed=3))  # guidance_scale 4: the Speed preset's own CFG
    assert not {"steps", "guidance_scale", "sampler"} & set(
        _job(api, default.json()[0]["rendercost"]["job_id"])["request"]["spec"]
    )

    speed_lora_preset = Text2ImgRequest(prompt="p", guidance_scale=6, advanced_params=advanced)
    overrides, _ = _overrides(speed_lora_preset, "lightning", api.server.settings)
    assert overrides == Overrides()  # as in Fooocus, the speed-LoRA presets fix their own steps and CFG


def test_fooocus_styles_go_through_admission(api: Api) -> None:
    response = post(api, params(style_selections=["Fooocus Sharp", "Fooocus Enhance"], image_seed=8))
    assert response.status_code == 200, response.text
    extra = response.json()[0]["rendercost"]
    job = _job(api, extra["job_id"])
    want = apply_styles("a girl in the ground", "", ["Fooocus Sharp", "Fooocus Enhance"])
    assert job["request"]["spec"]["prompt"] == want.prompt
    assert job["request"]["styles_applied"] == extra["styles_applied"] == ["Fooocus Sharp", "Fooocus Enhance"]
