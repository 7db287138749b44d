"""What a succeeded job holds: its stored images, each with its receipt, and the job's totals."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from rendercost.domain.costs import Receipt
from rendercost.domain.money import ZERO, usd_text


@dataclass(frozen=True)
class ImageResult:
    """One stored image of a job."""

    index: int  # image index within the job, 0..n-1
    artifact_key: str  # where the file (receipt embedded) is in the ArtifactStore
    media_type: str  # "image/png", ...
    seed: int  # the seed it was rendered with
    size_bytes: int  # the stored file's size
    receipt: Receipt  # this image's lines, as billed for this job
    cache_key: str | None = None  # the exact-result cache entry that answered it (None: rendered)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "index": self.index,
            "artifact_key": self.artifact_key,
            "media_type": self.media_type,
            "seed": self.seed,
            "size_bytes": self.size_bytes,
            "receipt": self.receipt.to_dict(),
        }
        if self.cache_key is not None:
            data["cache_key"] = self.cache_key
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ImageResult:
        cache_key = data.get("cache_key")
        return cls(
            index=int(data["index"]),
            artifact_key=str(data["artifact_key"]),
            media_type=str(data["media_type"]),
            seed=int(data["seed"]),
            size_bytes=int(data["size_bytes"]),
            receipt=Receipt.from_dict(data.get("receipt") or {}),
            cache_key=None if cache_key is None else str(cache_key),
        )


@dataclass(frozen=True)
class JobResult:
    """A succeeded job's images in index order and what they cost together."""

    images: tuple[ImageResult, ...]  # in index order
    device: str = ""  # torch device the images ran on ("" when answered from the cache)
    batch_ids: tuple[str, ...] = ()  # pipeline calls that rendered them (empty: answered from the cache)

    @property
    def cost(self) -> Decimal:
        """USD billed for the job: the exact sum of its images' receipts."""
        return sum((image.receipt.total for image in self.images), ZERO)

    @property
    def cost_avoided(self) -> Decimal:
        """USD the caches saved this job."""
        return sum((image.receipt.total_avoided for image in self.images), ZERO)

    @property
    def answered_from_cache(self) -> bool:
        """True when no pipeline call rendered any of its images."""
        return not self.batch_ids

    def image(self, index: int) -> ImageResult | None:
        return next((image for image in self.images if image.index == index), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "images": [image.to_dict() for image in self.images],
            "cost_usd": usd_text(self.cost),
            "cost_avoided_usd": usd_text(self.cost_avoided),
            "device": self.device,
            "batch_ids": list(self.batch_ids),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JobResult:
        """The result back from ``to_dict``'s form (totals are derived from the receipts)."""
        return cls(
            images=tuple(ImageResult.from_dict(image) for image in data.get("images", ())),
            device=str(data.get("device", "")),
            batch_ids=tuple(str(batch_id) for batch_id in data.get("batch_ids", ())),
        )
