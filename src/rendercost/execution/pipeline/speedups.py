"""Runner speed switches: SDPA, channels_last, fused QKV, torch.compile, int8/fp8, VAE tiling.

The runner calls ``apply_speedups`` once after loading a pipeline and ``prepare_for_size`` before every
call. ``apply_speedups`` keeps only the switches that help on the device (``effective_switches``) and
hands them to ``apply_switches``, which applies exactly what it is given; the benchmark calls
``apply_switches`` directly so a CPU run exercises the CUDA code paths too.

Size rule for quantization. Quantized weights live in a *twin* UNet: a copy that shares every tensor
with the 16-bit UNet except the quantized linear weights (about 1.8 GB of int8 for SDXL-base beside its
5.1 GB of bf16 weights). ``pipeline.unet`` stays the 16-bit module, and its ``forward`` routes each call
to the twin or to its own weights. ``prepare_for_size`` picks the 16-bit path above ``int8_max_pixels``
and whenever a LoRA adapter is active on the UNet: adapters load onto the 16-bit module (never the
twin), and the fused QKV projection would not see LoRA layers on ``to_q``/``to_k``/``to_v``, so such
calls run unfused and unquantized (loaded but disabled adapters do not count). Keeping both variants
resident makes the switch free per call; the price is the twin's memory. Merging a LoRA into the base
weights and then unloading it (``fuse_lora`` + ``unload_lora_weights``) leaves the fused projections
and the twin stale: load a fresh pipeline and apply the switches again instead.
"""

from __future__ import annotations

import copy
import importlib
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rendercost.errors import ModelLoadFailed
from rendercost.settings import SpeedSwitches

logger = logging.getLogger(__name__)

CUDA_ONLY = ("channels_last", "fuse_qkv", "int8", "fp8")  # on CPU these are off in apply_speedups
FP8_MIN_CAPABILITY = (8, 9)  # Ada / Hopper and newer have float8 tensor cores
_STATE_ATTR = "_rendercost_speed"
# Linear layers whose rows are the batch (time and pooled-text embeddings) or the 77 text tokens
# (cross-attention keys/values): too few rows for dynamic activation quantization to pay for itself.
_FEW_ROW_LAYERS = (
    "time_embedding.",
    "add_embedding.",
    "time_emb_proj",
    "attn2.to_k",
    "attn2.to_v",
    "attn2.to_kv",
)


@dataclass
class SpeedState:
    """What the switches did to one pipeline; ``prepare_for_size`` reads and updates it per call."""

    applied: list[str] = field(default_factory=list)  # switches that took effect, in order
    skipped: dict[str, str] = field(default_factory=dict)  # switch -> why it did not apply
    quantized_unet: Any = None  # the twin UNet with int8/fp8 linears, or None
    quantized_layers: int = 0  # linear layers quantized in the twin
    base_forward: Callable[..., Any] | None = None  # the 16-bit UNet's own forward (compiled if on)
    use_quantized: bool = False  # route the next call to the twin
    fuse_wanted: bool = False  # fused QKV was applied; unfused only while a LoRA is active
    fused_now: bool = False  # fused processors are installed on the 16-bit UNet


def speed_state(pipeline: Any) -> SpeedState | None:
    """The state ``apply_switches`` left on ``pipeline``, or None when it was never called."""
    state = getattr(pipeline, _STATE_ATTR, None)
    return state if isinstance(state, SpeedState) else None


def effective_switches(switches: SpeedSwitches, device: str) -> tuple[SpeedSwitches, dict[str, str]]:
    """The switches that apply on ``device``, and the reason each dropped one is off.

    On CPU the CUDA-only switches are off. fp8 needs a CUDA device of compute capability 8.9 or newer.
    Thresholds and compile settings pass through unchanged.
    """
    off: dict[str, str] = {}
    if not device.startswith("cuda"):
        off.update({name: "CUDA only" for name in CUDA_ONLY if getattr(switches, name)})
    elif switches.fp8 and not _supports_fp8(device):
        off["fp8"] = f"needs compute capability {FP8_MIN_CAPABILITY[0]}.{FP8_MIN_CAPABILITY[1]}+"
    return switches.model_copy(update=dict.fromkeys(off, False)), off


