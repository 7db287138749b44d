"""SDXL-base throughput under each speed switch, measured side by side in one run.

Builds the SDXL-base architecture (UNet 320/640/1280 with transformer depths 1/2/10 and 2048-wide
cross-attention, CLIP-L and OpenCLIP-bigG text encoders, the SDXL VAE) with random weights in bf16 on
the device, then, for every switch configuration ("config"), preset shape and batch size, times the
three stages (text encode, denoise, VAE decode) and reports images/s, seconds per stage, peak device
memory, achieved TFLOP/s as a share of the device's own bf16 matmul ceiling (a large matrix product
timed in the same run), and drift: the relative L2 difference of the final latents (and decoded
images) from the plain bf16 run on the same seeds. Random weights say nothing about image quality;
drift only shows how far a switch moves the numbers.

Timing: warm-up call excluded (it also holds torch.compile's compile time, reported separately),
CUDA events on a GPU and perf_counter on CPU, median of --repeats runs. FLOPs are counted once per
image size with torch's FlopCounterMode on meta tensors (SDXL-base: 6.76 TFLOP per UNet sample-forward
and 10.5 TFLOP per VAE decode at 1024x1024).

Config names join switch tokens: sdpa (SDPA attention), cl (channels_last), qkv (fused QKV), compile,
int8, fp8, tile (VAE tiling). "plain" is every switch off; "default" is what the server applies on
this device (``SpeedSwitches()`` through ``effective_switches``); "default+compile" or "default-tile"
add or remove a token. Rows whose switches act the same at a size are measured once.

Shapes: "speed" and "lightning" are those presets (domain.presets: 30 steps at CFG 4.0, and 4 steps at
CFG 1.0 with one UNet pass per step) at 1024x1024; "large" is lightning at 2048x2048, batch 1.

Usage:
  .venv/bin/python bench/gpu_throughput.py --tiny                   # CPU smoke run, tiny config (~20 s)
  .venv/bin/python bench/gpu_throughput.py --quick --json out.json  # one H100, about 9 minutes
  .venv/bin/python bench/gpu_throughput.py --json out.json          # full: batches 1-8, 2048 px, fp8
--quick stops starting rows after --budget-s (540 s; a compiled config needs 180 s left) and reports
the rest as skipped; --json is rewritten after every row, so a run cut off keeps what it measured.
Flags --switches, --shapes, --batches, --repeats, --max-steps and --budget-s override the profile.
"""

from __future__ import annotations

import argparse
import copy
import gc
import json
import os
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from diffusers.utils import logging as diffusers_logging
from torch.utils.flop_counter import FlopCounterMode
from transformers.utils import logging as transformers_logging

from rendercost.domain.presets import get_preset
from rendercost.errors import RenderCostError
from rendercost.execution.models.sdxl_configs import SDXL_BASE, SDXL_TINY, SdxlConfigs, build_random_pipeline
from rendercost.execution.pipeline.noise_schedulers import make_noise_scheduler
from rendercost.execution.pipeline.speedups import (
    apply_switches,
    effective_switches,
    prepare_for_size,
    speed_state,
)
from rendercost.settings import SpeedSwitches

STARTED = time.monotonic()
DTYPE = torch.bfloat16
TOKENS = {  # config-name token -> SpeedSwitches field, in name order
    "sdpa": "sdpa",
    "cl": "channels_last",
    "qkv": "fuse_qkv",
    "compile": "compile",
    "int8": "int8",
    "fp8": "fp8",
    "tile": "vae_tiling",
}
COMPILE_RESERVE_S = 180.0  # a compiled config needs about this long (cold compile) before its rows end
WARMUP_STEPS = 1  # the warm-up call's steps: every step has the same shapes, so one compiles them all
LARGE_CONFIGS = ("plain", "default", "default-tile")  # the large shape is for VAE tiling on/off
QUICK_CONFIGS = (
    *("plain", "default", "default+compile", "default+compile+int8", "default+int8"),
    *("sdpa", "sdpa+cl", "sdpa+qkv"),
)


