"""What crosses between the planner, the runner and the ledger."""

from __future__ import annotations

from dataclasses import dataclass, field

from rendercost.domain.costs import Stage
from rendercost.domain.specs import RenderSpec


@dataclass(frozen=True)
class BatchItem:
    """One image of a batch, and where it came from."""

    job_id: str  # "" when rendered outside the queue
    image_index: int  # index within its job
    spec: RenderSpec  # what to render


@dataclass(frozen=True)
class BatchPlan:
    """Images that run as ONE pipeline call: all share ``spec.batch_key``."""

    batch_id: str  # unique per call; recorded on every cost line
    items: tuple[BatchItem, ...]  # in queue order

    @property
    def specs(self) -> list[RenderSpec]:
        return [item.spec for item in self.items]

    @property
    def size(self) -> int:
        return len(self.items)


@dataclass(frozen=True)
class RenderedImage:
    """One encoded image the runner produced."""

    item: BatchItem  # which plan item it answers
    data: bytes  # encoded file (PNG/WebP/JPEG) without the receipt
    media_type: str  # e.g. "image/png"
    seed: int  # the seed actually used


@dataclass(frozen=True)
class RenderResult:
    """The runner's answer to one plan: images in plan order, and device-seconds per stage."""

    batch_id: str  # the plan's id
    images: tuple[RenderedImage, ...]  # same order as plan.items
    stage_seconds: dict[Stage, float]  # whole-batch device-seconds per stage
    device: str  # torch device it ran on, e.g. "cpu", "cuda:0"
    skipped_stages: dict[Stage, str] = field(default_factory=dict)  # stage -> reason (e.g. "cache_hit")
    avoided_seconds: dict[Stage, float] = field(default_factory=dict)  # skipped stage -> est. whole-batch s
    weights_sha256: str = ""  # the model's weights fingerprint (a single file's SHA-256); "" if unknown
