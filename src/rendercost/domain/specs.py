"""What to render: ``RenderRequest`` (what a client asks for) and ``RenderSpec`` (one image).

A request with ``n`` images and seed ``s`` expands into ``n`` specs with seeds ``s, s+1, ...``.
Specs with equal ``batch_key`` can run in one batched pipeline call.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field, replace
from enum import StrEnum
from typing import Any

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
    PNG = "png"
    WEBP = "webp"
    JPEG = "jpeg"


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

    @property
    def batch_key(self) -> tuple[Any, ...]:
        """Specs with the same key can share one pipeline call."""
        loras = tuple(sorted((lora.name, lora.weight) for lora in self.loras))
        return (self.model, self.preset, self.width, self.height, loras)

    @property
    def pixels(self) -> int:
        return self.width * self.height

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["output_format"] = str(self.output_format)
        data["loras"] = [asdict(lora) for lora in self.loras]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RenderSpec:
        values = dict(data)
        values["loras"] = tuple(LoraRef(**lora) for lora in values.get("loras", ()))
        values["output_format"] = OutputFormat(values.get("output_format", "png"))
        return cls(**values)

    def content_hash(self, model_fingerprint: str = "") -> str:
        """SHA-256 over every field that decides the output bytes, plus the model's weights hash."""
        payload = json.dumps({"spec": self.to_dict(), "weights": model_fingerprint}, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()


@dataclass(frozen=True)
class RenderRequest:
    """A client's ask: one spec template, ``n`` images, seeds ``seed .. seed + n - 1``."""

    spec: RenderSpec  # template; its seed is the first image's seed
    n: int = 1  # images, 1..max_n
    priority: Priority = Priority.INTERACTIVE  # planning class
    styles: tuple[str, ...] = ()  # style names applied before rendering (prompt rewriting)
    extra: dict[str, Any] = field(default_factory=dict)  # free-form client metadata (e.g. OpenAI "user")

    def image_specs(self) -> list[RenderSpec]:
        """One spec per image, with seeds ``seed + i``."""
        return [replace(self.spec, seed=self.spec.seed + i) for i in range(self.n)]

    def to_dict(self) -> dict[str, Any]:
        return {
            "spec": self.spec.to_dict(),
            "n": self.n,
            "priority": str(self.priority),
            "styles": list(self.styles),
            "extra": dict(self.extra),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RenderRequest:
        return cls(
            spec=RenderSpec.from_dict(data["spec"]),
            n=int(data.get("n", 1)),
            priority=Priority(data.get("priority", "interactive")),
            styles=tuple(data.get("styles", ())),
            extra=dict(data.get("extra", {})),
        )
