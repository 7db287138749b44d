"""What each mechanism saved on each cost line, measured against a stated reference.

The caches record what they saved on the cost line itself (``cost_avoided``). The other mechanisms get
saving lines (``saving_lines``), one per (cost line, mechanism), each with the reference it is measured
against, so that for every device stage of every image::

    cost + cost_avoided + batching + routing  ==  the solo cost of the preset the request asked for

- **batching**: the solo cost of the same spec (model, preset, size, device) minus the line's own cost
  (its batch share; for a result-cache answer, the share the paid render had). The solo cost is the
  measured mean of images of that spec rendered alone (``solo_references``, learned from the ledger's
  own solo renders as they complete), priced at the line's device price. Signed: a batch share above the
  solo mean is a negative saving. None without a solo sample of the spec.
- **routing**: for a request the routing policy moved to another preset (the ``routed_from`` tag names
  the preset it asked for), the solo cost of the asked-for preset at the same size minus the solo cost
  of what ran (its own cost when it ran alone). None without a solo sample of the asked-for spec.
- **lifecycle**: for a storage line kept fewer days than the standard retention, the bytes x the days
  not kept, priced at the line's GB-month price.

Pure functions over domain lines (``saving_lines_for``) plus the SQL of the two tables (``SavingsBook``),
always written in the caller's transaction: only ``billing.Biller`` calls it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, select
from sqlalchemy.dialects import postgresql, sqlite

from rendercost.domain.controls import DEFAULT_RETENTION_DAYS
from rendercost.domain.costs import DEVICE_STAGES, Attribution, CostLine, Stage
from rendercost.domain.money import cost_of_seconds, quantize
from rendercost.domain.specs import RenderRequest
from rendercost.ledger.pricing import BYTES_PER_GB, DAYS_PER_MONTH
from rendercost.ledger.tables import saving_lines, solo_references

ROUTED_FROM_TAG = "routed_from"  # job tag: the preset a request asked for before routing changed it
STANDARD_RETENTION_DAYS = DEFAULT_RETENTION_DAYS  # what a lifecycle saving is measured against by default
STANDARD_RETENTION_KEY = "standard_retention_days"  # a storage line's own standard, when it names one


class Mechanism(StrEnum):
    """Mechanisms recorded as saving lines (the caches' savings are the cost lines' ``cost_avoided``)."""

    ROUTING = "routing"
    BATCHING = "batching"
    LIFECYCLE = "lifecycle"


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
class SavingLine:
    """One mechanism's saving on one cost line."""

    job_id: str
    image_index: int
    stage: Stage
    mechanism: Mechanism
    amount: Decimal  # USD saved (signed)
    reference: Decimal  # USD the line is measured against
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class References:
    """The solo figures a job's lines are measured against: of what ran, and of the asked-for preset."""

    ran: SoloFigures
    asked: SoloFigures | None = None  # None: the request was not routed
    asked_preset: str = ""


def saving_lines_for(
    lines: Sequence[CostLine], refs: References, *, standard_retention_days: int = STANDARD_RETENTION_DAYS
) -> list[SavingLine]:
    """The saving lines of ``lines`` (one job's, or one cache answer's), in line order."""
    found: list[SavingLine] = []
    for line in lines:
        if line.stage in DEVICE_STAGES:
            found.extend(_device_savings(line, refs))
        elif line.stage == Stage.STORAGE:
            saved = _lifecycle_saving(line, standard_retention_days)
            if saved is not None:
                found.append(saved)
    return found


def _device_savings(line: CostLine, refs: References) -> list[SavingLine]:
    own = line.cost + line.cost_avoided  # a cache's share is the cache's saving, not batching's
    found: list[SavingLine] = []
    hit = line.details.get("cache") == "result"
    if line.batch_size == 1 and not hit:
        solo: Decimal | None = own
    else:
        solo = _priced(refs.ran.get(line.stage), line)
        if solo is not None and solo != own:
            samples = refs.ran[line.stage].samples
            details = {"reference": "solo mean", "samples": samples, "batch_size": line.batch_size}
            found.append(_saving(line, Mechanism.BATCHING, solo - own, solo, details))
    if refs.asked is not None:
        asked = _priced(refs.asked.get(line.stage), line)
        if asked is not None:
            base = own if solo is None else solo
            details = {
                "from_preset": refs.asked_preset,
                "samples": refs.asked[line.stage].samples,
                "reference": "solo mean",
            }
            found.append(_saving(line, Mechanism.ROUTING, asked - base, asked, details))
    return found


def _priced(figure: SoloStage | None, line: CostLine) -> Decimal | None:
    return None if figure is None else cost_of_seconds(figure.seconds, line.unit_price)


def _lifecycle_saving(line: CostLine, standard_days: int) -> SavingLine | None:
    size, granted = line.details.get("bytes"), line.details.get("retention_days")
    if size is None or granted is None:
        return None  # a cache answer's storage line: nothing stored, nothing kept
    standard = int(line.details.get(STANDARD_RETENTION_KEY, standard_days))
    days_not_kept = standard - int(granted)
    if days_not_kept <= 0:
        return None
    gb_months = Decimal(int(size)) / BYTES_PER_GB * Decimal(days_not_kept) / DAYS_PER_MONTH
    amount = quantize(gb_months * line.unit_price)
    details = {"bytes": int(size), "retention_days": int(granted), STANDARD_RETENTION_KEY: standard}
    return _saving(line, Mechanism.LIFECYCLE, amount, line.cost + amount, details)