def apply_speedups(pipeline: Any, switches: SpeedSwitches, device: str) -> None:
    """Apply the load-time switches that help on ``device`` to ``pipeline`` in place (once per pipeline).

    Raises ``ModelLoadFailed`` when int8 or fp8 is asked for and torchao is not installed.
    """
    effective, off = effective_switches(switches, device)
    apply_switches(pipeline, effective, device)
    state = speed_state(pipeline)
    if state is not None:
        state.skipped.update(off)
    for name, reason in off.items():
        logger.info("speed switch %s is off on %s: %s", name, device, reason)


def apply_switches(pipeline: Any, switches: SpeedSwitches, device: str) -> None:
    """Apply exactly ``switches`` to ``pipeline`` in place, with no device policy (fp8 aside).

    Order matters: attention processors, then fused projections, then memory format, then the quantized
    twin (a copy of the finished 16-bit UNet), then compilation of both. Raises ``ModelLoadFailed``,
    before changing anything, when int8 or fp8 is asked for and torchao is not installed.
    """
    if speed_state(pipeline) is not None:
        raise RuntimeError("speed switches were already applied to this pipeline")
    import torch

    state = SpeedState()
    if switches.fp8 and not _supports_fp8(device):
        state.skipped["fp8"] = f"{device} lacks float8 support"
    use_fp8 = switches.fp8 and "fp8" not in state.skipped
    torchao = _torchao() if use_fp8 or switches.int8 else None
    unet, vae = pipeline.unet, pipeline.vae
    _set_attention(unet, vae, sdpa=switches.sdpa)
    state.applied.append("sdpa" if switches.sdpa else "plain_attention")
    if switches.fuse_qkv:
        if switches.sdpa:
            unet.fuse_qkv_projections()
            state.fuse_wanted = state.fused_now = True
            state.applied.append("fuse_qkv")
        else:
            state.skipped["fuse_qkv"] = "fused projections use SDPA kernels; sdpa is off"
    if switches.channels_last:
        unet.to(memory_format=torch.channels_last)
        vae.to(memory_format=torch.channels_last)
        state.applied.append("channels_last")
    if torchao is not None:
        _make_quantized_twin(unet, torchao, use_fp8=use_fp8, state=state)
        if use_fp8 and switches.int8:
            state.skipped["int8"] = "fp8 is on and supported; it replaces int8"
    if switches.compile:
        _compile(unet, switches, state)
    if state.quantized_unet is not None:
        _install_router(unet, state)
    setattr(pipeline, _STATE_ATTR, state)
    logger.info("speed switches applied: %s", ", ".join(state.applied))


def prepare_for_size(
    pipeline: Any, switches: SpeedSwitches, width: int, height: int, *, loras_active: bool
) -> None:
    """Apply the per-call switches that depend on the image size and on whether a LoRA shapes the
    output (``loras_active``: the runner has it from ``WarmAdapters.activate``, merged sets included).

    VAE tiling is on at or above ``vae_tiling_min_pixels``. The quantized UNet is used up to
    ``int8_max_pixels`` inclusive and only while no LoRA is active; otherwise the call runs the 16-bit
    UNet. Fused QKV projections give way to plain ones while a LoRA is active.
    """
    pixels = width * height
    if switches.vae_tiling and pixels >= switches.vae_tiling_min_pixels:
        pipeline.vae.enable_tiling()
    else:
        pipeline.vae.disable_tiling()
    state = speed_state(pipeline)
    if state is None:
        return
    if state.fuse_wanted:
        _set_fused(pipeline.unet, state, fused=not loras_active)
    quantize = switches.int8 or switches.fp8
    state.use_quantized = (
        state.quantized_unet is not None
        and quantize
        and pixels <= switches.int8_max_pixels
        and not loras_active
    )


def quantizable_linears(unet: Any) -> list[str]:
    """Names of the UNet's linear layers that int8/fp8 quantize; every other layer stays 16-bit.

    A layer qualifies when both its widths are at least the UNet's deepest level width (1280 for SDXL:
    the transformer and feed-forward layers of the lowest-resolution level) and its rows are image
    tokens, not the batch or the 77 text tokens. Projections left unused by QKV fusion are skipped.
    """
    import torch

    min_width = int(unet.config.block_out_channels[-1])
    unused = _unused_after_fusion(unet)
    return [
        name
        for name, module in unet.named_modules()
        if isinstance(module, torch.nn.Linear)
        and min(module.in_features, module.out_features) >= min_width
        and not any(part in name for part in _FEW_ROW_LAYERS)
        and name not in unused
    ]


