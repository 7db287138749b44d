"""Speed switches on a tiny SDXL pipeline built here from small configs (CPU, float32).

int8/fp8 need torchao, an optional extra. Where it is not installed, ``apply_quantized`` puts a
stand-in at the import seam that gives each layer it is asked to quantize a new weight tensor, as
quantization does. What these tests check (which layers are chosen, that the 16-bit weights stay
untouched, which UNet a call runs, that LoRAs are honoured) does not depend on the arithmetic.
"""

from __future__ import annotations

import os
import sys
import types
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import torch
from diffusers import UNet2DConditionModel
from diffusers.models.attention_processor import (
    Attention,
    AttnProcessor,
    AttnProcessor2_0,
    FusedAttnProcessor2_0,
)

from rendercost.errors import ModelLoadFailed
from rendercost.execution.models.sdxl_configs import SDXL_BASE, SDXL_TINY, build_random_pipeline
from rendercost.execution.pipeline import speedups
from rendercost.settings import SpeedSwitches

ALL_OFF = SpeedSwitches(sdpa=False, channels_last=False, fuse_qkv=False, vae_tiling=False)


@pytest.fixture
def pipe() -> Any:
    torch.set_num_threads(1)
    return build_random_pipeline(SDXL_TINY, "cpu", torch.float32, seed=0)


@pytest.fixture
def reference() -> Any:
    """The same weights as ``pipe``, left alone."""
    return build_random_pipeline(SDXL_TINY, "cpu", torch.float32, seed=0)


def apply_quantized(pipeline: Any, switches: SpeedSwitches) -> str:
    """``apply_switches`` with torchao, or with the stand-in only while it runs (PEFT looks for torchao
    too, and must not find the stand-in later). Returns which one quantized."""
    try:
        import torchao.quantization  # noqa: F401
    except ImportError:
        pass
    else:
        speedups.apply_switches(pipeline, switches, "cpu")
        return "torchao"

    def quantize_(model: Any, _config: Any, filter_fn: Any) -> None:
        for name, module in model.named_modules():
            if filter_fn(module, name):
                module.weight = torch.nn.Parameter(module.weight.detach().clone(), requires_grad=False)

    fake = types.ModuleType("torchao.quantization")
    fake.quantize_ = quantize_  # type: ignore[attr-defined]
    fake.Int8DynamicActivationInt8WeightConfig = lambda: "int8"  # type: ignore[attr-defined]
    fake.Float8DynamicActivationFloat8WeightConfig = lambda granularity: "fp8"  # type: ignore[attr-defined]
    fake.PerRow = lambda: "per-row"  # type: ignore[attr-defined]
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(sys.modules, "torchao", types.ModuleType("torchao"))
        patch.setitem(sys.modules, "torchao.quantization", fake)
        speedups.apply_switches(pipeline, switches, "cpu")
    return "stand-in"


def denoise(pipeline: Any, side: int = 64) -> torch.Tensor:
    """Two denoising steps at CFG 1.0 from fixed embeddings and seed; the final latents."""
    generator = torch.Generator().manual_seed(7)
    embeds = torch.randn(1, 77, 32, generator=generator)
    pooled = torch.randn(1, 16, generator=generator)
    pipeline.set_progress_bar_config(disable=True)
    return pipeline(  # type: ignore[no-any-return]
        prompt_embeds=embeds,
        pooled_prompt_embeds=pooled,
        num_inference_steps=2,
        guidance_scale=1.0,
        width=side,
        height=side,
        output_type="latent",
        generator=torch.Generator().manual_seed(0),
    ).images


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


def processor_types(model: Any) -> set[type]:
    return {type(p) for p in model.attn_processors.values()}


@contextmanager
def calls(module: Any) -> Iterator[list[int]]:
    """Count forward calls of ``module`` inside the block."""
    seen: list[int] = []
    handle = module.register_forward_pre_hook(lambda *_: seen.append(1))
    try:
        yield seen
    finally:
        handle.remove()


def add_lora(unet: Any, like: Any = None) -> None:
    """A LoRA "style" on every attention projection with random (non-zero) A and B; copied from the
    UNet ``like`` when given, so two UNets carry the same adapter."""
    from peft import LoraConfig

    config = LoraConfig(r=4, lora_alpha=4, target_modules=["to_q", "to_k", "to_v"], init_lora_weights=False)
    unet.add_adapter(config, adapter_name="style")
    if like is not None:
        mine = dict(unet.named_parameters())
        with torch.no_grad():
            for name, value in like.named_parameters():
                if "lora_" in name:
                    mine[name].copy_(value)


# -- load-time switches -----------------------------------------------------------------------------


def test_sdpa_switch_picks_the_attention_processor_of_unet_and_vae(pipe: Any, reference: Any) -> None:
    speedups.apply_speedups(pipe, ALL_OFF, "cpu")
    assert processor_types(pipe.unet) == {AttnProcessor} and processor_types(pipe.vae) == {AttnProcessor}

    speedups.apply_speedups(reference, SpeedSwitches(), "cpu")
    assert processor_types(reference.unet) == {AttnProcessor2_0}
    assert processor_types(reference.vae) == {AttnProcessor2_0}
    assert rel(denoise(pipe), denoise(reference)) < 1e-4  # same maths, other kernels


