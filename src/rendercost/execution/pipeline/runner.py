"""The diffusers runner: one ``BatchPlan`` in, one batched pipeline call, images and stage times out.

``run()`` reads as the pipeline does, one named method per stage, each timed on the device:

    1. check inputs        (not billed: names, sizes, preset, LoRAs, prompt lengths; warm the LoRAs)
    2. encode prompts      Stage.TEXT_ENCODE      both CLIP encoders; negatives only when CFG > 1
    3. prepare latents     Stage.PREPARE_LATENTS  one generator per image, seeded with its spec's seed
    4. denoise             Stage.DENOISE          the preset's sampler, steps, guidance (or the spec's
                                                  overrides of them) and speed LoRA
    5. decode              Stage.DECODE           VAE, upcast where the model asks for it
    6. post-process        Stage.POSTPROCESS      pixels to PNG/WebP/JPEG bytes

Every image of a batch equals the same spec rendered alone: each has its own noise generator (and
Brownian tree for SDE samplers), and text is encoded per prompt. Blocking and synchronous: the worker
calls ``run`` from a thread; one call at a time per pipeline (the model's lock).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from rendercost.domain.batch import BatchPlan, RenderedImage, RenderResult
from rendercost.domain.costs import Stage
from rendercost.domain.presets import Preset, get_preset
from rendercost.domain.runner import StepCallback
from rendercost.domain.specs import MAX_SEED, RenderSpec, check_size
from rendercost.errors import InvalidRequest
from rendercost.execution.models.registry import LoadedModel, ModelRegistry
from rendercost.execution.pipeline import speedups
from rendercost.execution.pipeline.encoding import encode_image, to_pixels
from rendercost.execution.pipeline.noise_schedulers import bind_seeds, make_noise_scheduler
from rendercost.execution.pipeline.prompt_embeddings import CachedEncoder
from rendercost.execution.pipeline.timing import StageTimer
from rendercost.settings import Settings


@dataclass(frozen=True)
class _Batch:
    """A checked plan: everything the device stages need."""

    model: LoadedModel
    preset: Preset
    specs: list[RenderSpec]
    width: int
    height: int
    loras: list[tuple[Path, float]]  # speed LoRA first, then the specs' style LoRAs


@dataclass(frozen=True)
class _PromptEmbeds:
    prompt: torch.Tensor
    pooled: torch.Tensor
    negative: torch.Tensor | None  # None when the preset runs without CFG
    negative_pooled: torch.Tensor | None


class DiffusersRunner:
    """Runs plans on the models of a ``ModelRegistry``; implements ``domain.runner.Runner``.

    ``preset_lookup`` is a test seam: a test may render a preset with fewer steps.
    """

    def __init__(
        self,
        registry: ModelRegistry,
        settings: Settings,
        *,
        preset_lookup: Callable[[str], Preset] = get_preset,
        embeddings: CachedEncoder | None = None,
    ) -> None:
        self._registry = registry
        self._settings = settings
        self._preset_lookup = preset_lookup
        self._embeddings = embeddings  # text-embedding cache; None encodes every prompt

    def check_prompt(self, model: str, prompt: str, truncate: bool = False) -> str:
        """See ``ModelRegistry.check_prompt``."""
        return self._registry.check_prompt(model, prompt, truncate)

    def run(self, plan: BatchPlan, on_step: StepCallback | None = None) -> RenderResult:
        """Render every item of ``plan`` in one pipeline call; images come back in plan order."""
        batch = self._check_inputs(plan)  # 1
        model = batch.model
        timer = StageTimer(model.device)
        with model.lock:
            active = model.adapters.activate(batch.loras)
            speedups.prepare_for_size(
                model.pipeline, self._settings.speed, batch.width, batch.height, loras_active=bool(active)
            )
            with torch.inference_mode():
                with timer.stage(Stage.TEXT_ENCODE):
                    embeds, cached = self._encode_prompts(batch)  # 2
                with timer.stage(Stage.PREPARE_LATENTS):
                    latents, generators = self._prepare_latents(batch)  # 3
                with timer.stage(Stage.DENOISE):
                    latents = self._denoise(batch, embeds, latents, generators, on_step)  # 4
                with timer.stage(Stage.DECODE):
                    images = self._decode(batch, latents)  # 5
        with timer.stage(Stage.POSTPROCESS):
            rendered = self._postprocess(plan, images)  # 6
        result = self._result(plan, rendered, timer.seconds, model.device, embeddings_cached=cached)
        return replace(result, weights_sha256=model.fingerprint)

    def _result(
        self,
        plan: BatchPlan,
        rendered: tuple[RenderedImage, ...],
        seconds: dict[Stage, float],
        device: str,
        *,
        embeddings_cached: bool,
    ) -> RenderResult:
        """The answer; a cached encode is a skipped stage (0 s) priced at the running mean as avoided."""
        if self._embeddings is None:
            return RenderResult(batch_id=plan.batch_id, images=rendered, stage_seconds=seconds, device=device)
        if not embeddings_cached:
            self._embeddings.observe(seconds.get(Stage.TEXT_ENCODE, 0.0), plan.size)
            return RenderResult(batch_id=plan.batch_id, images=rendered, stage_seconds=seconds, device=device)
        return RenderResult(
            batch_id=plan.batch_id,
            images=rendered,
            stage_seconds={stage: s for stage, s in seconds.items() if stage != Stage.TEXT_ENCODE},
            device=device,
            skipped_stages={Stage.TEXT_ENCODE: "embedding_cache"},
            avoided_seconds={Stage.TEXT_ENCODE: self._embeddings.encode_seconds_per_image() * plan.size},
        )

    # 1 -------------------------------------------------------------------------------------------

    def _check_inputs(self, plan: BatchPlan) -> _Batch:
        """Refuse what cannot render before any device work; load the model on first use."""
        if not plan.items:
            raise InvalidRequest("a batch plan needs at least one image")
        specs = plan.specs
        first = specs[0]
        if any(spec.batch_key != first.batch_key for spec in specs):
            raise InvalidRequest("every image of a batch must share model, preset, size, LoRAs and overrides")
        s = self._settings
        check_size(first.width, first.height, min_side=s.min_side, max_side=s.max_side)
        for spec in specs:
            if not 0 <= spec.seed <= MAX_SEED:
                raise InvalidRequest(f"seed {spec.seed} is outside 0..{MAX_SEED}", param="seed")
        named = self._preset_lookup(first.preset)
        self._registry.check_preset(first.model, named)
        preset = first.run_preset(named)  # the request's steps, guidance and sampler
        loras = self._lora_files(first, preset)
        model = self._registry.get(first.model)
        for spec in specs:
            self._registry.check_prompt(first.model, spec.prompt)
            if preset.uses_cfg:
                self._registry.check_prompt(first.model, spec.negative_prompt, param="negative_prompt")
        return _Batch(model, preset, specs, first.width, first.height, loras)

    def _lora_files(self, spec: RenderSpec, preset: Preset) -> list[tuple[Path, float]]:
        loras: list[tuple[Path, float]] = []
        if preset.speed_lora is not None:
            speed_name = self._registry.speed_loras(spec.model)[preset.speed_lora]
            loras.append((self._registry.resolve_lora(spec.model, speed_name), preset.speed_lora_weight))
        for lora in spec.loras:
            loras.append((self._registry.resolve_lora(spec.model, lora.name), lora.weight))
        return loras

    # 2 -------------------------------------------------------------------------------------------

    def _encode_prompts(self, batch: _Batch) -> tuple[_PromptEmbeds, bool]:
        """Both text encoders, one row per image; negative prompts only when the preset uses CFG.
        With an embedding cache, rows come from it when all are there (then True)."""
        uses_cfg = batch.preset.uses_cfg

        def encode() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
            prompt, negative, pooled, negative_pooled = batch.model.pipeline.encode_prompt(
                prompt=[spec.prompt for spec in batch.specs],
                device=torch.device(batch.model.device),
                num_images_per_prompt=1,
                do_classifier_free_guidance=uses_cfg,
                negative_prompt=[spec.negative_prompt for spec in batch.specs] if uses_cfg else None,
            )
            if not uses_cfg:
                negative = negative_pooled = None
            return prompt, pooled, negative, negative_pooled

        if self._embeddings is None:
            return _PromptEmbeds(*encode()), False
        loras = [(str(path), weight) for path, weight in batch.loras]
        encoded = self._embeddings.encode(
            batch.specs,
            uses_cfg=uses_cfg,
            loras=loras,
            device=torch.device(batch.model.device),
            encode=encode,
        )
        return _PromptEmbeds(*encoded.tensors), encoded.from_cache

    # 3 -------------------------------------------------------------------------------------------

    def _prepare_latents(self, batch: _Batch) -> tuple[torch.Tensor, list[torch.Generator]]:
        """Initial noise, drawn per image on the CPU (same numbers on every device) from its own seed."""
        pipeline = batch.model.pipeline
        scale = pipeline.vae_scale_factor
        shape = (1, pipeline.unet.config.in_channels, batch.height // scale, batch.width // scale)
        generators = [torch.Generator("cpu").manual_seed(spec.seed) for spec in batch.specs]
        noise = [torch.randn(shape, generator=generator, dtype=torch.float32) for generator in generators]
        latents = torch.cat(noise).to(device=batch.model.device, dtype=batch.model.dtype)
        return latents, generators

    # 4 -------------------------------------------------------------------------------------------

    def _denoise(
        self,
        batch: _Batch,
        embeds: _PromptEmbeds,
        latents: torch.Tensor,
        generators: list[torch.Generator],
        on_step: StepCallback | None,
    ) -> torch.Tensor:
        """The preset's sampler over ``latents``; returns denoised latents (no decode)."""
        pipeline = batch.model.pipeline
        noise_scheduler = make_noise_scheduler(batch.preset.sampler, batch.model.base_scheduler_config)
        bind_seeds(noise_scheduler, [spec.seed for spec in batch.specs])
        pipeline.scheduler = noise_scheduler
        output = pipeline(
            prompt_embeds=embeds.prompt,
            pooled_prompt_embeds=embeds.pooled,
            negative_prompt_embeds=embeds.negative,
            negative_pooled_prompt_embeds=embeds.negative_pooled,
            latents=latents,
            generator=generators,
            num_inference_steps=batch.preset.steps,
            guidance_scale=batch.preset.guidance_scale,
            width=batch.width,
            height=batch.height,
            output_type="latent",
            callback_on_step_end=_step_reporter(on_step) if on_step is not None else None,
            return_dict=False,
        )
        denoised: torch.Tensor = output[0]
        return denoised

    # 5 -------------------------------------------------------------------------------------------

    def _decode(self, batch: _Batch, latents: torch.Tensor) -> torch.Tensor:
        """VAE decode as the SDXL pipeline does it: fp16 VAEs that ask for it run in fp32."""
        vae = batch.model.pipeline.vae
        upcast = vae.dtype == torch.float16 and bool(vae.config.force_upcast)
        if upcast:
            vae.to(dtype=torch.float32)
        try:
            latents = _unscale_latents(vae.config, latents.to(vae.dtype))
            image: torch.Tensor = vae.decode(latents, return_dict=False)[0]
        finally:
            if upcast:
                vae.to(dtype=torch.float16)
        return image

    # 6 -------------------------------------------------------------------------------------------

    def _postprocess(self, plan: BatchPlan, images: torch.Tensor) -> tuple[RenderedImage, ...]:
        """Pixels to encoded files, one per plan item, in plan order."""
        pixels = to_pixels(images)
        rendered = []
        for item, image in zip(plan.items, pixels, strict=True):
            fmt = item.spec.output_format
            rendered.append(RenderedImage(item, encode_image(image, fmt), fmt.media_type, item.spec.seed))
        return tuple(rendered)


