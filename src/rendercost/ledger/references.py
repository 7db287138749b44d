"""The measured references savings are priced against, learned from the ledger's own lines.

- ``solo_references``: the device time of images rendered alone, per spec (``SpecKey``) and stage;
  batching and routing savings are measured against its means.
- ``stored_sizes``: the size of the stored files, per model, image size and format (``SizeKey``); a
  format saving is measured against the standard format's mean.

``Learning`` gathers what one batch of jobs teaches and adds it in one upsert per table, always in the
caller's transaction (``savings.SavingsBook``): each row keeps a count and a sum, so a mean is exact and
adding is commutative.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Table, select

from rendercost.db.upsert import dialect_insert
from rendercost.domain.costs import DEVICE_STAGES, CostLine, Stage
from rendercost.ledger.tables import solo_references, stored_sizes


@dataclass(frozen=True)
class SpecKey:
    """What a solo reference is kept per: one model, preset and size on one device."""

    model: str
    preset: str
    width: int
    height: int
    device_type: str


@dataclass(frozen=True)
class SoloStage:
    """The measured solo device time of one stage of one spec: the mean and how many images it is of."""

    seconds: float
    samples: int


SoloFigures = Mapping[Stage, SoloStage]


@dataclass(frozen=True)
class SizeKey:
    """What a stored file size is kept per: one model, image size and output format."""

    model: str
    width: int
    height: int
    output_format: str


def solo_samples(lines: Sequence[CostLine]) -> dict[int, dict[Stage, float]]:
    """Per image rendered alone (every device line in a batch of 1, no cache answer), the device-seconds
    of each stage it really ran (a skipped stage teaches nothing)."""
    by_image: dict[int, list[CostLine]] = defaultdict(list)
    for line in lines:
        if line.stage in DEVICE_STAGES:
            by_image[line.image_index].append(line)
    found: dict[int, dict[Stage, float]] = {}
    for index, device in by_image.items():
        if all(line.batch_size == 1 and line.details.get("cache") is None for line in device):
            found[index] = {
                line.stage: line.device_seconds for line in device if "skipped" not in line.details
            }
    return found


def solo_by_preset(
    conn: Connection, key: SpecKey, presets: Sequence[str]
) -> dict[str, dict[Stage, SoloStage]]:
    """The solo figures of ``key``'s spec at each of ``presets``: preset -> stage -> figures."""
    c = solo_references.c
    query = select(c.preset, c.stage, c.samples, c.seconds).where(
        c.model == key.model,
        c.preset.in_(presets),
        c.width == key.width,
        c.height == key.height,
        c.device_type == key.device_type,
    )
    found: dict[str, dict[Stage, SoloStage]] = {}
    for preset, stage, samples, seconds in conn.execute(query):
        if samples > 0:
            found.setdefault(preset, {})[Stage(stage)] = SoloStage(seconds / samples, samples)
    return found


def stored_size(conn: Connection, key: SizeKey) -> Decimal | None:
    """The mean size in bytes of the stored files of ``key``; None before the first."""
    c = stored_sizes.c
    query = select(c.samples, c.bytes).where(
        c.model == key.model,
        c.width == key.width,
        c.height == key.height,
        c.output_format == key.output_format,
    )
    row = conn.execute(query).first()
    return None if row is None or row.samples < 1 else Decimal(row.bytes) / Decimal(row.samples)


@dataclass
class Learning:
    """What a batch of jobs teaches: (spec, stage) -> (solo images, summed seconds) and (model, size,
    format) -> (stored files, summed bytes)."""

    solo: dict[tuple[SpecKey, Stage], tuple[int, float]] = field(default_factory=dict)
    sizes: dict[SizeKey, tuple[int, int]] = field(default_factory=dict)

    def add(self, key: SpecKey, lines: Sequence[CostLine]) -> None:
        """Add the solo images of ``lines`` (one job's, rendered as ``key``) and the files its storage
        lines name (a cache answer stored none)."""
        for stages in solo_samples(lines).values():
            for stage, seconds in stages.items():
                samples, summed = self.solo.get((key, stage), (0, 0.0))
                self.solo[(key, stage)] = (samples + 1, summed + seconds)
        for line in lines:
            written, size = line.details.get("format"), line.details.get("bytes")
            if line.stage != Stage.STORAGE or written is None or size is None or "cache" in line.details:
                continue
            size_key = SizeKey(key.model, key.width, key.height, str(written))
            files, summed_bytes = self.sizes.get(size_key, (0, 0))
            self.sizes[size_key] = (files + 1, summed_bytes + int(size))

    def write(self, conn: Connection, now: datetime) -> None:
        """Add what was learned to both tables, one executemany each (one row per key, so none meets
        itself)."""
        solo = [
            {**asdict(key), "stage": str(stage), "samples": samples, "seconds": seconds}
            for (key, stage), (samples, seconds) in self.solo.items()
        ]
        sizes = [
            {**asdict(key), "samples": files, "bytes": summed} for key, (files, summed) in self.sizes.items()
        ]
        _add_up(conn, solo_references, solo, ("samples", "seconds"), now)
        _add_up(conn, stored_sizes, sizes, ("samples", "bytes"), now)


def _add_up(
    conn: Connection, table: Table, rows: list[dict[str, Any]], summed: Sequence[str], now: datetime
) -> None:
    """Upsert ``rows`` into ``table``, adding the ``summed`` columns to a row of the same key."""
    if not rows:
        return
    stmt = dialect_insert(conn, table)
    upsert = stmt.on_conflict_do_update(
        index_elements=[column.name for column in table.primary_key.columns],
        set_={
            **{name: table.c[name] + stmt.excluded[name] for name in summed},
            "updated_at": stmt.excluded.updated_at,
        },
    )
    conn.execute(upsert, [{**row, "updated_at": now} for row in rows])