def _saving(
    line: CostLine, mechanism: Mechanism, amount: Decimal, reference: Decimal, details: dict[str, Any]
) -> SavingLine:
    return SavingLine(line.job_id, line.image_index, line.stage, mechanism, amount, reference, details)


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


class SavingsBook:
    """Writes saving lines and learns solo references, in the caller's transaction."""

    def __init__(self, *, standard_retention_days: int = STANDARD_RETENTION_DAYS) -> None:
        self.standard_retention_days = standard_retention_days

    def record(
        self,
        conn: Connection,
        lines: Sequence[CostLine],
        request: RenderRequest,
        attribution: Attribution,
        *,
        now: datetime,
        learn: bool = False,
    ) -> int:
        """Write the savings of ``lines`` (idempotent per line and mechanism); with ``learn``, add the
        solo images among them to the references afterwards. Returns how many saving lines were new."""
        device = next((line.device_type for line in lines if line.stage in DEVICE_STAGES), None)
        refs = References({}) if device is None else self._references(conn, request, attribution, device)
        found = saving_lines_for(lines, refs, standard_retention_days=self.standard_retention_days)
        written = self._insert(conn, found, attribution, now) if found else 0
        if learn and device is not None:
            self._learn(conn, request, device, lines, now)
        return written

    def solo(self, conn: Connection, key: SpecKey) -> dict[Stage, SoloStage]:
        """The solo figures of ``key``, per stage measured."""
        c = solo_references.c
        query = select(c.stage, c.samples, c.seconds).where(
            c.model == key.model,
            c.preset == key.preset,
            c.width == key.width,
            c.height == key.height,
            c.device_type == key.device_type,
        )
        return {
            Stage(stage): SoloStage(seconds / samples, samples)
            for stage, samples, seconds in conn.execute(query)
            if samples > 0
        }

    def _references(
        self, conn: Connection, request: RenderRequest, attribution: Attribution, device: str
    ) -> References:
        spec = request.spec
        ran = self.solo(conn, SpecKey(spec.model, spec.preset, spec.width, spec.height, device))
        asked_preset = attribution.tags.get(ROUTED_FROM_TAG, "")
        if not asked_preset or asked_preset == spec.preset:
            return References(ran)
        asked = self.solo(conn, SpecKey(spec.model, asked_preset, spec.width, spec.height, device))
        return References(ran, asked, asked_preset)

    def _insert(
        self, conn: Connection, found: Sequence[SavingLine], attribution: Attribution, now: datetime
    ) -> int:
        rows = [
            {
                "job_id": line.job_id,
                "image_index": line.image_index,
                "stage": str(line.stage),
                "mechanism": str(line.mechanism),
                "amount": line.amount,
                "reference": line.reference,
                "details": line.details,
                "tenant": attribution.tenant,
                "model": attribution.model,
                "preset": attribution.preset,
                "request_class": attribution.request_class,
                "tags": dict(attribution.tags),
                "created_at": now,
            }
            for line in found
        ]
        keys = ("job_id", "image_index", "stage", "mechanism")
        stmt = _dialect_insert(conn, saving_lines).on_conflict_do_nothing(index_elements=list(keys))
        return len(conn.execute(stmt.returning(saving_lines.c.id), rows).all())

    def _learn(
        self, conn: Connection, request: RenderRequest, device: str, lines: Sequence[CostLine], now: datetime
    ) -> None:
        spec = request.spec
        totals: dict[Stage, tuple[int, float]] = {}
        for stages in solo_samples(lines).values():
            for stage, seconds in stages.items():
                samples, summed = totals.get(stage, (0, 0.0))
                totals[stage] = (samples + 1, summed + seconds)
        key = {"model": spec.model, "preset": spec.preset, "width": spec.width, "height": spec.height}
        for stage, (samples, seconds) in totals.items():
            row = {**key, "device_type": device, "stage": str(stage), "samples": samples, "seconds": seconds}
            stmt = _dialect_insert(conn, solo_references).values(**row, updated_at=now)
            conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=[*key, "device_type", "stage"],
                    set_={
                        "samples": solo_references.c.samples + stmt.excluded.samples,
                        "seconds": solo_references.c.seconds + stmt.excluded.seconds,
                        "updated_at": stmt.excluded.updated_at,
                    },
                )
            )


def _dialect_insert(conn: Connection, table: Any) -> Any:
    """The engine's ``INSERT ... ON CONFLICT`` builder (both engines spell it the same way)."""
    name = conn.dialect.name
    if name == "postgresql":
        return postgresql.insert(table)
    if name == "sqlite":
        return sqlite.insert(table)
    raise ValueError(f"no upsert for {name}: create_db_engine refuses such databases")
