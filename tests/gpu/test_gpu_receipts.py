"""On a CUDA device: receipts stay exact, the speed switches apply, and the benchmark's CUDA path runs.

Every test here is marked ``gpu``; tests/gpu/conftest.py skips them where torch sees no CUDA device.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import torch

from rendercost.domain.costs import Stage
from rendercost.errors import ModelLoadFailed
from rendercost.execution.models.registry import ModelRegistry
from rendercost.execution.models.sdxl_configs import SDXL_TINY, build_random_pipeline
from rendercost.execution.pipeline import speedups
from rendercost.execution.pipeline.runner import DiffusersRunner
from rendercost.execution.pipeline.timing import StageTimer
from rendercost.settings import SpeedSwitches
from tests.fixtures.models import make_tiny_settings
from tests.unit.execution.plans import fewer_steps, plan, spec

pytestmark = pytest.mark.gpu
ROOT = Path(__file__).resolve().parents[2]


def _event() -> Any:
    event = torch.cuda.Event(enable_timing=True)
    event.record()
    return event


@contextmanager
def event_timed_forwards(module: Any) -> Iterator[list[list[Any]]]:
    """CUDA events around every forward call of ``module`` inside the block: [[start, end], ...]."""
    pairs: list[list[Any]] = []
    pre = module.register_forward_pre_hook(lambda *_: pairs.append([_event()]))
    post = module.register_forward_hook(lambda *_: pairs[-1].append(_event()))
    try:
        yield pairs
    finally:
        pre.remove()
        post.remove()


def event_seconds(pairs: list[list[Any]]) -> float:
    torch.cuda.synchronize()
    return sum(start.elapsed_time(end) for start, end in pairs) / 1000.0


def test_stage_timer_covers_asynchronous_cuda_work() -> None:
    timer = StageTimer("cuda")
    a = torch.randn(4096, 4096, device="cuda", dtype=torch.bfloat16)
    torch.cuda.synchronize()

    with timer.stage(Stage.DENOISE):
        start = _event()
        host = time.perf_counter()
        for _ in range(200):
            a = torch.tanh(a @ a)  # queued: the host returns long before the device finishes
        launch_s = time.perf_counter() - host
        end = _event()

    device_s = event_seconds([[start, end]])
    stage_s = timer.seconds[Stage.DENOISE]
    assert device_s > launch_s  # without a synchronize, wall time would miss the work
    assert device_s * 0.99 <= stage_s <= device_s * 1.2 + 0.05


def test_runner_stage_seconds_cover_cuda_event_timed_work(tmp_path: Path, tiny_model_dir: Path) -> None:
    settings = make_tiny_settings(tmp_path / "data", tiny_model_dir, device="cuda")
    registry = ModelRegistry(settings)
    runner = DiffusersRunner(registry, settings, preset_lookup=fewer_steps(3))
    pipeline = registry.get("default").pipeline
    runner.run(plan(spec("warm-up", preset="speed")))  # first call: cuDNN picks kernels

    with event_timed_forwards(pipeline.unet) as unet, event_timed_forwards(pipeline.vae.decoder) as decoder:
        fog = spec("a lighthouse in fog", preset="speed")
        result = runner.run(plan(fog, replace(fog, seed=9)))

    assert result.device.startswith("cuda")
    seconds = result.stage_seconds
    unet_s, decoder_s = event_seconds(unet), event_seconds(decoder)
    assert len(unet) >= 3 and len(decoder) >= 1
    assert seconds[Stage.DENOISE] >= unet_s > 0
    assert seconds[Stage.DECODE] >= decoder_s > 0


def _denoise(pipeline: Any) -> torch.Tensor:
    generator = torch.Generator().manual_seed(7)
    embeds = torch.randn(1, 77, 32, generator=generator).to("cuda", torch.bfloat16)
    pooled = torch.randn(1, 16, generator=generator).to("cuda", torch.bfloat16)
    pipeline.set_progress_bar_config(disable=True)
    return pipeline(  # type: ignore[no-any-return]
        prompt_embeds=embeds,
        pooled_prompt_embeds=pooled,
        num_inference_steps=2,
        guidance_scale=1.0,
        width=64,
        height=64,
        output_type="latent",
        generator=torch.Generator("cuda").manual_seed(0),
    ).images.float()


def test_default_switches_apply_on_cuda_and_keep_the_numbers() -> None:
    pipe = build_random_pipeline(SDXL_TINY, "cuda", torch.bfloat16)
    reference = build_random_pipeline(SDXL_TINY, "cuda", torch.bfloat16)

    speedups.apply_speedups(pipe, SpeedSwitches(), "cuda")

    state = speedups.speed_state(pipe)
    assert state is not None and {"sdpa", "fuse_qkv", "channels_last"} <= set(state.applied)
    assert pipe.unet.conv_in.weight.is_contiguous(memory_format=torch.channels_last)
    expected = _denoise(reference)
    assert float((_denoise(pipe) - expected).norm() / expected.norm()) < 0.05


def test_int8_and_fp8_build_a_quantized_twin_where_torchao_is_installed() -> None:
    pipe = build_random_pipeline(SDXL_TINY, "cuda", torch.bfloat16)
    switches = SpeedSwitches(int8=True, fp8=True)
    try:
        import torchao  # noqa: F401
    except ImportError:
        with pytest.raises(ModelLoadFailed, match="torchao"):
            speedups.apply_speedups(pipe, switches, "cuda")
        return

    speedups.apply_speedups(pipe, switches, "cuda")

    state = speedups.speed_state(pipe)
    assert state is not None and state.quantized_unet is not None and state.quantized_layers > 0
    fp8 = torch.cuda.get_device_capability() >= speedups.FP8_MIN_CAPABILITY
    assert ("fp8" in state.applied) is fp8 and ("int8" in state.applied) is not fp8
    speedups.prepare_for_size(pipe, switches, 64, 64, loras_active=False)
    assert state.use_quantized
    assert torch.isfinite(_denoise(pipe)).all()


def test_bench_tiny_runs_on_cuda_with_events_and_peak_memory(tmp_path: Path) -> None:
    out = tmp_path / "gpu.json"
    done = subprocess.run(
        [sys.executable, "bench/gpu_throughput.py", "--tiny", "--device", "cuda", "--json", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=540,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [row for row in json.loads(out.read_text())["rows"] if row["status"] == "ok"]
    assert rows and all(row["peak_mem_gib"] > 0 and row["images_per_s"] > 0 for row in rows)
