"""Every preset's sampler maps to the diffusers noise scheduler and options the reference names."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from diffusers import (
    DPMSolverMultistepScheduler,
    DPMSolverSDEScheduler,
    EulerDiscreteScheduler,
    LCMScheduler,
)

from rendercost.domain.presets import PRESETS
from rendercost.execution.pipeline.noise_schedulers import bind_seeds, make_noise_scheduler


@pytest.fixture(scope="module")
def base_config(tiny_model_dir: Path) -> dict[str, Any]:
    return dict(EulerDiscreteScheduler.from_pretrained(str(tiny_model_dir), subfolder="scheduler").config)


EXPECTED: dict[str, tuple[type[Any], dict[str, Any]]] = {
    "quality": (
        DPMSolverMultistepScheduler,
        {"algorithm_type": "sde-dpmsolver++", "use_karras_sigmas": True},
    ),
    "speed": (DPMSolverMultistepScheduler, {"algorithm_type": "sde-dpmsolver++", "use_karras_sigmas": True}),
    "extreme-speed": (LCMScheduler, {}),
    "lightning": (EulerDiscreteScheduler, {"timestep_spacing": "trailing"}),
    "hyper-sd": (DPMSolverSDEScheduler, {"use_karras_sigmas": True}),
}


@pytest.mark.parametrize("preset_name", sorted(PRESETS))
def test_preset_sampler_builds_its_noise_scheduler(preset_name: str, base_config: dict[str, Any]) -> None:
    expected_class, expected_options = EXPECTED[preset_name]

    noise_scheduler = make_noise_scheduler(PRESETS[preset_name].sampler, base_config)

    assert type(noise_scheduler) is expected_class
    for key, value in expected_options.items():
        assert noise_scheduler.config[key] == value
    # the model's training schedule is kept
    assert noise_scheduler.config["beta_schedule"] == base_config["beta_schedule"]
    assert noise_scheduler.config["beta_end"] == base_config["beta_end"]


def test_each_call_gets_a_fresh_noise_scheduler(base_config: dict[str, Any]) -> None:
    sampler = PRESETS["speed"].sampler

    assert make_noise_scheduler(sampler, base_config) is not make_noise_scheduler(sampler, base_config)


def test_sde_sampler_gets_one_brownian_seed_per_image(base_config: dict[str, Any]) -> None:
    noise_scheduler = make_noise_scheduler(PRESETS["hyper-sd"].sampler, base_config)

    bind_seeds(noise_scheduler, [7, 8, 9])

    assert noise_scheduler.noise_sampler_seed == [7, 8, 9]
