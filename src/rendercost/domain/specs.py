"""What to render: ``RenderRequest`` (what a client asks for) and ``RenderSpec`` (one image).

A request with ``n`` images and seed ``s`` expands into ``n`` specs with seeds ``s, s+1, ...``.
Specs with equal ``batch_key`` can run in one batched pipeline call.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from enum import StrEnum
from typing import Any

from rendercost.domain.controls import CachePolicy, ClientInfo, Retention, RewriteRecord
from rendercost.domain.costs import Attribution
from rendercost.domain.presets import Preset, Sampler, get_preset
from rendercost.errors import InvalidRequest

MAX_SEED = 2**32 - 1  # seeds index a torch.Generator; image i uses seed + i, so seed + n - 1 <= MAX_SEED
RANDOM_SEED = -1  # ask rendercost to pick a seed

# The 26 sizes SDXL was trained around (W, H), from the reference.
SDXL_SIZES: tuple[tuple[int, int], ...] = (
    (704, 1408), (704, 1344), (768, 1344), (768, 1280), (832, 1216), (832, 1152), (896, 1152),
    (896, 1088), (960, 1088), (960, 1024), (1024, 1024), (1024, 960), (1088, 960), (1088, 896),
    (1152, 896), (1152, 832), (1216, 832), (1280, 768), (1344, 768), (1344, 704), (1408, 704),
    (1472, 704), (1536, 640), (1600, 640), (1664, 576), (1728, 576),
)  # fmt: skip

_SIZE_RE = re.compile(r"^\s*(\d+)\s*[xX*]\s*(\d+)\s*$")


class OutputFormat(StrEnum):
    """An output file's encoding; it knows its media type and file suffix (the only table of them)."""

    PNG = "png"
    WEBP = "webp"
    JPEG = "jpeg"

    @property
    def media_type(self) -> str:
        """``image/png``, ``image/webp`` or ``image/jpeg``."""
        return f"image/{self.value}"

    @property
    def suffix(self) -> str:
        """The file name ending without the dot: ``png``, ``webp`` or ``jpg``."""
        return "jpg" if self is OutputFormat.JPEG else self.value

    @classmethod
    def parse(cls, name: str, *, param: str = "format") -> OutputFormat:
        """A format by name, case-insensitive, ``jpg`` meaning ``jpeg``; ``InvalidRequest`` otherwise."""
        text = name.strip().lower()
        try:
            return cls("jpeg" if text == "jpg" else text)
        except ValueError:
            valid = ", ".join(format_.value for format_ in cls)
            raise InvalidRequest(f"unknown format {name!r}; choose one of: {valid}", param=param) from None

    @classmethod
    def from_media_type(cls, media_type: str) -> OutputFormat:
        """The format whose ``media_type`` this is; ``ValueError`` for any other."""
        for format_ in cls:
            if format_.media_type == media_type:
                return format_
        raise ValueError(f"no output format has media type {media_type!r}")

    @classmethod
    def from_suffix(cls, suffix: str) -> OutputFormat | None:
        """The format a file name ending names (``.png``, ``jpg``, ``.JPEG``, ...), or None."""
        text = suffix.lower().lstrip(".")
        return cls.parse(text) if text in {"png", "webp", "jpeg", "jpg"} else None


class Priority(StrEnum):
    """Priority classes; interactive work is planned before batch work (with aging)."""

    INTERACTIVE = "interactive"  # a person is waiting
    BATCH = "batch"  # bulk work; may run on spot capacity


@dataclass(frozen=True)
class LoraRef:
    """A LoRA named from a configured folder (never a path) and its adapter weight."""

    name: str  # file stem in one of the configured LoRA folders
    weight: float = 1.0  # adapter scale


def parse_size(text: str, *, param: str = "size") -> tuple[int, int]:
    """Parse ``"WxH"`` (also ``W*H``) into ``(width, height)``; shape only, limits are checked later."""
    match = _SIZE_RE.match(text)
    if not match:
        raise InvalidRequest(f"size {text!r} is not of the form WIDTHxHEIGHT, e.g. 1024x1024", param=param)
    return int(match.group(1)), int(match.group(2))