def _unscale_latents(vae_config: Any, latents: torch.Tensor) -> torch.Tensor:
    """Undo the VAE's latent scaling (and normalization, for VAEs that define a mean and std)."""
    mean: Sequence[float] | None = getattr(vae_config, "latents_mean", None)  # SDXL: None
    std: Sequence[float] | None = getattr(vae_config, "latents_std", None)
    if mean is not None and std is not None:
        channels = latents.shape[1]
        mean_t = torch.tensor(mean).view(1, channels, 1, 1).to(latents.device, latents.dtype)
        std_t = torch.tensor(std).view(1, channels, 1, 1).to(latents.device, latents.dtype)
        scaling = float(vae_config.scaling_factor)
        normalized: torch.Tensor = latents * std_t / scaling + mean_t
        return normalized
    unscaled: torch.Tensor = latents / float(vae_config.scaling_factor)
    return unscaled


def _step_reporter(on_step: StepCallback) -> Callable[[Any, int, Any, dict[str, Any]], dict[str, Any]]:
    """Adapt ``on_step(done, total)`` to diffusers' ``callback_on_step_end``."""

    def report(pipeline: Any, step_index: int, timestep: Any, tensors: dict[str, Any]) -> dict[str, Any]:
        on_step(step_index + 1, int(pipeline.num_timesteps))
        return tensors

    return report
