"""HTTP requests -> ``RenderRequest``: model names, sizes, quality tiers and presets, seeds.

On ``POST /v1/images/generations`` only, OpenAI sizes map to the SDXL size of the same (or nearest)
aspect ratio (``openai_size``); everywhere else a ``WxH`` size renders as asked if it passes
``check_size``, else 400 naming ``size`` (``resolve_size``). OpenAI quality tiers map to presets;
``low`` takes the fastest preset the model has a speed LoRA for. Both tables are in the README. The
model checks go through ``admission.catalog.ModelCatalog``; seeds, sizes and formats follow the
shared ``domain.specs`` rules.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rendercost.admission.catalog import ModelCatalog
from rendercost.admission.lifecycle import check_retention
from rendercost.domain.controls import ClientInfo, Retention
from rendercost.domain.presets import DEFAULT_PRESET, Sampler, get_preset, parse_sampler
from rendercost.domain.specs import (
    LoraRef,
    OutputFormat,
    Priority,
    RenderRequest,
    RenderSpec,
    check_overrides,
    check_size,
    parse_size,
)
from rendercost.errors import InvalidRequest, PresetUnavailable, UnknownLora, UnknownModel
from rendercost.settings import Settings

OPENAI_SIZES: dict[str, tuple[int, int]] = {
    "1024x1024": (1024, 1024),  # 1:1
    "512x512": (1024, 1024),  # SDXL renders ~1 megapixel; smaller squares get its square
    "256x256": (1024, 1024),
    "1536x1024": (1216, 832),  # 3:2 -> 1216x832 (1.46)
    "1024x1536": (832, 1216),  # 2:3
    "1792x1024": (1344, 768),  # 7:4 exactly
    "1024x1792": (768, 1344),  # 4:7
}

OPENAI_MODELS = frozenset({"dall-e-2", "dall-e-3", "gpt-image-1", "gpt-image-1-mini", "gpt-image-1.5"})

QUALITY_PRESETS: dict[str, tuple[str, ...]] = {
    "auto": ("speed",),
    "standard": ("speed",),
    "medium": ("speed",),
    "low": ("lightning", "extreme-speed", "speed"),  # the first the model can run
    "high": ("quality",),
    "hd": ("quality",),
}

_LORA_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,199}$")


def resolve_model(catalog: ModelCatalog, settings: Settings, name: str | None, *, openai: bool) -> str:
    """A configured model name; OpenAI's model names (on the OpenAI route) mean the default model."""
    if name is None or (openai and name in OPENAI_MODELS):
        return settings.default_model
    known = catalog.names()
    if name not in known:
        raise UnknownModel(f"unknown model {name!r}; configured: {', '.join(sorted(known))}", param="model")
    return name


def resolve_preset(catalog: ModelCatalog, model: str, name: str | None) -> str:
    """``name`` (default: speed), checked to exist and to be runnable on ``model``."""
    preset = get_preset(name or DEFAULT_PRESET)
    if not catalog.preset_available(model, preset.name):
        raise PresetUnavailable(
            f"preset {preset.name!r} needs the {preset.speed_lora!r} speed LoRA, which model {model!r} "
            "does not configure",
            param="preset",
        )
    return preset.name


def preset_for_quality(catalog: ModelCatalog, model: str, quality: str | None) -> str:
    for name in QUALITY_PRESETS[quality or "auto"]:
        if catalog.preset_available(model, name):
            return name
    return DEFAULT_PRESET


def openai_size(settings: Settings, size: str | None) -> tuple[int, int]:
    """The OpenAI endpoint's size: an OpenAI size (``OPENAI_SIZES``) as the SDXL size it maps to, any
    other as ``resolve_size``."""
    if size is not None and size in OPENAI_SIZES:
        return OPENAI_SIZES[size]
    return resolve_size(settings, size)


def resolve_size(settings: Settings, size: str | None) -> tuple[int, int]:
    """``(width, height)`` for ``"WxH"`` exactly as asked, ``"auto"`` or None (``settings.default_size``);
    ``InvalidRequest`` naming ``size`` when it is malformed or out of range."""
    text = settings.default_size if size in (None, "auto") else size
    assert text is not None  # noqa: S101  default_size is always set
    width, height = parse_size(text)
    check_size(width, height, min_side=settings.min_side, max_side=settings.max_side)
    return width, height


def check_n(settings: Settings, n: int) -> int:
    if not 1 <= n <= settings.max_n:
        raise InvalidRequest(f"n must be between 1 and {settings.max_n}", param="n")
    return n


def resolve_loras(catalog: ModelCatalog, model: str, loras: list[tuple[str, float]]) -> tuple[LoraRef, ...]:
    refs = []
    for i, (name, weight) in enumerate(loras):
        if not _LORA_NAME.match(name):
            message = f"LoRA name {name!r} must be a file stem, not a path"
            raise InvalidRequest(message, param=f"loras.{i}.name")
        if not catalog.lora_exists(model, name):
            raise UnknownLora(f"no LoRA named {name!r} in the configured folders", param=f"loras.{i}.name")
        refs.append(LoraRef(name, weight))
    return tuple(refs)


def door_retention(settings: Settings, asked_days: int | None, *, format_asked: bool) -> Retention:
    """The client's retention ask (checked against ``artifact_max_retention_days``: 400
    ``retention_too_long`` before anything is charged) and whether it left the format to its class."""
    check_retention(asked_days, settings.artifact_max_retention_days)
    return Retention(asked_days=asked_days, format_open=not format_asked)


@dataclass(frozen=True)
class Overrides:
    """A request's checked overrides of its preset (None: the preset's value)."""

    steps: int | None = None
    guidance_scale: float | None = None
    sampler: Sampler | None = None


def resolve_overrides(
    settings: Settings, steps: int | None, guidance_scale: float | None, sampler: str | None
) -> Overrides:
    """``steps``, ``guidance_scale`` and ``sampler`` checked against the settings' limits and the sampler
    list; ``InvalidRequest`` naming the field."""
    check_overrides(
        steps, guidance_scale, max_steps=settings.max_steps, max_guidance_scale=settings.max_guidance_scale
    )
    return Overrides(steps, guidance_scale, parse_sampler(sampler) if sampler is not None else None)


def build_request(
    *,
    prompt: str,
    negative_prompt: str,
    model: str,
    preset: str,
    size: tuple[int, int],
    seed: int,
    n: int,
    loras: tuple[LoraRef, ...],
    output_format: str | None,
    priority: str,
    styles: tuple[str, ...],
    client: ClientInfo,
    retention: Retention | None = None,
    overrides: Overrides = Overrides(),
) -> RenderRequest:
    """The request a door parsed; ``output_format`` None renders PNG unless the request's class has a
    format (``retention.format_open``, see ``admission.lifecycle``)."""
    width, height = size
    spec = RenderSpec(
        prompt=prompt,
        negative_prompt=negative_prompt,
        model=model,
        preset=preset,
        width=width,
        height=height,
        seed=seed,
        loras=loras,
        output_format=OutputFormat.parse(output_format or "png", param="output_format"),
        steps=overrides.steps,
        guidance_scale=overrides.guidance_scale,
        sampler=overrides.sampler,
    )
    return RenderRequest(
        spec=spec,
        n=n,
        priority=Priority(priority),
        styles=styles,
        client=client,
        retention=retention or Retention(),
    )
