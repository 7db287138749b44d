"""A job's rendered images, gathered across the batches they ran in, until the job can be settled.

The worker stores each image (with its receipt embedded) as soon as its batch returns; a job is settled
only when every one of its images is in. ``JobAssembly`` holds them meanwhile and builds the job's
``JobResult`` (whose receipts are the job's cost lines) for ``Biller.complete``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from rendercost.artifacts.protocol import ArtifactRef
from rendercost.domain.costs import CostLine, Receipt
from rendercost.domain.money import ZERO
from rendercost.domain.results import ImageResult, JobResult


@dataclass(frozen=True)
class StoredImage:
    """One image of a job, stored and priced."""

    index: int  # image index within the job
    ref: ArtifactRef  # where the file (receipt embedded) is stored
    seed: int  # seed actually used
    receipt: Receipt  # device lines of its batch share, plus its storage line
    batch_id: str  # the pipeline call it ran in
    device: str  # torch device it ran on


@dataclass
class JobAssembly:
    """The images of one job gathered so far."""

    job_id: str
    images: dict[int, StoredImage] = field(default_factory=dict)  # by image index
    charged_before: dict[int, CostLine] = field(default_factory=dict)  # by image index: prompt-rewrite shares

    def add(self, image: StoredImage) -> None:
        self.images[image.index] = image

    @property
    def count(self) -> int:
        return len(self.images)

    @property
    def ordered(self) -> list[StoredImage]:
        return [self.images[index] for index in sorted(self.images)]

    @property
    def cost(self) -> Decimal:
        return sum((image.receipt.total for image in self.images.values()), ZERO)

    @property
    def artifacts(self) -> list[tuple[ArtifactRef, int]]:
        """(stored file, image index) pairs in index order, as ``Biller.complete`` takes them."""
        return [(image.ref, image.index) for image in self.ordered]

    def result(self) -> JobResult:
        """The job's result: images with their keys and receipts (the totals follow), device, batch ids."""
        ordered = self.ordered
        return JobResult(
            images=tuple(
                ImageResult(
                    index=image.index,
                    artifact_key=image.ref.key,
                    media_type=image.ref.media_type,
                    seed=image.seed,
                    size_bytes=image.ref.size_bytes,
                    receipt=image.receipt,
                )
                for image in ordered
            ),
            device=ordered[0].device if ordered else "",
            batch_ids=tuple(dict.fromkeys(image.batch_id for image in ordered)),
        )
