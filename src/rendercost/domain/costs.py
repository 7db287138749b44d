"""Cost lines and receipts: what one image cost, stage by stage."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Any

from rendercost.domain.money import ZERO


class Stage(StrEnum):
    """Billable stages, in pipeline order."""

    PROMPT_REWRITE = "prompt_rewrite"  # LLM tokens (priced per token, not per second)
    TEXT_ENCODE = "text_encode"  # both CLIP text encoders
    PREPARE_LATENTS = "prepare_latents"  # initial noise
    DENOISE = "denoise"  # the UNet loop: the big one
    DECODE = "decode"  # VAE decode
    POSTPROCESS = "postprocess"  # tensor to PNG/WebP/JPEG bytes
    STORAGE = "storage"  # bytes stored (priced per GB-month and per PUT)
    IDLE = "idle"  # a worker's device time with nothing to do (not part of any render)
    INTERRUPTED = "interrupted"  # device time of an attempt cut short (SIGTERM, spot reclaim): redone


DEVICE_STAGES: tuple[Stage, ...] = (
    Stage.TEXT_ENCODE,
    Stage.PREPARE_LATENTS,
    Stage.DENOISE,
    Stage.DECODE,
    Stage.POSTPROCESS,
)  # stages measured in device-seconds by the runner


class PricingModel(StrEnum):
    ON_DEMAND = "on_demand"
    SPOT = "spot"
    RESERVED = "reserved"


@dataclass(frozen=True)
class CostLine:
    """One ledger line: one stage of one image of one job."""

    job_id: str  # job the image belongs to ("" for a render outside the queue, e.g. the CLI)
    image_index: int  # 0..n-1 within the job; -1 for lines that are not an image's (idle)
    stage: Stage  # what was paid for
    device_seconds: float  # this image's share of the stage's device time (0 for non-device stages)
    unit_price: Decimal  # USD per unit_label
    unit: str  # "device-hour", "GB-month", "1M tokens", ...
    quantity: Decimal  # units consumed (hours, GB-months, millions of tokens)
    cost: Decimal  # USD, quantized; the amount billed
    device_type: str = "cpu"  # catalog device key
    pricing_model: PricingModel = PricingModel.ON_DEMAND  # how the device is bought
    batch_id: str = ""  # pipeline call this image ran in
    batch_size: int = 1  # images in that call
    cost_avoided: Decimal = ZERO  # what a cache hit or a skipped stage saved (cost stays 0 then)
    details: dict[str, Any] = field(default_factory=dict)  # tokens, bytes, cache mechanism, ...

    def to_dict(self) -> dict[str, Any]:
        return {
            "job_id": self.job_id,
            "image_index": self.image_index,
            "stage": str(self.stage),
            "device_seconds": self.device_seconds,
            "unit_price": format(self.unit_price, "f"),
            "unit": self.unit,
            "quantity": format(self.quantity, "f"),
            "cost_usd": format(self.cost, "f"),
            "device_type": self.device_type,
            "pricing_model": str(self.pricing_model),
            "batch_id": self.batch_id,
            "batch_size": self.batch_size,
            "cost_avoided_usd": format(self.cost_avoided, "f"),
            "details": dict(self.details),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CostLine:
        """The line back from ``to_dict``'s form (money and quantities exact)."""
        return cls(
            job_id=str(data.get("job_id", "")),
            image_index=int(data.get("image_index", 0)),
            stage=Stage(data["stage"]),
            device_seconds=float(data.get("device_seconds", 0.0)),
            unit_price=Decimal(str(data["unit_price"])),
            unit=str(data["unit"]),
            quantity=Decimal(str(data.get("quantity", "0"))),
            cost=Decimal(str(data["cost_usd"])),
            device_type=str(data.get("device_type", "cpu")),
            pricing_model=PricingModel(data.get("pricing_model", PricingModel.ON_DEMAND)),
            batch_id=str(data.get("batch_id", "")),
            batch_size=int(data.get("batch_size", 1)),
            cost_avoided=Decimal(str(data.get("cost_avoided_usd", "0"))),
            details=dict(data.get("details") or {}),
        )


@dataclass(frozen=True)
class Receipt:
    """What one image cost: its lines and their exact sum."""

    lines: tuple[CostLine, ...]

    @property
    def total(self) -> Decimal:
        return sum((line.cost for line in self.lines), ZERO)

    @property
    def total_avoided(self) -> Decimal:
        return sum((line.cost_avoided for line in self.lines), ZERO)

    @property
    def device_seconds(self) -> float:
        return sum(line.device_seconds for line in self.lines)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Receipt:
        """The receipt back from ``to_dict``'s form (the totals are derived, not read)."""
        return cls(tuple(CostLine.from_dict(line) for line in data.get("lines", ())))

    def to_dict(self) -> dict[str, Any]:
        return {
            "lines": [line.to_dict() for line in self.lines],
            "total_usd": format(self.total, "f"),
            "cost_avoided_usd": format(self.total_avoided, "f"),
            "device_seconds": self.device_seconds,
        }


@dataclass(frozen=True)
class Attribution:
    """Who and what a set of cost lines is billed to: the columns every ledger write repeats."""

    tenant: str  # owner of the spend
    model: str  # configured image model name ("" for lines that are no model's, e.g. idle time)
    preset: str  # preset name ("" likewise)
    request_class: str | None = None  # planning class (interactive, batch); None for idle time
    tags: Mapping[str, str] = field(default_factory=dict)  # key and job tags (api_key, class, ...)
