"""The diffusers runner on the tiny model: presets end to end, one UNet pass at CFG 1.0, batches that
equal single renders, byte-identical repeats, stage timings and clear errors."""

from __future__ import annotations

import io
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from rendercost.domain.costs import DEVICE_STAGES
from rendercost.domain.presets import PRESETS
from rendercost.domain.specs import LoraRef, OutputFormat
from rendercost.errors import InvalidRequest, PromptTooLong, UnknownLora, UnknownModel, UnknownPreset
from rendercost.execution.models.loras import lora_layers
from rendercost.execution.models.registry import ModelRegistry
from rendercost.execution.pipeline import speedups
from rendercost.execution.pipeline.runner import DiffusersRunner
from tests.fixtures.models import make_tiny_settings
from tests.unit.execution.plans import fewer_steps, forward_batches, pixels, plan, spec

# UNet passes per image per sampler step: DPM++ SDE is second order (two passes per step but the last).
UNET_CALLS = {"quality": 60, "speed": 30, "extreme-speed": 8, "lightning": 4, "hyper-sd": 2 * 4 - 1}
SPEED_ADAPTER_PREFIX = {
    "extreme-speed": "tiny_lcm_",
    "lightning": "tiny_lightning_",
    "hyper-sd": "tiny_hyper_sd_",
}


@pytest.fixture(scope="module")
def two_step_runner(tiny_registry: ModelRegistry) -> DiffusersRunner:
    """The shared registry, with every preset cut to 2 steps (through the runner's test seam)."""
    return DiffusersRunner(tiny_registry, tiny_registry.settings, preset_lookup=fewer_steps(2))


@pytest.mark.parametrize("preset_name", sorted(PRESETS))
def test_every_preset_renders_at_its_real_step_count(
    preset_name: str, tiny_runner: DiffusersRunner, tiny_registry: ModelRegistry
) -> None:
    preset = PRESETS[preset_name]
    pipeline = tiny_registry.get("default").pipeline
    steps: list[tuple[int, int]] = []

    with forward_batches(pipeline.unet) as unet_batches:
        result = tiny_runner.run(
            plan(spec(preset=preset_name)), on_step=lambda done, total: steps.append((done, total))
        )

    image = Image.open(io.BytesIO(result.images[0].data))
    assert (image.format, image.size) == ("PNG", (64, 64))
    assert len(unet_batches) == UNET_CALLS[preset_name]
    assert set(unet_batches) == {2 if preset.uses_cfg else 1}
    assert steps[-1] == (UNET_CALLS[preset_name], UNET_CALLS[preset_name])
    assert set(result.stage_seconds) == set(DEVICE_STAGES)
    assert all(seconds >= 0 for seconds in result.stage_seconds.values())
    assert result.device == "cpu" and result.batch_id == "batch-1"
    if preset.speed_lora is not None:
        [active] = tiny_registry.get("default").adapters.active
        assert active.startswith(SPEED_ADAPTER_PREFIX[preset_name])


@pytest.mark.parametrize(("preset_name", "per_image"), [("lightning", 1), ("speed", 2)])
def test_unet_runs_once_per_image_at_cfg_one_and_twice_with_cfg(
    preset_name: str, per_image: int, two_step_runner: DiffusersRunner, tiny_registry: ModelRegistry
) -> None:
    pipeline = tiny_registry.get("default").pipeline
    specs = [spec(f"prompt {i}", preset=preset_name, seed=i, negative_prompt="blurry") for i in range(3)]

    with (
        forward_batches(pipeline.unet) as unet_batches,
        forward_batches(pipeline.text_encoder) as text_batches,
    ):
        two_step_runner.run(plan(*specs))

    assert unet_batches == [3 * per_image] * 2
    assert text_batches == [3] * per_image  # the negative prompt is encoded only with CFG


@pytest.mark.parametrize("preset_name", ["hyper-sd", "speed"])  # Brownian-tree and generator noise
def test_each_image_of_a_batch_equals_it_rendered_alone(
    preset_name: str, two_step_runner: DiffusersRunner
) -> None:
    specs = [
        spec("a castle at dusk", preset=preset_name, seed=11),
        spec("a bowl of ramen, studio lighting", preset=preset_name, seed=12),
        spec("an owl in a dark forest", preset=preset_name, seed=99),
    ]

    batched = pixels(two_step_runner.run(plan(*specs)))
    alone = [pixels(two_step_runner.run(plan(s)))[0] for s in specs]

    for together, single in zip(batched, alone, strict=True):
        assert np.abs(together - single).max() <= 2
    assert np.abs(batched[0] - batched[1]).max() > 2  # different prompts and seeds differ


def test_same_spec_twice_gives_identical_bytes_in_every_format(two_step_runner: DiffusersRunner) -> None:
    specs = [spec(seed=5, output_format=fmt) for fmt in OutputFormat]

    first = two_step_runner.run(plan(*specs))
    second = two_step_runner.run(plan(*specs))

    assert [image.data for image in first.images] == [image.data for image in second.images]
    assert [image.media_type for image in first.images] == ["image/png", "image/webp", "image/jpeg"]
    assert [Image.open(io.BytesIO(image.data)).format for image in first.images] == ["PNG", "WEBP", "JPEG"]
    assert [image.seed for image in first.images] == [5, 5, 5]