@dataclass(frozen=True)
class Profile:
    """What one run measures unless flags say otherwise."""

    configs: tuple[str, ...]  # config specs, in run order ("plain" first: it is the drift reference)
    shapes: tuple[str, ...]  # of "speed", "lightning", "large"
    batches: tuple[int, ...]  # images per pipeline call
    repeats: int  # timed runs per row (median reported)
    max_steps: int | None  # cap on a preset's steps (the tiny run only)
    budget_s: float | None  # stop starting rows after this many seconds; the rest are "skipped"
    ceiling_side: int  # n of the n x n x n bf16 matmul that measures the ceiling


PROFILES = {
    "tiny": Profile(
        configs=("plain", "default", "sdpa+cl+qkv", "sdpa+cl+qkv+int8", "sdpa+cl+qkv+fp8"),
        shapes=("speed", "lightning", "large"),
        batches=(1, 2),
        repeats=1,
        max_steps=2,
        budget_s=None,
        ceiling_side=256,
    ),
    "quick": Profile(QUICK_CONFIGS, ("speed", "lightning"), (1, 4), 2, None, 540.0, 8192),
    "full": Profile(
        (*QUICK_CONFIGS, "default+fp8", "default+compile+fp8"),
        ("speed", "lightning", "large"),
        (1, 2, 4, 8),
        3,
        None,
        None,
        8192,
    ),
}


@dataclass(frozen=True)
class Shape:
    """A preset's work at one image size."""

    name: str  # "speed", "lightning" or "large"
    preset: str  # domain preset whose steps, guidance and sampler it uses
    side: int  # width = height, pixels
    steps: int  # denoising steps (capped by --max-steps)
    guidance: float  # CFG scale; 1.0 = one UNet pass per step, no negative prompt
    fixed_batches: tuple[int, ...] | None = None  # batches this shape always uses (large: 1)

    @property
    def passes(self) -> int:
        return 2 if self.guidance > 1.0 else 1


@dataclass
class Row:
    """One line of the table (and of the JSON)."""

    config: str  # active switch tokens at this size, "plain" when none
    shape: str
    batch: int
    is_default: bool = False  # the server's configuration on this device
    status: str = "ok"  # "ok", or why the row was not measured
    images_per_s: float | None = None
    encode_s: float | None = None  # whole batch, median
    denoise_s: float | None = None
    decode_s: float | None = None
    first_call_s: float | None = None  # the warm-up call (compile time included)
    compile_s: float | None = None  # warm-up call minus a steady call of the same work: compile, autotune
    peak_mem_gib: float | None = None  # device memory high-water mark (CUDA only)
    tflops: float | None = None  # achieved
    pct_ceiling: float | None = None  # of the measured bf16 matmul ceiling
    drift_latents: float | None = None  # relative L2 vs plain (plain row: run to run)
    drift_image: float | None = None


@dataclass
class Flops:
    """FLOPs of the three models at one image size."""

    unet_sample: float  # one UNet forward of one sample
    vae_decode: float  # one image
    text_sequence: float  # both text encoders, one 77-token sequence

    def per_image(self, shape: Shape) -> float:
        return (
            shape.steps * shape.passes * self.unet_sample
            + self.vae_decode
            + shape.passes * self.text_sequence
        )


