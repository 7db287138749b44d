"""Fooocus-API's text-to-image body -> ``RenderRequest``, with what was substituted or ignored.

Where Fooocus-API silently substitutes, so does this door by default, and it says so
(``FooocusAsk.substituted``): an unknown ``base_model_name`` renders the default model, an unknown
style or LoRA is dropped. ``settings.fooocus_strict`` refuses those instead (422 naming the field).
``performance_selection`` maps to a preset (``PRESET_OF``); ``aspect_ratios_selection`` ``"W*H"``
renders as asked (``translate.resolve_size``); ``image_seed`` -1 is random, image i gets seed + i.
As in Fooocus, ``guidance_scale`` and ``advanced_params``' ``overwrite_step`` (> 0) and ``sampler_name``
(``FOOOCUS_SAMPLERS``) apply to the Speed and Quality presets only (the speed-LoRA presets fix their own);
a value equal to the preset's is no override. Styles go through admission (``admission.styles``).
"""

from __future__ import annotations

from dataclasses import dataclass

from rendercost.admission.catalog import ModelCatalog
from rendercost.admission.styles import StyledPrompt, apply_styles, shipped_styles
from rendercost.api.fooocus_schemas import (
    IGNORED_FIELDS,
    PRESET_OF,
    FooocusLora,
    Substituted,
    Text2ImgRequest,
)
from rendercost.api.translate import (
    Overrides,
    build_request,
    resolve_loras,
    resolve_overrides,
    resolve_preset,
    resolve_size,
)
from rendercost.domain.controls import ClientInfo
from rendercost.domain.presets import get_preset
from rendercost.domain.specs import LoraRef, RenderRequest, resolve_seed
from rendercost.errors import InvalidRequest, UnknownModel
from rendercost.settings import Settings

API_NAME = "fooocus"  # ClientInfo.api of jobs made at this door
MODEL_SUFFIXES = (".safetensors", ".ckpt")  # Fooocus names checkpoints by file name
NO_LORA = "None"


@dataclass(frozen=True)
class FooocusAsk:
    """A parsed text-to-image call: the request to admit and what the door changed on the way."""

    request: RenderRequest
    random_seed: bool  # image_seed was -1: the result is never cached
    styles_applied: tuple[str, ...]
    substituted: tuple[Substituted, ...]
    ignored: tuple[str, ...]  # fields sent that rendercost does not act on


def _stem(name: str) -> str:
    for suffix in MODEL_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def resolve_fooocus_model(catalog: ModelCatalog, settings: Settings, name: str, *, asked: bool) -> str:
    """A configured model for ``base_model_name`` (exact, or without ``.safetensors``); the default
    model for any other name; ``UnknownModel`` for one the client sent when strict."""
    known = catalog.names()
    for candidate in (name, _stem(name)):
        if candidate in known:
            return candidate
    if asked and settings.fooocus_strict:
        message = f"unknown base_model_name {name!r}; GET /v1/engines/all-models lists them"
        raise UnknownModel(message, param="base_model_name")
    return settings.default_model


def _loras(
    catalog: ModelCatalog, model: str, loras: list[FooocusLora], strict: bool
) -> tuple[tuple[LoraRef, ...], list[Substituted]]:
    wanted = [(i, lora) for i, lora in enumerate(loras) if lora.enabled and lora.model_name != NO_LORA]
    kept: list[LoraRef] = []
    dropped: list[Substituted] = []
    for i, lora in wanted:
        try:
            kept.extend(resolve_loras(catalog, model, [(_stem(lora.model_name), lora.weight)]))
        except InvalidRequest as exc:  # UnknownLora, or a name that is not a file stem
            if strict:
                raise InvalidRequest(exc.message, param=f"loras.{i}.model_name", code=exc.code) from None
            dropped.append(Substituted(field=f"loras.{i}.model_name", asked=lora.model_name, used=None))
    return tuple(kept), dropped


FOOOCUS_SAMPLERS = {  # Fooocus' sampler_name -> rendercost's sampler (its default scheduler is karras)
    "dpmpp_2m_sde_gpu": "dpmpp_2m_sde_karras",
    "dpmpp_2m_sde": "dpmpp_2m_sde_karras",
    "dpmpp_2m": "dpmpp_2m",
    "euler_ancestral": "euler_a",
    "euler": "euler",
    "ddim": "ddim",
    "lcm": "lcm",
}


