"""What the playground offers, read once per page view: models, presets, sizes, styles, LoRAs.

Every list comes from where the API checks the same field (the catalog, ``domain.presets``,
``domain.specs.SDXL_SIZES``, the shipped style set), so the page offers nothing the API would refuse
for being unknown. Blocking (the catalog reads model folders): callers run it in a thread.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import gcd

from rendercost.admission.catalog import ModelCatalog
from rendercost.admission.styles import shipped_styles
from rendercost.domain.presets import DEFAULT_PRESET, PRESETS
from rendercost.domain.specs import SDXL_SIZES, parse_size
from rendercost.execution.models.catalog import RegistryCatalog
from rendercost.execution.models.loras import list_loras
from rendercost.settings import Settings


@dataclass(frozen=True)
class SizeChoice:
    value: str  # "WxH", as the API takes it
    label: str  # e.g. "1152 x 896 (9:7)"


@dataclass(frozen=True)
class PresetChoice:
    name: str
    steps: int  # denoising steps
    available: bool  # False: the model lacks the speed LoRA it needs


@dataclass(frozen=True)
class PlaygroundOptions:
    model: str  # the default model, whose presets and LoRAs are listed
    models: tuple[str, ...]
    presets: tuple[PresetChoice, ...]
    default_preset: str
    sizes: tuple[SizeChoice, ...]  # the server's default size first, then the SDXL aspect ratios
    styles: tuple[str, ...]
    loras: tuple[str, ...]  # LoRA names of ``model``
    max_n: int


def _ratio(width: int, height: int) -> str:
    divisor = gcd(width, height)
    return f"{width // divisor}:{height // divisor}"


def size_choices(default_size: str) -> tuple[SizeChoice, ...]:
    """The default size (labelled so), then every SDXL size with its aspect ratio."""
    width, height = parse_size(default_size)
    first = SizeChoice(f"{width}x{height}", f"{width} x {height} (server default)")
    rest = [
        SizeChoice(f"{w}x{h}", f"{w} x {h} ({_ratio(w, h)})")
        for w, h in SDXL_SIZES
        if (w, h) != (width, height)
    ]
    return (first, *rest)


def model_loras(catalog: ModelCatalog, model: str) -> tuple[str, ...]:
    """The LoRA names ``model`` can use (none when the catalog has no model files to look in)."""
    if isinstance(catalog, RegistryCatalog):
        return tuple(list_loras(catalog.registry.lora_folders(model)))
    return ()


def playground_options(settings: Settings, catalog: ModelCatalog) -> PlaygroundOptions:
    model = settings.default_model
    presets = tuple(
        PresetChoice(p.name, p.steps, catalog.preset_available(model, p.name)) for p in PRESETS.values()
    )
    return PlaygroundOptions(
        model=model,
        models=tuple(sorted(catalog.names(), key=lambda name: (name != model, name))),
        presets=presets,
        default_preset=DEFAULT_PRESET,
        sizes=size_choices(settings.default_size),
        styles=tuple(shipped_styles().names()),
        loras=model_loras(catalog, model),
        max_n=settings.max_n,
    )