@dataclass
class Run:
    """Everything measured; what --json writes."""

    device: str
    device_name: str
    model: str
    dtype: str
    ceiling_tflops: float
    flops: dict[str, dict[str, float]] = field(default_factory=dict)  # side -> counts
    rows: list[Row] = field(default_factory=list)
    compile: dict[str, float | str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


class Clock:
    """Marks on the device's timeline: CUDA events on a GPU, perf_counter on CPU."""

    def __init__(self, device: str) -> None:
        self.cuda = torch.device(device).type == "cuda"

    def mark(self) -> Any:
        if not self.cuda:
            return time.perf_counter()
        event = torch.cuda.Event(enable_timing=True)  # type: ignore[no-untyped-call]
        event.record()
        return event

    def seconds(self, start: Any, end: Any) -> float:
        if not self.cuda:
            return float(end - start)
        end.synchronize()
        return float(start.elapsed_time(end)) / 1000.0


# -- configs ----------------------------------------------------------------------------------------


def parse_config(spec: str, default: SpeedSwitches) -> SpeedSwitches:
    """``plain``/``default``/a token, then ``+token`` or ``-token`` any number of times."""
    parts = spec.replace("-", " -").replace("+", " +").split()
    head, rest = parts[0], parts[1:]
    values = dict.fromkeys(TOKENS.values(), False)
    if head == "default":
        values = {name: getattr(default, name) for name in TOKENS.values()}
    elif head != "plain":
        rest = [f"+{head}", *rest]
    for part in rest:
        token = part[1:]
        if token not in TOKENS:
            raise SystemExit(f"unknown switch {token!r} in {spec!r}; tokens: {', '.join(TOKENS)}")
        values[TOKENS[token]] = part[0] == "+"
    return default.model_copy(update=values)


def active_tokens(switches: SpeedSwitches, side: int) -> tuple[str, ...]:
    """The tokens that change anything at ``side`` x ``side`` (tiling and the int8 rule are per size)."""
    pixels = side * side
    inactive = set()
    if pixels < switches.vae_tiling_min_pixels:
        inactive.add("tile")
    if pixels > switches.int8_max_pixels:
        inactive.update({"int8", "fp8"})
    return tuple(t for t, name in TOKENS.items() if getattr(switches, name) and t not in inactive)


def config_name(tokens: tuple[str, ...]) -> str:
    return "+".join(tokens) or "plain"


# -- model work -------------------------------------------------------------------------------------


def count_flops(configs: SdxlConfigs, side: int) -> Flops:
    """Count FLOPs on meta tensors (no memory, no compute), with plain attention so every matmul shows."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from diffusers.models.attention_processor import AttnProcessor
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    latent = side // 8
    with torch.device("meta"):
        unet = UNet2DConditionModel(**configs.unet).to(DTYPE)
        vae = AutoencoderKL(**configs.vae).to(DTYPE)
        encoders = [
            CLIPTextModel(CLIPTextConfig(**configs.text_encoder)),
            CLIPTextModelWithProjection(CLIPTextConfig(**configs.text_encoder_2)),
        ]
    unet.set_attn_processor(AttnProcessor())
    vae.set_attn_processor(AttnProcessor())
    pooled = (
        configs.unet["projection_class_embeddings_input_dim"] - 6 * configs.unet["addition_time_embed_dim"]
    )

    def meta(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, device="meta", dtype=DTYPE)

    def flops(fn: Callable[[], Any]) -> float:
        counter = FlopCounterMode(display=False)
        with torch.no_grad(), counter:
            fn()
        return float(counter.get_total_flops())

    tokens = torch.zeros(1, 77, dtype=torch.long, device="meta")
    return Flops(
        unet_sample=flops(
            lambda: unet(
                meta(1, 4, latent, latent),
                torch.tensor([999.0], device="meta"),
                encoder_hidden_states=meta(1, 77, configs.unet["cross_attention_dim"]),
                added_cond_kwargs={"text_embeds": meta(1, pooled), "time_ids": meta(1, 6)},
            )
        ),
        vae_decode=flops(lambda: vae.decode(meta(1, 4, latent, latent))),
        text_sequence=flops(lambda: encoders[0](tokens)) + flops(lambda: encoders[1](tokens)),
    )


def matmul_ceiling(device: str, side: int, clock: Clock) -> float:
    """The device's bf16 matmul rate in TFLOP/s: median of 10 timed products after 3 warm-ups."""
    a = torch.randn(side, side, device=device, dtype=DTYPE)
    b = torch.randn(side, side, device=device, dtype=DTYPE)
    times = []
    for i in range(13):
        start = clock.mark()
        torch.mm(a, b)
        seconds = clock.seconds(start, clock.mark())
        if i >= 3:
            times.append(seconds)
    return 2 * side**3 / statistics.median(times) / 1e12


@dataclass
class Inputs:
    """Fixed token ids and seed for one (shape, batch): every config sees the same."""

    ids: torch.Tensor  # (batch * passes, 77): prompts, then negative prompts under CFG
    seed: int


def render(pipe: Any, shape: Shape, batch: int, inputs: Inputs, steps: int, clock: Clock) -> tuple[Any, ...]:
    """One pipeline call split into its stages; returns (marks, latents, images)."""
    device = pipe.unet.device
    marks = [clock.mark()]
    with torch.inference_mode():
        out1 = pipe.text_encoder(inputs.ids, output_hidden_states=True)
        out2 = pipe.text_encoder_2(inputs.ids, output_hidden_states=True)
        embeds = torch.cat([out1.hidden_states[-2], out2.hidden_states[-2]], dim=-1)
        pooled = out2.text_embeds
        marks.append(clock.mark())
        negatives = {}
        if shape.passes == 2:
            negatives = {
                "negative_prompt_embeds": embeds[batch:],
                "negative_pooled_prompt_embeds": pooled[batch:],
            }
        latents = pipe(
            prompt_embeds=embeds[:batch],
            pooled_prompt_embeds=pooled[:batch],
            **negatives,
            num_inference_steps=steps,
            guidance_scale=shape.guidance,
            width=shape.side,
            height=shape.side,
            output_type="latent",
            generator=torch.Generator(device).manual_seed(inputs.seed),
        ).images
        marks.append(clock.mark())
        images = pipe.vae.decode(latents / pipe.vae.config.scaling_factor, return_dict=False)[0]
        marks.append(clock.mark())
    return marks, latents, images


def measure(
    pipe: Any, switches: SpeedSwitches, shape: Shape, batch: int, inputs: Inputs, repeats: int
) -> dict[str, Any]:
    """Warm up once, then time ``repeats`` calls; medians per stage, and the last call's outputs."""
    clock = Clock(str(pipe.unet.device))
    pipe.scheduler = make_noise_scheduler(get_preset(shape.preset).sampler, pipe.scheduler.config)
    prepare_for_size(pipe, switches, shape.side, shape.side, loras_active=False)  # no LoRA is loaded here
    warm_steps = min(shape.steps, WARMUP_STEPS)
    marks, _, _ = render(pipe, shape, batch, inputs, warm_steps, clock)
    first_call = clock.seconds(marks[0], marks[-1])
    if clock.cuda:
        torch.cuda.reset_peak_memory_stats()
    stages: list[list[float]] = [[], [], []]
    outputs: list[tuple[Any, Any]] = []
    for _ in range(repeats):
        marks, latents, images = render(pipe, shape, batch, inputs, shape.steps, clock)
        for i in range(3):
            stages[i].append(clock.seconds(marks[i], marks[i + 1]))
        outputs.append((latents.float().cpu(), images.float().cpu()))
    encode, denoise, decode = (statistics.median(s) for s in stages)
    expected_first = encode + decode + denoise * warm_steps / shape.steps
    return {
        "encode_s": encode,
        "denoise_s": denoise,
        "decode_s": decode,
        "first_call_s": first_call,
        "compile_s": max(0.0, first_call - expected_first),
        "peak_mem_gib": torch.cuda.max_memory_allocated() / 2**30 if clock.cuda else None,
        "first": outputs[0],
        "last": outputs[-1],
    }


def rel_diff(x: torch.Tensor, ref: torch.Tensor) -> float:
    return float((x - ref).norm() / ref.norm().clamp_min(1e-12))


# -- the run ----------------------------------------------------------------------------------------


@dataclass
class Planned:
    """One config and the rows it will measure."""

    spec: str  # as given, e.g. "default+compile"
    switches: SpeedSwitches  # applied exactly (apply_switches)
    rows: list[tuple[Shape, int, tuple[str, ...]]]  # (shape, batch, active tokens)


def make_plan(
    specs: list[str], shapes: list[Shape], batches: tuple[int, ...], default: SpeedSwitches, explicit: bool
) -> list[Planned]:
    """Rows per config, dropping rows whose active switches at that size were already planned."""
    seen: set[tuple[str, int, tuple[str, ...]]] = set()
    planned = []
    for spec in specs:
        switches = parse_config(spec, default)
        rows = []
        for shape in shapes:
            if shape.name == "large" and not explicit and spec not in LARGE_CONFIGS:
                continue
            for batch in shape.fixed_batches or batches:
                tokens = active_tokens(switches, shape.side)
                if (shape.name, batch, tokens) not in seen:
                    seen.add((shape.name, batch, tokens))
                    rows.append((shape, batch, tokens))
        if rows:
            planned.append(Planned(spec, switches, rows))
    return planned


def make_variant(base: Any, switches: SpeedSwitches, device: str) -> Any:
    """A pipeline sharing ``base``'s text encoders, with its own UNet and VAE for the switches to change."""
    components = {**base.components, "unet": copy.deepcopy(base.unet), "vae": copy.deepcopy(base.vae)}
    pipe = type(base)(**components, add_watermarker=False)
    pipe.set_progress_bar_config(disable=True)
    apply_switches(pipe, switches, device)
    return pipe


class Bench:
    """Runs a plan against one base pipeline and fills ``run.rows``."""

    def __init__(self, base: Any, run: Run, flops: dict[int, Flops], args: argparse.Namespace) -> None:
        self.base, self.run, self.flops, self.args = base, run, flops, args
        self.deadline = STARTED + args.budget_s if args.budget_s else None  # counts imports and build
        self.refs: dict[tuple[str, int], tuple[torch.Tensor, torch.Tensor]] = {}
        self.default_tokens: dict[int, tuple[str, ...]] = {}

    def inputs(self, shape: Shape, batch: int) -> Inputs:
        vocab = int(self.base.text_encoder.config.vocab_size)
        generator = torch.Generator().manual_seed(self.args.seed + batch)
        ids = torch.randint(0, vocab, (batch * shape.passes, 77), generator=generator)
        return Inputs(ids.to(self.run.device), self.args.seed)

    def over_budget(self, needs_s: float = 0.0) -> bool:
        return self.deadline is not None and time.monotonic() + needs_s > self.deadline

    def execute(self, planned: list[Planned]) -> None:
        warm_probe_done = False
        for item in planned:
            skip = (
                "time budget"
                if self.over_budget(needs_s=COMPILE_RESERVE_S if item.switches.compile else 0)
                else None
            )
            pipe = None
            if skip is None:
                try:
                    pipe = make_variant(self.base, item.switches, self.run.device)
                    skip = self._unapplied(item, pipe)
                except RenderCostError as exc:
                    skip = exc.message
            for shape, batch, tokens in item.rows:
                row = self._row(pipe, item, shape, batch, tokens, skip)
                self.run.rows.append(row)
                say(f"{row.config} {shape.name} x{batch}: {row.status}")
                write_json(self.run, self.args.json)  # a run cut off by a time limit keeps what it measured
            if pipe is not None and item.switches.compile and skip is None:
                first = self.run.rows[-len(item.rows)]  # the first shape this config compiled for
                self.run.compile[f"{item.spec}: cold first call s"] = first.first_call_s or 0.0
                self.run.compile[f"{item.spec}: cold compile s (approx.)"] = first.compile_s or 0.0
                if not warm_probe_done and not self.over_budget():
                    self._warm_probe(item)
                    warm_probe_done = True
            del pipe
            self._release(item.switches.compile)

    def _unapplied(self, item: Planned, pipe: Any) -> str | None:
        state = speed_state(pipe)
        skipped = state.skipped if state else {}
        wanted = {TOKENS[t] for _, _, tokens in item.rows for t in tokens}
        reasons = [f"{name}: {why}" for name, why in skipped.items() if name in wanted]
        return "; ".join(reasons) or None

    def _row(
        self, pipe: Any, item: Planned, shape: Shape, batch: int, tokens: tuple[str, ...], skip: str | None
    ) -> Row:
        row = Row(
            config_name(tokens), shape.name, batch, is_default=tokens == self.default_tokens[shape.side]
        )
        if skip is None and self.over_budget():
            skip = "time budget"
        if skip is not None:
            row.status = f"skipped: {skip}"
            return row
        try:
            m = measure(pipe, item.switches, shape, batch, self.inputs(shape, batch), self.args.repeats)
        except torch.OutOfMemoryError:
            row.status = "out of device memory"
            return row
        total = m["encode_s"] + m["denoise_s"] + m["decode_s"]
        work = batch * self.flops[shape.side].per_image(shape)
        row.images_per_s = batch / total
        row.encode_s, row.denoise_s, row.decode_s = m["encode_s"], m["denoise_s"], m["decode_s"]
        row.first_call_s, row.compile_s, row.peak_mem_gib = (
            m["first_call_s"],
            m["compile_s"],
            m["peak_mem_gib"],
        )
        row.tflops = work / total / 1e12
        row.pct_ceiling = 100.0 * row.tflops / self.run.ceiling_tflops
        latents, images = m["last"]
        key = (shape.name, batch)
        if not tokens:  # plain: the reference; its own drift is run to run
            self.refs[key] = (latents, images)
            if self.args.repeats < 2:
                return row
            ref_latents, ref_images = m["first"]
        elif key in self.refs:
            ref_latents, ref_images = self.refs[key]
        else:
            return row
        row.drift_latents, row.drift_image = rel_diff(latents, ref_latents), rel_diff(images, ref_images)
        return row

    def _warm_probe(self, item: Planned) -> None:
        """Compile the same config again after dropping dynamo's in-memory caches: inductor's on-disk
        FX graph cache now answers, as it does for a worker restarting on a warm cache dir."""
        shape, batch, _ = item.rows[0]
        torch._dynamo.reset()
        pipe = make_variant(self.base, item.switches, self.run.device)
        m = measure(pipe, item.switches, shape, batch, self.inputs(shape, batch), 1)
        self.run.compile[f"{item.spec}: warm first call s"] = m["first_call_s"]
        self.run.compile[f"{item.spec}: warm compile s (approx.)"] = m["compile_s"]
        del pipe

    def _release(self, compiled: bool) -> None:
        if compiled:
            torch._dynamo.reset()
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


# -- output -----------------------------------------------------------------------------------------

COLUMNS = (
    "config",
    "shape",
    "batch",
    "images/s",
    "s/stage enc/den/dec",
    "peak mem",
    "TFLOP/s",
    "% ceil",
    "drift lat/img",
)
WIDTHS = (26, 10, 5, 9, 22, 10, 8, 7, 17)


def _fmt(value: float | None, spec: str, missing: str = "n/a") -> str:
    return missing if value is None else format(value, spec)


def table(run: Run, shapes: list[Shape]) -> str:
    order = {s.name: i for i, s in enumerate(shapes)}
    lines = ["  ".join(c.ljust(w) for c, w in zip(COLUMNS, WIDTHS, strict=True))]
    lines.append("  ".join("-" * w for w in WIDTHS))
    for row in sorted(run.rows, key=lambda r: (order[r.shape], r.batch)):
        name = row.config + (" *" if row.is_default else "")
        head = [name, row.shape, str(row.batch)]
        if row.status != "ok":
            status = row.status if len(row.status) <= 90 else row.status[:89] + "…"
            cells = [*head, status]
            lines.append("  ".join(c.ljust(w) for c, w in zip(cells, WIDTHS, strict=False)).rstrip())
            continue
        stages = f"{row.encode_s:.3f}/{row.denoise_s:.3f}/{row.decode_s:.3f}"
        drift = "n/a"
        if row.drift_latents is not None and row.drift_image is not None:
            drift = f"{row.drift_latents:.1e}/{row.drift_image:.1e}"
        mem = "n/a" if row.peak_mem_gib is None else f"{row.peak_mem_gib:.1f} GiB"
        cells = [
            *head,
            _fmt(row.images_per_s, ".3g"),
            stages,
            mem,
            _fmt(row.tflops, ".3g"),
            _fmt(row.pct_ceiling, ".1f"),
            drift,
        ]
        lines.append("  ".join(c.ljust(w) for c, w in zip(cells, WIDTHS, strict=True)).rstrip())
    return "\n".join(lines)


def summary(run: Run, shapes: list[Shape]) -> list[str]:
    lines = []
    for shape in shapes:
        batches = sorted({r.batch for r in run.rows if r.shape == shape.name})
        for batch in batches:
            done = [r for r in run.rows if r.shape == shape.name and r.batch == batch and r.images_per_s]
            if not done:
                continue
            best = max(done, key=lambda r: r.images_per_s or 0.0)
            default = next((r for r in done if r.is_default), None)
            ratio = ""
            if best.images_per_s and default and default.images_per_s:
                ratio = f", {best.images_per_s / default.images_per_s:.2f}x the default"
            lines.append(f"fastest at {shape.name} x{batch}: {best.config}{ratio}")
    lines.extend(
        f"compile: {key} = {_fmt(v, '.1f') if isinstance(v, float) else v}" for key, v in run.compile.items()
    )
    return lines


# -- main -------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--tiny", action="store_true", help="tiny config on CPU: checks the code path in seconds"
    )
    mode.add_argument("--quick", action="store_true", help="GPU profile that fits in 10 minutes on one H100")
    parser.add_argument("--device", help="torch device (default: cpu with --tiny, else cuda)")
    parser.add_argument("--switches", help="comma-separated configs, e.g. plain,default,default+compile+int8")
    parser.add_argument("--shapes", help="comma-separated of: speed, lightning, large")
    parser.add_argument("--batches", help="comma-separated batch sizes, e.g. 1,2,4,8")
    parser.add_argument("--repeats", type=int, help="timed runs per row (median reported)")
    parser.add_argument("--max-steps", type=int, help="cap every preset's steps (the tiny profile caps at 2)")
    parser.add_argument("--budget-s", type=float, help="start no row this many seconds after the imports")
    parser.add_argument("--compile-cache", type=Path, help="inductor cache dir (default: a fresh temp dir)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="also write every figure to this file")
    args = parser.parse_args(argv)
    profile = PROFILES["tiny" if args.tiny else "quick" if args.quick else "full"]
    args.explicit_switches = args.switches is not None
    args.configs = args.switches.split(",") if args.switches else list(profile.configs)
    args.shape_names = args.shapes.split(",") if args.shapes else list(profile.shapes)
    args.batch_sizes = tuple(int(b) for b in args.batches.split(",")) if args.batches else profile.batches
    args.repeats = args.repeats or profile.repeats
    args.max_steps = args.max_steps or profile.max_steps
    args.budget_s = args.budget_s if args.budget_s is not None else profile.budget_s
    args.ceiling_side = profile.ceiling_side
    args.device = args.device or ("cpu" if args.tiny else "cuda")
    return args


def make_shapes(names: list[str], native: int, max_steps: int | None) -> list[Shape]:
    shapes = []
    for name in names:
        preset = (
            get_preset("lightning" if name == "large" else name)
            if name in ("speed", "lightning", "large")
            else None
        )
        if preset is None:
            raise SystemExit(f"unknown shape {name!r}; shapes: speed, lightning, large")
        steps = min(preset.steps, max_steps) if max_steps else preset.steps
        side, fixed = (2 * native, (1,)) if name == "large" else (native, None)
        shapes.append(Shape(name, preset.name, side, steps, preset.guidance_scale, fixed))
    return shapes


def default_switches(configs: SdxlConfigs, device: str, cache_dir: Path) -> SpeedSwitches:
    """The server's switches on ``device``, size thresholds scaled to the model's native size."""
    base = SpeedSwitches()
    scale = (configs.native_side / 1024) ** 2
    scaled = base.model_copy(
        update={
            "vae_tiling_min_pixels": int(base.vae_tiling_min_pixels * scale),
            "int8_max_pixels": int(base.int8_max_pixels * scale),
            "compile_cache_dir": cache_dir,
        }
    )
    return effective_switches(scaled, device)[0]


def say(message: str) -> None:
    """Progress on stderr, with seconds since the process started."""
    print(f"[{time.monotonic() - STARTED:6.1f} s] {message}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit("no CUDA device here: run with --tiny (CPU), or on a GPU machine")
    if not args.tiny and not args.device.startswith("cuda"):
        raise SystemExit("the SDXL-base run needs a GPU; --tiny checks the same code on CPU")
    diffusers_logging.set_verbosity_error()
    warnings.filterwarnings("ignore", category=UserWarning, module=r"torch\._dynamo")  # tracing chatter
    if args.tiny and not args.device.startswith("cuda"):
        torch.set_num_threads(1)  # a shared CI box: one thread is steady, two fight other jobs
    transformers_logging.set_verbosity_error()
    cache_dir = args.compile_cache or Path(tempfile.mkdtemp(prefix="rendercost-inductor-"))
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(cache_dir)  # the bench's compile starts cold unless given
    configs = SDXL_TINY if args.tiny else SDXL_BASE
    shapes = make_shapes(args.shape_names, configs.native_side, args.max_steps)
    default = default_switches(configs, args.device, cache_dir)
    clock = Clock(args.device)
    name = torch.cuda.get_device_name(torch.device(args.device)) if clock.cuda else "cpu"
    run = Run(
        args.device,
        name,
        configs.name,
        str(DTYPE).removeprefix("torch."),
        matmul_ceiling(args.device, args.ceiling_side, clock),
    )
    say(f"bf16 matmul ceiling {run.ceiling_tflops:.3g} TFLOP/s")
    sides = sorted({s.side for s in shapes})
    flops = {side: count_flops(configs, side) for side in sides}
    run.flops = {str(side): asdict(f) for side, f in flops.items()}
    say("FLOPs counted")
    base = build_random_pipeline(configs, args.device, DTYPE, seed=args.seed)
    say(f"{configs.name} built on {args.device}")
    bench = Bench(base, run, flops, args)
    bench.default_tokens = {side: active_tokens(default, side) for side in sides}
    planned = make_plan(args.configs, shapes, args.batch_sizes, default, args.explicit_switches)
    started = time.monotonic()
    bench.execute(planned)
    run.notes = notes(args, run, flops, time.monotonic() - started)
    print(report(run, shapes, flops))
    write_json(run, args.json)
    return 0


def write_json(run: Run, path: Path | None) -> None:
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(run), indent=2) + "\n")