def _overrides(
    body: Text2ImgRequest, preset_name: str, settings: Settings
) -> tuple[Overrides, list[Substituted]]:
    preset = get_preset(preset_name)
    if preset.speed_lora is not None:
        return Overrides(), []
    advanced = body.advanced_params or {}
    raw_steps = advanced.get("overwrite_step", -1)
    steps = raw_steps if isinstance(raw_steps, int) and raw_steps > 0 else None
    guidance = body.guidance_scale if "guidance_scale" in body.model_fields_set else None
    name = str(advanced.get("sampler_name", ""))
    sampler = FOOOCUS_SAMPLERS.get(name)
    dropped = []
    if name and sampler is None:
        if settings.fooocus_strict:
            valid = ", ".join(FOOOCUS_SAMPLERS)
            raise InvalidRequest(f"unknown sampler_name {name!r}; one of: {valid}", param="advanced_params")
        dropped.append(
            Substituted(field="advanced_params.sampler_name", asked=name, used=str(preset.sampler))
        )
    overrides = resolve_overrides(
        settings,
        steps if steps != preset.steps else None,
        guidance if guidance != preset.guidance_scale else None,
        sampler if sampler != preset.sampler else None,
    )
    return overrides, dropped


def _output_format(extension: str, *, png: bool) -> str:
    return "png" if png else extension.strip().lstrip(".") or "png"


def _styled(body: Text2ImgRequest, settings: Settings) -> tuple[StyledPrompt, list[Substituted]]:
    styled = apply_styles(
        body.prompt,
        body.negative_prompt,
        body.style_selections,
        strict=settings.fooocus_strict,
        param="style_selections",
    )
    return styled, [Substituted(field="style_selections", asked=name, used=None) for name in styled.unknown]


def to_render_request(
    catalog: ModelCatalog, settings: Settings, body: Text2ImgRequest, *, png: bool
) -> FooocusAsk:
    """Blocking (reads model folders). ``png``: ``Accept: image/png`` (one image, PNG bytes)."""
    sent = body.model_fields_set
    n = 1 if png else body.image_number
    if n > settings.max_n:
        raise InvalidRequest(f"image_number must be between 1 and {settings.max_n}", param="image_number")
    asked_model = "base_model_name" in sent  # the default name is Fooocus' checkpoint: never reported
    model = resolve_fooocus_model(catalog, settings, body.base_model_name, asked=asked_model)
    substituted = [Substituted(field="base_model_name", asked=body.base_model_name, used=model)]
    if model == _stem(body.base_model_name) or not asked_model:
        substituted = []
    styled, unknown_styles = _styled(body, settings)
    known_styles = tuple(name for name in body.style_selections if shipped_styles().find(name) is not None)
    loras, dropped = _loras(catalog, model, body.loras, settings.fooocus_strict)
    preset = resolve_preset(catalog, model, PRESET_OF[body.performance_selection])
    overrides, sampler_dropped = _overrides(body, preset, settings)
    catalog.check_prompt(model, styled.prompt, param="prompt")
    if styled.negative_prompt:
        catalog.check_prompt(model, styled.negative_prompt, param="negative_prompt")
    request = build_request(  # admission applies the styles (the same templates as ``styled``)
        prompt=body.prompt,
        negative_prompt=body.negative_prompt,
        model=model,
        preset=preset,
        size=resolve_size(settings, body.aspect_ratios_selection.replace("\u00d7", "x")),
        seed=resolve_seed(body.image_seed, n, param="image_seed"),
        n=n,
        loras=loras,
        output_format=_output_format(body.save_extension, png=png),
        priority="interactive",
        styles=known_styles,
        client=ClientInfo(API_NAME, None, "b64_json" if body.require_base64 else "url"),
        overrides=overrides,
    )
    return FooocusAsk(
        request=request,
        random_seed=body.image_seed == -1,
        styles_applied=styled.applied,
        substituted=(*substituted, *unknown_styles, *dropped, *sampler_dropped),
        ignored=tuple(name for name in IGNORED_FIELDS if name in sent),
    )
