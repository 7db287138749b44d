"""Client requests -> ``RenderRequest``: model names, sizes, quality tiers and presets, seeds.

OpenAI sizes map to the SDXL size of the same (or nearest) aspect ratio; other ``WxH`` sizes are
rendered as asked if they pass ``check_size``. OpenAI quality tiers map to presets; ``low`` takes the
fastest preset the model has a speed LoRA for. Both tables are in the README.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from pathlib import Path
from typing import Protocol

from rendercost.domain.controls import ClientInfo
from rendercost.domain.presets import DEFAULT_PRESET, get_preset
from rendercost.domain.specs import (
    LoraRef,
    OutputFormat,
    Priority,
    RenderRequest,
    RenderSpec,
    check_size,
    parse_size,
)
from rendercost.errors import InvalidRequest, PresetUnavailable, UnknownLora, UnknownModel
from rendercost.execution.models.manifest import MODEL_LORA_DIR, read_speed_loras
from rendercost.settings import DEFAULT_MODEL_NAME, Settings

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


class ModelCatalog(Protocol):
    """What the API checks about models before it queues a job, so a bad request is a 400 and never a
    failed job. Calls may block (they read model folders): routes run them in a thread."""

    def names(self) -> Collection[str]:
        """Configured model names."""
        ...

    def preset_available(self, model: str, preset: str) -> bool:
        """False when ``preset`` needs a speed LoRA ``model`` does not have."""
        ...

    def lora_exists(self, model: str, name: str) -> bool: ...

    def check_prompt(self, model: str, prompt: str, *, param: str) -> None:
        """Raise ``PromptTooLong`` when ``prompt`` does not fit ``model``'s text encoders."""
        ...


class SettingsModelCatalog:
    """A ``ModelCatalog`` read from settings and model folders, without loading anything: names are
    ``settings.models`` plus the default model; a model's speed LoRAs are its ``speed_loras`` setting
    over its folder's ``rendercost.json`` manifest; LoRAs are looked up in the configured folders."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def names(self) -> Collection[str]:
        return {*self.settings.models, self.settings.default_model}

    def _model_dir(self, model: str) -> Path | None:
        config = self.settings.models.get(model)
        if config is not None:
            folder = Path(config.source).expanduser()
            return folder if folder.is_dir() else None
        return self.settings.tiny_model_dir if model == DEFAULT_MODEL_NAME else None

    def speed_loras(self, model: str) -> dict[str, str]:
        folder = self._model_dir(model)
        loras = read_speed_loras(folder) if folder is not None else {}
        config = self.settings.models.get(model)
        return {**loras, **(config.speed_loras if config is not None else {})}

    def preset_available(self, model: str, preset: str) -> bool:
        role = get_preset(preset).speed_lora
        return role is None or role in self.speed_loras(model)

    def lora_exists(self, model: str, name: str) -> bool:
        folders = list(self.settings.resolved_lora_dirs)
        model_dir = self._model_dir(model)
        if model_dir is not None:
            folders.append(model_dir / MODEL_LORA_DIR)
        return any((Path(d) / f"{name}.safetensors").is_file() for d in folders)

    def check_prompt(self, model: str, prompt: str, *, param: str) -> None:
        """No tokenizer here: prompts are checked by the runner."""


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


def resolve_size(settings: Settings, size: str | None) -> tuple[int, int]:
    """``(width, height)`` for ``"WxH"``, ``"auto"`` or None (``settings.default_size``)."""
    text = settings.default_size if size in (None, "auto") else size
    assert text is not None
    if text in OPENAI_SIZES:
        return OPENAI_SIZES[text]
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
    output_format: str,
    priority: str,
    styles: tuple[str, ...],
    client: ClientInfo,
) -> RenderRequest:
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
        output_format=OutputFormat(output_format),
    )
    return RenderRequest(spec=spec, n=n, priority=Priority(priority), styles=styles, client=client)