def test_style_loras_change_the_image_and_never_leak_into_later_renders(
    two_step_runner: DiffusersRunner, tiny_registry: ModelRegistry, tiny_model_dir: Path
) -> None:
    lora_dir = tiny_registry.settings.resolved_lora_dirs[-1]
    lora_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy(tiny_model_dir / "loras" / "tiny-lightning.safetensors", lora_dir / "test-style.safetensors")
    plain = spec(preset="speed", seed=3)
    styled = replace(plain, loras=(LoraRef("test-style", 1.0),))

    before = two_step_runner.run(plan(plain)).images[0].data
    with_style = two_step_runner.run(plan(styled)).images[0].data
    two_step_runner.run(plan(spec(preset="lightning")))  # a speed LoRA too
    after = two_step_runner.run(plan(plain)).images[0].data

    assert with_style != before
    assert after == before


def test_a_merged_speed_lora_renders_as_the_unmerged_one_and_switching_back_is_exact(
    tmp_path: Path, tiny_model_dir: Path
) -> None:
    runners: dict[bool, tuple[ModelRegistry, DiffusersRunner]] = {}
    for merge in (True, False):
        settings = make_tiny_settings(
            tmp_path / f"data-{merge}", tiny_model_dir, speed={"merge_loras": merge}
        )
        registry = ModelRegistry(settings)
        runners[merge] = (registry, DiffusersRunner(registry, settings, preset_lookup=fewer_steps(2)))
    draft, plain = spec(preset="lightning", seed=4), spec(preset="speed", seed=4)
    registry, merged = runners[True]
    model = registry.get("default")
    unet = model.pipeline.unet

    before = merged.run(plan(plain)).images[0].data
    weights = {name: tensor.clone() for name, tensor in unet.state_dict().items() if "lora_" not in name}
    for _ in range(12):  # a night's switches between presets: each unmerge restores the weights exactly
        merged.run(plan(draft))
        merged.run(plan(spec(preset="hyper-sd", seed=4)))
    merged_draft = pixels(merged.run(plan(draft)))[0]
    assert model.adapters.merged and lora_layers(unet) == []  # merged, and the PEFT layers taken out
    assert merged.run(plan(plain)).images[0].data == before
    assert not model.adapters.merged and lora_layers(unet) == []
    assert all(torch.equal(unet.state_dict()[name], tensor) for name, tensor in weights.items())  # exact

    _, unmerged = runners[False]
    assert np.abs(merged_draft - pixels(unmerged.run(plan(draft)))[0]).max() <= 2
    unmerged_model = runners[False][0].get("default")
    assert not unmerged_model.adapters.merged and lora_layers(unmerged_model.pipeline.unet) != []


def test_a_merged_lora_with_its_peft_layers_out_still_turns_fused_attention_off(
    tmp_path: Path, tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No PEFT layer is left in the UNet while a LoRA is merged, so the speed switches must learn that a
    LoRA shapes the output from the adapters, not by looking for PEFT layers."""
    monkeypatch.setattr(speedups, "effective_switches", lambda switches, device: (switches, {}))
    settings = make_tiny_settings(tmp_path / "data", tiny_model_dir, speed={"fuse_qkv": True})
    registry = ModelRegistry(settings)
    runner = DiffusersRunner(registry, settings, preset_lookup=fewer_steps(2))
    draft, plain = spec(preset="lightning", seed=4), spec(preset="speed", seed=4)
    before = runner.run(plan(draft)).images[0].data
    state = speedups.speed_state(registry.get("default").pipeline)
    assert state is not None and state.fuse_wanted

    fused_after: dict[str, bool] = {}
    for name, render in (("speed", plain), ("lightning", draft)):
        runner.run(plan(render))
        fused_after[name] = state.fused_now

    assert fused_after == {"speed": True, "lightning": False}
    assert lora_layers(registry.get("default").pipeline.unet) == []
    assert runner.run(plan(draft)).images[0].data == before


def test_warm_adapters_are_bounded_least_recently_used_first(tmp_path: Path, tiny_model_dir: Path) -> None:
    settings = make_tiny_settings(tmp_path / "data", tiny_model_dir, warm_loras=2)
    registry = ModelRegistry(settings)
    runner = DiffusersRunner(registry, settings, preset_lookup=fewer_steps(1))

    for preset_name in ("extreme-speed", "lightning", "hyper-sd"):
        runner.run(plan(spec(preset=preset_name)))

    loaded = registry.get("default").adapters.loaded
    assert [name.rsplit("_", 1)[0] for name in loaded] == ["tiny_lightning", "tiny_hyper_sd"]


def test_bad_plans_are_refused_before_any_device_work(two_step_runner: DiffusersRunner) -> None:
    cases: list[tuple[type[Exception], str, list[object]]] = [
        (InvalidRequest, "must share", [spec(width=64), spec(width=128)]),
        (InvalidRequest, "multiples of 8", [spec(width=100)]),
        (InvalidRequest, "between 64 and 2048", [spec(width=32)]),
        (UnknownPreset, "unknown preset", [spec(preset="turbo")]),
        (UnknownModel, "unknown model", [spec(model="sdxl")]),
        (UnknownLora, "unknown LoRA", [spec(loras=(LoraRef("nope"),))]),
        (PromptTooLong, "prompt is 82 tokens", [spec(" ".join(["a cat"] * 40))]),
        (PromptTooLong, "negative_prompt", [spec(preset="speed", negative_prompt=" ".join(["a cat"] * 40))]),
        (InvalidRequest, "seed", [spec(seed=-1)]),
    ]
    for error, message, specs in cases:
        with pytest.raises(error, match=message):
            two_step_runner.run(plan(*specs))  # type: ignore[arg-type]
    with pytest.raises(InvalidRequest, match="at least one"):
        two_step_runner.run(plan())


def test_negative_prompt_is_not_checked_when_it_is_never_encoded(two_step_runner: DiffusersRunner) -> None:
    long_negative = " ".join(["a cat"] * 40)

    result = two_step_runner.run(plan(spec(preset="lightning", negative_prompt=long_negative)))

    assert len(result.images) == 1
