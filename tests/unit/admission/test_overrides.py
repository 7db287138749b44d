"""Per-request overrides in admission and the domain: limits, the estimate, the spec's hash and batches,
and the style step."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest
from sqlalchemy import Engine

from rendercost.admission.estimate import ESTIMATE_QUANTUM, CostEstimator
from rendercost.admission.styles import style_step
from rendercost.domain.presets import REQUEST_SAMPLERS, Sampler, get_preset, parse_sampler
from rendercost.domain.specs import RenderRequest, RenderSpec, check_overrides
from rendercost.errors import InvalidRequest, PromptTooLong

SPEC = RenderSpec(prompt="a fox", preset="speed", width=64, height=64, seed=3)


def test_the_estimate_follows_the_steps_and_passes_asked(migrated_engine: Engine) -> None:
    estimator = CostEstimator(migrated_engine, fallback_per_megapixel=Decimal("0.004"))
    speed = RenderRequest(spec=SPEC, n=2)
    base = estimator.estimate(speed)
    doubled = replace(speed, spec=replace(SPEC, steps=60))  # speed runs 30 steps
    no_cfg = replace(speed, spec=replace(SPEC, guidance_scale=1.0))  # one UNet pass, not two
    assert base > 0
    assert estimator.estimate(doubled) == (base / 2 * 2).quantize(ESTIMATE_QUANTUM) * 2
    assert estimator.estimate(no_cfg) == (base / 2 / 2).quantize(ESTIMATE_QUANTUM) * 2


@pytest.mark.parametrize(
    ("steps", "guidance", "param"),
    [(0, None, "steps"), (51, None, "steps"), (None, -1.0, "guidance_scale"), (None, 12.5, "guidance_scale")],
)
def test_out_of_range_overrides_name_the_field(steps: int | None, guidance: float | None, param: str) -> None:
    with pytest.raises(InvalidRequest) as refused:
        check_overrides(steps, guidance, max_steps=50, max_guidance_scale=12.0)
    assert refused.value.param == param


def test_the_request_samplers_parse_by_name_and_others_are_refused() -> None:
    assert [parse_sampler(s.value.upper()) for s in REQUEST_SAMPLERS] == list(REQUEST_SAMPLERS)
    assert {s.value for s in REQUEST_SAMPLERS} == {
        "dpmpp_2m_sde_karras",
        "dpmpp_2m",
        "euler_a",
        "euler",
        "ddim",
        "lcm",
    }
    with pytest.raises(InvalidRequest, match="choose one of") as refused:
        parse_sampler("euler_trailing")  # a preset's own sampler, not offered per request
    assert refused.value.param == "sampler"


def test_overrides_change_what_runs_the_hash_and_the_batch_but_none_keep_the_old_hash() -> None:
    overridden = replace(SPEC, steps=12, guidance_scale=2.0, sampler=Sampler.EULER_A)
    ran = overridden.run_preset()
    assert (ran.steps, ran.guidance_scale, ran.sampler, ran.name) == (12, 2.0, Sampler.EULER_A, "speed")
    assert SPEC.run_preset() == get_preset("speed")
    assert "steps" not in SPEC.to_dict()  # a spec without overrides hashes as before they existed
    assert RenderSpec.from_dict(overridden.to_dict()) == overridden
    hashes = {
        SPEC.content_hash("w"),
        overridden.content_hash("w"),
        replace(overridden, steps=13).content_hash("w"),
    }
    assert len(hashes) == 3
    assert overridden.batch_key != SPEC.batch_key


class _Catalog:
    def __init__(self, limit: int) -> None:
        self.limit = limit

    def names(self) -> list[str]:
        return ["default"]

    def preset_available(self, model: str, preset: str) -> bool:
        return True

    def lora_exists(self, model: str, name: str) -> bool:
        return False

    def check_prompt(self, model: str, prompt: str, *, param: str) -> None:
        if len(prompt.split()) > self.limit:
            raise PromptTooLong(f"{param} too long", param=param)


def test_the_style_step_applies_once_and_leaves_unknown_names_to_the_rewriter() -> None:
    request = RenderRequest(spec=SPEC, styles=("noir", "vivid", "Fooocus V2"))
    styled = style_step(_Catalog(limit=100), request)
    assert styled.styles_applied == ("noir",)
    assert styled.spec.prompt != SPEC.prompt and "fox" in styled.spec.prompt
    assert styled.rewrite_styles == ("vivid", "Fooocus V2")
    assert style_step(_Catalog(limit=100), styled) == styled  # applying again changes nothing
    assert RenderRequest.from_dict(styled.to_dict()) == styled


def test_a_styled_prompt_too_long_for_the_model_is_refused_naming_styles() -> None:
    with pytest.raises(PromptTooLong) as refused:
        style_step(_Catalog(limit=3), RenderRequest(spec=SPEC, styles=("Fooocus Masterpiece",)))
    assert refused.value.param == "styles"