def check_size(width: int, height: int, *, min_side: int, max_side: int, param: str = "size") -> None:
    """Accept an SDXL size or any WxH with both sides multiples of 8 within [min_side, max_side]."""
    if (width, height) in SDXL_SIZES:
        return
    if width % 8 or height % 8:
        raise InvalidRequest(f"size {width}x{height}: both sides must be multiples of 8", param=param)
    if not (min_side <= width <= max_side and min_side <= height <= max_side):
        raise InvalidRequest(
            f"size {width}x{height}: each side must be between {min_side} and {max_side}", param=param
        )


def check_seed(seed: int, n: int, *, param: str = "seed") -> None:
    """The one seed rule: ``RANDOM_SEED`` (-1) or ``0 .. MAX_SEED - n + 1`` (image i uses seed + i)."""
    last = MAX_SEED - n + 1
    if seed != RANDOM_SEED and not 0 <= seed <= last:
        raise InvalidRequest(
            f"seed must be -1 (random) or between 0 and {last} for {n} image(s)", param=param
        )


def resolve_seed(seed: int | None, n: int, *, param: str = "seed") -> int:
    """The first image's seed: checked with ``check_seed``; a random one (leaving room for ``n``
    images) when ``seed`` is None or ``RANDOM_SEED``."""
    if seed is None or seed == RANDOM_SEED:
        return secrets.randbelow(MAX_SEED - n + 2)
    check_seed(seed, n, param=param)
    return seed


_OVERRIDES = ("steps", "guidance_scale", "sampler")


def check_overrides(
    steps: int | None, guidance_scale: float | None, *, max_steps: int, max_guidance_scale: float
) -> None:
    """The limits on a request's overrides: ``1 <= steps <= max_steps`` and ``0 <= guidance_scale <=
    max_guidance_scale`` (``settings.max_steps``, ``settings.max_guidance_scale``); ``InvalidRequest``
    naming the field."""
    if steps is not None and not 1 <= steps <= max_steps:
        raise InvalidRequest(f"steps must be between 1 and {max_steps}", param="steps")
    if guidance_scale is not None and not 0.0 <= guidance_scale <= max_guidance_scale:
        raise InvalidRequest(
            f"guidance_scale must be between 0 and {max_guidance_scale:g}", param="guidance_scale"
        )