def test_cuda_only_switches_are_off_on_cpu_and_say_why(pipe: Any) -> None:
    everything = SpeedSwitches(channels_last=True, fuse_qkv=True, int8=True, fp8=True)

    speedups.apply_speedups(pipe, everything, "cpu")  # int8 without torchao is no error: it is off here

    state = speedups.speed_state(pipe)
    assert state is not None and state.quantized_unet is None
    assert state.skipped == dict.fromkeys(["channels_last", "fuse_qkv", "int8", "fp8"], "CUDA only")
    assert processor_types(pipe.unet) == {AttnProcessor2_0}
    assert not any(hasattr(m, "to_qkv") for m in pipe.unet.modules())
    assert pipe.unet.conv_in.weight.is_contiguous()


def test_effective_switches_drop_fp8_on_devices_without_float8(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda _device=None: (8, 0))  # an A100

    effective, off = speedups.effective_switches(SpeedSwitches(fp8=True, int8=True), "cuda:0")

    assert off == {"fp8": "needs compute capability 8.9+"}
    assert not effective.fp8 and effective.int8 and effective.channels_last and effective.fuse_qkv


def test_cuda_code_paths_run_on_cpu_through_apply_switches(pipe: Any, reference: Any) -> None:
    speedups.apply_switches(pipe, SpeedSwitches(channels_last=True, fuse_qkv=True), "cpu")

    assert processor_types(pipe.unet) == {FusedAttnProcessor2_0}
    assert pipe.unet.conv_in.weight.is_contiguous(memory_format=torch.channels_last)
    assert pipe.vae.decoder.conv_in.weight.is_contiguous(memory_format=torch.channels_last)
    assert rel(denoise(pipe), denoise(reference)) < 1e-4


def test_fused_qkv_needs_sdpa(pipe: Any) -> None:
    speedups.apply_switches(pipe, SpeedSwitches(sdpa=False, fuse_qkv=True), "cpu")

    state = speedups.speed_state(pipe)
    assert state is not None and "sdpa is off" in state.skipped["fuse_qkv"]
    assert processor_types(pipe.unet) == {AttnProcessor}


def test_switches_apply_once_per_pipeline(pipe: Any) -> None:
    speedups.apply_speedups(pipe, SpeedSwitches(), "cpu")
    with pytest.raises(RuntimeError, match="already applied"):
        speedups.apply_speedups(pipe, SpeedSwitches(), "cpu")


