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

from rendercost.db.upsert import dialect_insert
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


@dataclass(frozen=True)
class Measured:
    """One job's (or cache answer's) lines to measure savings on, and what they are billed to."""

    lines: Sequence[CostLine]
    request: RenderRequest
    attribution: Attribution
    now: datetime


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
        return self.record_many(conn, [Measured(lines, request, attribution, now)], learn=learn)

    def record_many(self, conn: Connection, measured: Sequence[Measured], *, learn: bool = False) -> int:
        """``record`` for several jobs (one batch's) in one statement per table: every job is measured
        against the references as they were before any of them is learned."""
        refs_of: dict[tuple[SpecKey, str], References] = {}
        rows: list[dict[str, Any]] = []
        learned: dict[tuple[SpecKey, Stage], tuple[int, float]] = {}
        for item in measured:
            device = next((line.device_type for line in item.lines if line.stage in DEVICE_STAGES), None)
            refs = References({})
            if device is not None:
                spec = item.request.spec
                key = SpecKey(spec.model, spec.preset, spec.width, spec.height, device)
                asked = item.attribution.tags.get(ROUTED_FROM_TAG, "")
                if (key, asked) not in refs_of:
                    refs_of[(key, asked)] = self._references(conn, key, asked)
                refs = refs_of[(key, asked)]
                if learn:
                    _add_solo_samples(learned, key, item.lines)
            found = saving_lines_for(item.lines, refs, standard_retention_days=self.standard_retention_days)
            rows += [_saving_row(line, item.attribution, item.now) for line in found]
        written = self._insert(conn, rows) if rows else 0
        if learned:
            self._learn(conn, learned, max(item.now for item in measured))
        return written

    def solo(self, conn: Connection, key: SpecKey) -> dict[Stage, SoloStage]:
        """The solo figures of ``key``, per stage measured."""
        return _solo_by_preset(conn, key, (key.preset,)).get(key.preset, {})

    def _references(self, conn: Connection, key: SpecKey, asked_preset: str) -> References:
        """The figures of what ran (``key``) and, for a routed request, of the preset it asked for."""
        if not asked_preset or asked_preset == key.preset:
            return References(_solo_by_preset(conn, key, (key.preset,)).get(key.preset, {}))
        found = _solo_by_preset(conn, key, (key.preset, asked_preset))  # one query for both
        return References(found.get(key.preset, {}), found.get(asked_preset, {}), asked_preset)

    def _insert(self, conn: Connection, rows: list[dict[str, Any]]) -> int:
        keys = ("job_id", "image_index", "stage", "mechanism")
        stmt = dialect_insert(conn, saving_lines).on_conflict_do_nothing(index_elements=list(keys))
        return len(conn.execute(stmt.returning(saving_lines.c.id), rows).all())

    def _learn(
        self, conn: Connection, learned: dict[tuple[SpecKey, Stage], tuple[int, float]], now: datetime
    ) -> None:
        rows = [
            {
                "model": key.model,
                "preset": key.preset,
                "width": key.width,
                "height": key.height,
                "device_type": key.device_type,
                "stage": str(stage),
                "samples": samples,
                "seconds": seconds,
                "updated_at": now,
            }
            for (key, stage), (samples, seconds) in learned.items()
        ]
        stmt = dialect_insert(conn, solo_references)
        upsert = stmt.on_conflict_do_update(
            index_elements=["model", "preset", "width", "height", "device_type", "stage"],
            set_={
                "samples": solo_references.c.samples + stmt.excluded.samples,
                "seconds": solo_references.c.seconds + stmt.excluded.seconds,
                "updated_at": stmt.excluded.updated_at,
            },
        )
        conn.execute(upsert, rows)  # one executemany; one row per (spec, stage), so none meets itself


def _saving_row(line: SavingLine, attribution: Attribution, now: datetime) -> dict[str, Any]:
    return {
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


def _add_solo_samples(
    learned: dict[tuple[SpecKey, Stage], tuple[int, float]], key: SpecKey, lines: Sequence[CostLine]
) -> None:
    """Add the solo images of ``lines`` (rendered as ``key``) to ``learned``: (spec, stage) ->
    (samples, summed seconds)."""
    for stages in solo_samples(lines).values():
        for stage, seconds in stages.items():
            samples, summed = learned.get((key, stage), (0, 0.0))
            learned[(key, stage)] = (samples + 1, summed + seconds)


def _solo_by_preset(
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