@dataclass(frozen=True)
class RenderSpec:
    """Everything that decides one image's pixels (and its file format)."""

    prompt: str  # final prompt given to the text encoders
    negative_prompt: str = ""  # ignored (never encoded) by presets without CFG
    model: str = "default"  # configured model name
    preset: str = "speed"  # preset name, see domain.presets
    width: int = 1024  # pixels, multiple of 8
    height: int = 1024  # pixels, multiple of 8
    seed: int = 0  # resolved seed, 0..MAX_SEED (never RANDOM_SEED here)
    loras: tuple[LoraRef, ...] = ()  # style LoRAs, applied on top of the preset's speed LoRA
    output_format: OutputFormat = OutputFormat.PNG  # encoding of the output file
    # per-request overrides of the preset (None: the preset's value); checked by ``check_overrides``
    steps: int | None = None  # denoising steps
    guidance_scale: float | None = None  # CFG scale; <= 1 runs without the negative branch
    sampler: Sampler | None = None  # one of ``presets.REQUEST_SAMPLERS``

    @property
    def batch_key(self) -> tuple[Any, ...]:
        """Specs with the same key can share one pipeline call."""
        loras = tuple(sorted((lora.name, lora.weight) for lora in self.loras))
        overrides = (self.steps, self.guidance_scale, self.sampler)
        return (self.model, self.preset, self.width, self.height, loras, overrides)

    def run_preset(self, base: Preset | None = None) -> Preset:
        """What actually runs: ``base`` (default: the preset named) with this spec's overrides."""
        preset = base if base is not None else get_preset(self.preset)
        return preset.overridden(steps=self.steps, guidance_scale=self.guidance_scale, sampler=self.sampler)

    @property
    def pixels(self) -> int:
        return self.width * self.height

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready; an override left None is left out (so specs without overrides keep their hash)."""
        data = asdict(self)
        data["output_format"] = str(self.output_format)
        data["loras"] = [asdict(lora) for lora in self.loras]
        for name in _OVERRIDES:
            if data[name] is None:
                del data[name]
        if self.sampler is not None:
            data["sampler"] = str(self.sampler)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RenderSpec:
        values = dict(data)
        values["loras"] = tuple(LoraRef(**lora) for lora in values.get("loras", ()))
        values["output_format"] = OutputFormat(values.get("output_format", "png"))
        if values.get("sampler") is not None:
            values["sampler"] = Sampler(values["sampler"])
        return cls(**values)

    def content_hash(self, model_fingerprint: str = "") -> str:
        """SHA-256 over every field that decides the output bytes, plus the model's weights hash."""
        payload = json.dumps({"spec": self.to_dict(), "weights": model_fingerprint}, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()


@dataclass(frozen=True)
class RenderRequest:
    """A client's ask: one spec template, ``n`` images, seeds ``seed .. seed + n - 1``; frozen (admission
    makes changed copies with ``dataclasses.replace``)."""

    spec: RenderSpec  # template; its seed is the first image's seed
    n: int = 1  # images, 1..max_n
    priority: Priority = Priority.INTERACTIVE  # planning class
    styles: tuple[str, ...] = ()  # style names asked for (admission applies the style set's templates)
    cache: CachePolicy = field(default_factory=CachePolicy)  # exact-result cache mode and outcome
    rewrite: RewriteRecord | None = None  # the prompt rewrite done at admission, if any
    client: ClientInfo = field(default_factory=ClientInfo)  # which door, which end user
    retention: Retention = field(default_factory=Retention)  # how long its images are kept (admission)
    styles_applied: tuple[str, ...] = ()  # the style set's templates admission applied to ``spec``

    @property
    def rewrite_styles(self) -> tuple[str, ...]:
        """The asked styles no template was applied for: what the rewrite step reads."""
        applied = {name.casefold() for name in self.styles_applied}
        return tuple(name for name in self.styles if name.strip().casefold() not in applied)

    def image_specs(self) -> list[RenderSpec]:
        """One spec per image, with seeds ``seed + i``."""
        return [replace(self.spec, seed=self.spec.seed + i) for i in range(self.n)]

    def attribution(self, tenant: str, tags: Mapping[str, str] | None = None) -> Attribution:
        """Who and what this request's cost lines are billed to."""
        spec = self.spec
        return Attribution(tenant, spec.model, spec.preset, str(self.priority), dict(tags or {}))

    def to_dict(self) -> dict[str, Any]:
        return {
            "spec": self.spec.to_dict(),
            "n": self.n,
            "priority": str(self.priority),
            "styles": list(self.styles),
            "cache": self.cache.to_dict(),
            "rewrite": self.rewrite.to_dict() if self.rewrite is not None else None,
            "client": self.client.to_dict(),
            "retention": self.retention.to_dict(),
            "styles_applied": list(self.styles_applied),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RenderRequest:
        """The request back from ``to_dict``'s form (the current payload schema)."""
        rewrite = data.get("rewrite")
        return cls(
            spec=RenderSpec.from_dict(data["spec"]),
            n=int(data.get("n", 1)),
            priority=Priority(data.get("priority", "interactive")),
            styles=tuple(data.get("styles", ())),
            cache=CachePolicy.from_dict(data.get("cache") or {}),
            rewrite=RewriteRecord.from_dict(rewrite) if isinstance(rewrite, dict) else None,
            client=ClientInfo.from_dict(data.get("client") or {}),
            retention=Retention.from_dict(data.get("retention") or {}),
            styles_applied=tuple(data.get("styles_applied", ())),
        )