def test_int8_without_torchao_is_a_clear_error(pipe: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torchao", None)
    monkeypatch.setitem(sys.modules, "torchao.quantization", None)

    with pytest.raises(ModelLoadFailed, match=r"rendercost\[gpu\].*RENDERCOST_SPEED__INT8=false"):
        speedups.apply_switches(pipe, SpeedSwitches(int8=True, sdpa=False, fuse_qkv=True), "cpu")

    assert speedups.speed_state(pipe) is None  # and nothing was half-applied:
    assert processor_types(pipe.unet) == {AttnProcessor2_0}
    assert not any(hasattr(m, "to_qkv") for m in pipe.unet.modules())


def test_compile_is_lazy_and_uses_the_cache_dir(
    pipe: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch._dynamo.config as dynamo_config
    import torch._inductor.config as inductor_config

    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", "placeholder")  # so the test's value is undone after
    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR")
    for name in ("fx_graph_cache", "conv_1x1_as_mm"):
        monkeypatch.setattr(inductor_config, name, getattr(inductor_config, name))
    monkeypatch.setattr(dynamo_config, "recompile_limit", dynamo_config.recompile_limit)

    speedups.apply_switches(pipe, SpeedSwitches(compile=True, compile_cache_dir=tmp_path / "cc"), "cpu")

    assert os.environ["TORCHINDUCTOR_CACHE_DIR"] == str(tmp_path / "cc")
    assert pipe.unet._compiled_call_impl is not None  # compiles at its first call, not here
    assert dynamo_config.recompile_limit >= 64


# -- quantization: which layers, and the size rule --------------------------------------------------


def test_quantized_layers_are_the_wide_image_token_layers_of_sdxl() -> None:
    with torch.device("meta"):
        unet = UNet2DConditionModel(**SDXL_BASE.unet)
    unet.fuse_qkv_projections()

    names = set(speedups.quantizable_linears(unet))

    block = "mid_block.attentions.0.transformer_blocks.0"
    assert {f"{block}.attn1.to_qkv", f"{block}.attn2.to_q", f"{block}.ff.net.0.proj"} <= names
    assert f"{block}.attn1.to_q" not in names  # unused once fused
    assert f"{block}.attn2.to_kv" not in names  # rows are the 77 text tokens
    assert "down_blocks.1.attentions.0.transformer_blocks.0.ff.net.0.proj" not in names  # 640 wide
    assert not any(n.startswith(("time_embedding", "add_embedding")) or "time_emb_proj" in n for n in names)
    modules = dict(unet.named_modules())
    assert all(min(modules[n].in_features, modules[n].out_features) >= 1280 for n in names)
    assert sum(modules[n].weight.numel() for n in names) > 1.7e9  # most of the UNet's weights


def test_int8_twin_shares_16_bit_weights_and_the_size_rule_routes_calls(pipe: Any, reference: Any) -> None:
    before = {k: v.clone() for k, v in pipe.unet.state_dict().items()}
    switches = SpeedSwitches(fuse_qkv=True, int8=True, int8_max_pixels=64 * 64)

    quantizer = apply_quantized(pipe, switches)

    state = speedups.speed_state(pipe)
    assert state is not None and state.quantized_unet is not None
    twin = state.quantized_unet
    quantized = set(speedups.quantizable_linears(pipe.unet))
    assert len(quantized) == state.quantized_layers > 0
    twin_modules, base_modules = dict(twin.named_modules()), dict(pipe.unet.named_modules())
    for name in quantized:
        assert twin_modules[name].weight is not base_modules[name].weight
    assert twin.conv_in.weight is pipe.unet.conv_in.weight  # unquantized tensors are shared
    after = pipe.unet.state_dict()
    assert all(torch.equal(after[k], v) for k, v in before.items())  # the 16-bit UNet is untouched

    speedups.prepare_for_size(pipe, switches, 64, 64, loras_active=False)
    with calls(twin) as twin_calls:
        at_limit = denoise(pipe, 64)
    assert len(twin_calls) == 2  # two steps, both on the quantized UNet

    speedups.prepare_for_size(
        pipe, switches, 64, 72, loras_active=False
    )  # above int8_max_pixels: the 16-bit path
    with calls(twin) as twin_calls:
        denoise(pipe, 64)
    assert twin_calls == []
    tolerance = 1e-4 if quantizer == "stand-in" else 0.1
    assert rel(at_limit, denoise(reference, 64)) < tolerance


def test_active_lora_runs_unfused_and_unquantized(pipe: Any, reference: Any) -> None:
    switches = SpeedSwitches(fuse_qkv=True, int8=True)
    apply_quantized(pipe, switches)
    state = speedups.speed_state(pipe)
    assert state is not None
    plain = denoise(reference)
    add_lora(reference.unet)
    add_lora(pipe.unet, like=reference.unet)

    speedups.prepare_for_size(pipe, switches, 64, 64, loras_active=True)
    with calls(state.quantized_unet) as twin_calls:
        with_lora = denoise(pipe)

    assert twin_calls == [] and processor_types(pipe.unet) == {AttnProcessor2_0}
    expected = denoise(reference)
    assert rel(expected, plain) > 1e-2  # the LoRA matters, so ignoring it would show
    assert rel(with_lora, expected) < 1e-4

    pipe.unet.disable_adapters()  # loaded but off: activate answers no LoRA, back to the fast path
    speedups.prepare_for_size(pipe, switches, 64, 64, loras_active=False)
    assert state.use_quantized and processor_types(pipe.unet) == {FusedAttnProcessor2_0}


# -- per-call size switches -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("width", "height", "tiling"),
    [(96, 96, True), (96, 95, False), (128, 64, False), (128, 96, True)],
)
def test_vae_tiles_at_or_above_the_threshold(pipe: Any, width: int, height: int, tiling: bool) -> None:
    switches = SpeedSwitches(vae_tiling_min_pixels=96 * 96)
    speedups.apply_speedups(pipe, switches, "cpu")

    speedups.prepare_for_size(pipe, switches, width, height, loras_active=False)

    assert pipe.vae.use_tiling is tiling


def test_vae_tiling_off_never_tiles_and_needs_no_applied_state(pipe: Any) -> None:
    pipe.vae.enable_tiling()
    speedups.prepare_for_size(
        pipe, SpeedSwitches(vae_tiling=False, vae_tiling_min_pixels=1), 2048, 2048, loras_active=False
    )
    assert pipe.vae.use_tiling is False


def test_deleting_the_lora_brings_fused_attention_back(pipe: Any) -> None:
    switches = SpeedSwitches(fuse_qkv=True)
    speedups.apply_switches(pipe, switches, "cpu")
    attention = next(m for m in pipe.unet.modules() if isinstance(m, Attention))
    add_lora(pipe.unet)

    speedups.prepare_for_size(pipe, switches, 64, 64, loras_active=True)
    assert isinstance(attention.processor, AttnProcessor2_0)

    pipe.unet.delete_adapters("style")
    speedups.prepare_for_size(pipe, switches, 64, 64, loras_active=False)
    assert isinstance(attention.processor, FusedAttnProcessor2_0)


def test_compile_cache_lives_in_the_data_dir_unless_configured(tmp_path: Path) -> None:
    from rendercost.settings import Settings

    assert Settings(data_dir=tmp_path).speed.compile_cache_dir == tmp_path / "compile-cache"
    chosen = tmp_path / "elsewhere"
    settings = Settings(data_dir=tmp_path, speed=SpeedSwitches(compile_cache_dir=chosen))
    assert settings.speed.compile_cache_dir == chosen