def _unused_after_fusion(unet: Any) -> set[str]:
    from diffusers.models.attention_processor import Attention

    unused: set[str] = set()
    for name, module in unet.named_modules():
        if isinstance(module, Attention) and getattr(module, "fused_projections", False):
            parts = ("to_k", "to_v") if module.is_cross_attention else ("to_q", "to_k", "to_v")
            unused.update(f"{name}.{part}" for part in parts)
    return unused


def _set_attention(unet: Any, vae: Any, *, sdpa: bool) -> None:
    from diffusers.models.attention_processor import AttnProcessor, AttnProcessor2_0

    for model in (unet, vae):
        model.set_attn_processor(AttnProcessor2_0() if sdpa else AttnProcessor())


def _set_fused(unet: Any, state: SpeedState, *, fused: bool) -> None:
    from diffusers.models.attention_processor import AttnProcessor2_0, FusedAttnProcessor2_0

    if state.fused_now != fused:
        unet.set_attn_processor(FusedAttnProcessor2_0() if fused else AttnProcessor2_0())
        state.fused_now = fused


def _torchao() -> Any:
    """torchao's quantization module, or ``ModelLoadFailed`` saying how to get it or do without."""
    try:
        return importlib.import_module("torchao.quantization")
    except ImportError as exc:
        raise ModelLoadFailed(
            "int8/fp8 speed switches need torchao: pip install 'rendercost[gpu]', "
            "or turn them off (RENDERCOST_SPEED__INT8=false, RENDERCOST_SPEED__FP8=false)"
        ) from exc


def _make_quantized_twin(unet: Any, torchao: Any, *, use_fp8: bool, state: SpeedState) -> None:
    """The twin: a copy of ``unet`` sharing its tensors, whose wide linear layers are quantized."""
    names = set(quantizable_linears(unet))
    shared = {id(t): t for t in [*unet.parameters(), *unet.buffers()]}
    twin = copy.deepcopy(unet, shared)  # new modules, same tensors: only quantized weights are new
    config = (
        torchao.Float8DynamicActivationFloat8WeightConfig(granularity=torchao.PerRow())
        if use_fp8
        else torchao.Int8DynamicActivationInt8WeightConfig()
    )
    torchao.quantize_(twin, config, filter_fn=lambda _module, fqn: fqn in names)
    state.quantized_unet, state.quantized_layers = twin, len(names)
    state.use_quantized = True  # until prepare_for_size applies the size and LoRA rules
    state.applied.append("fp8" if use_fp8 else "int8")


def _compile(unet: Any, switches: SpeedSwitches, state: SpeedState) -> None:
    import torch
    import torch._inductor.config as inductor_config

    if switches.compile_cache_dir is not None:
        os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(switches.compile_cache_dir))
    inductor_config.fx_graph_cache = True
    # Each image size, batch size, LoRA state and UNet variant may add a graph; past the limit dynamo
    # silently runs eager, so allow more than the default 8.
    torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, 64)
    inductor_config.conv_1x1_as_mm = True  # SDXL's 1x1 convolutions run as matmuls
    if state.quantized_unet is not None:
        inductor_config.force_fuse_int_mm_with_mul = True  # fold int8 rescales into the matmul
        state.quantized_unet.compile(mode=switches.compile_mode)
        state.base_forward = torch.compile(unet.forward, mode=switches.compile_mode)
    else:
        unet.compile(mode=switches.compile_mode)
    state.applied.append(f"compile({switches.compile_mode})")


def _install_router(unet: Any, state: SpeedState) -> None:
    """Make the 16-bit UNet's ``forward`` run the twin when ``state.use_quantized`` says so."""
    base_forward = state.base_forward or unet.forward
    state.base_forward = base_forward
    twin = state.quantized_unet

    def routed_forward(*args: Any, **kwargs: Any) -> Any:
        return twin(*args, **kwargs) if state.use_quantized else base_forward(*args, **kwargs)

    unet.forward = routed_forward


def _supports_fp8(device: str) -> bool:
    import torch

    if not device.startswith("cuda") or not torch.cuda.is_available():
        return False
    return tuple(torch.cuda.get_device_capability(torch.device(device))) >= FP8_MIN_CAPABILITY