def notes(args: argparse.Namespace, run: Run, flops: dict[int, Flops], seconds: float) -> list[str]:
    out = [
        "random weights: drift is numeric difference from plain bf16 on the same seeds, not image quality",
        "plain row drift is run to run (first vs last repeat; n/a with one repeat)",
        "s/stage: the whole batch, median of the repeats",
        "* = the server's default switches on this device",
    ]
    if args.max_steps:
        out.append(f"steps capped at {args.max_steps} (--max-steps)")
    if not run.device.startswith("cuda"):
        out.append("CPU: peak memory is not tracked; figures check the code path, not performance")
    out.append(f"measured in {seconds:.0f} s")
    return out


def report(run: Run, shapes: list[Shape], flops: dict[int, Flops]) -> str:
    head = [
        f"device: {run.device_name} ({run.device}), model: {run.model} random weights, {run.dtype}",
        f"bf16 matmul ceiling: {run.ceiling_tflops:.3g} TFLOP/s (measured in this run)",
        *(
            f"FLOPs at {side}x{side}: UNet {f.unet_sample / 1e12:.4g} TFLOP/sample-forward, "
            f"VAE decode {f.vae_decode / 1e12:.4g} TFLOP/image, text {f.text_sequence / 1e9:.3g} GFLOP/prompt"
            for side, f in flops.items()
        ),
        *(
            f"shape {s.name}: preset {s.preset}, {s.side}x{s.side}, {s.steps} steps, CFG {s.guidance:g}"
            for s in shapes
        ),
        "tokens: sdpa=SDPA attention, cl=channels_last, qkv=fused QKV, compile=torch.compile,"
        " int8/fp8=torchao quantization, tile=VAE tiling",
        "",
        table(run, shapes),
        "",
        *summary(run, shapes),
        *run.notes,
    ]
    return "\n".join(head)


if __name__ == "__main__":
    sys.exit(main())
