"""What each mechanism saved on each cost line, measured against a stated reference.

The caches record what they saved on the cost line itself (``cost_avoided``). The other mechanisms get
saving lines (``saving_lines``), one per (cost line, mechanism), each with the reference it is measured
against, so that for every device stage of every image::

    cost + cost_avoided + batching + routing  ==  the solo cost of the preset the request asked for

and for every storage line::

    cost + cost_avoided + lifecycle + format  ==  a standard file kept the standard retention

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
- **format**: for a storage line written in another format than the standard one (PNG: what an image
  is written as when neither its request nor its class names a format), the mean size of a standard
  file of the same model and image size (``stored_sizes``, learned from the ledger's own stored files
  as they complete) minus the line's bytes, x the standard retention, at the line's GB-month price.
  Signed; None without a standard file of that size yet. Measured over the standard retention, not the
  days granted, so that lifecycle and format together are the whole difference from a standard file.

A result-cache answer's storage line stored nothing: its ``cost_avoided`` is the paid file's storage
line, and its lifecycle and format savings are the paid file's (its details carry the paid file's
bytes, days and format), as its device lines carry the paid render's routing saving.

Pure functions over domain lines (``saving_lines_for``) plus ``SavingsBook``, which reads the references
(``ledger.references``), writes the saving lines and learns from the lines it measured, always in the
caller's transaction: only ``billing.Biller`` calls it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection

from rendercost.db.upsert import dialect_insert
from rendercost.domain.controls import DEFAULT_RETENTION_DAYS
from rendercost.domain.costs import DEVICE_STAGES, Attribution, CostLine, Stage
from rendercost.domain.money import cost_of_seconds, quantize
from rendercost.domain.specs import OutputFormat, RenderRequest
from rendercost.ledger.pricing import BYTES_PER_GB, DAYS_PER_MONTH
from rendercost.ledger.references import (
    Learning,
    SizeKey,
    SoloFigures,
    SoloStage,
    SpecKey,
    solo_by_preset,
    stored_size,
)
from rendercost.ledger.tables import saving_lines

ROUTED_FROM_TAG = "routed_from"  # job tag: the preset a request asked for before routing changed it
STANDARD_RETENTION_DAYS = DEFAULT_RETENTION_DAYS  # what a lifecycle saving is measured against by default
STANDARD_RETENTION_KEY = "standard_retention_days"  # a storage line's own standard, when it names one
STANDARD_FORMAT = OutputFormat.PNG  # what a format saving is measured against: the door's default
STORED_FILE_KEYS = ("bytes", "retention_days", "format")  # a storage line's details about its file


class Mechanism(StrEnum):
    """Mechanisms recorded as saving lines (the caches' savings are the cost lines' ``cost_avoided``)."""

    ROUTING = "routing"
    BATCHING = "batching"
    LIFECYCLE = "lifecycle"
    FORMAT = "format"


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
    """The figures a job's lines are measured against: the solo figures of what ran and of the
    asked-for preset, and the mean size of a standard-format file of the job's model and size."""

    ran: SoloFigures
    asked: SoloFigures | None = None  # None: the request was not routed
    asked_preset: str = ""
    standard_bytes: Decimal | None = None  # None: no standard file of this size stored yet


def saving_lines_for(
    lines: Sequence[CostLine], refs: References, *, standard_retention_days: int = STANDARD_RETENTION_DAYS
) -> list[SavingLine]:
    """The saving lines of ``lines`` (one job's, or one cache answer's), in line order."""
    found: list[SavingLine] = []
    for line in lines:
        if line.stage in DEVICE_STAGES:
            found.extend(_device_savings(line, refs))
        elif line.stage == Stage.STORAGE:
            found.extend(_storage_savings(line, standard_retention_days, refs.standard_bytes))
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


def _storage_savings(line: CostLine, standard_days: int, standard_bytes: Decimal | None) -> list[SavingLine]:
    """The lifecycle and format savings of one storage line (none for a line that names no file)."""
    size, granted = line.details.get("bytes"), line.details.get("retention_days")
    if size is None or granted is None:
        return []
    own_bytes, granted_days = int(size), int(granted)
    standard = int(line.details.get(STANDARD_RETENTION_KEY, standard_days))
    base = {"bytes": own_bytes, "retention_days": granted_days, STANDARD_RETENTION_KEY: standard}
    reference = line.cost + line.cost_avoided
    found: list[SavingLine] = []
    if standard > granted_days:
        kept_less = quantize(_gb_months(Decimal(own_bytes), standard - granted_days) * line.unit_price)
        reference += kept_less
        found.append(_saving(line, Mechanism.LIFECYCLE, kept_less, reference, base))
    if _written_as_other(line) and standard_bytes is not None:
        written = line.details["format"]
        smaller = quantize(_gb_months(standard_bytes - own_bytes, standard) * line.unit_price)
        details = {**base, "format": written, "standard_format": str(STANDARD_FORMAT)}
        details["standard_bytes"] = str(standard_bytes)
        found.append(_saving(line, Mechanism.FORMAT, smaller, reference + smaller, details))
    return found


def _written_as_other(line: CostLine) -> bool:
    """Whether ``line`` is a storage line naming a file in another format than the standard one."""
    written = line.details.get("format")
    return line.stage == Stage.STORAGE and written is not None and written != str(STANDARD_FORMAT)


def _gb_months(size_bytes: Decimal, days: int) -> Decimal:
    return size_bytes / BYTES_PER_GB * Decimal(days) / DAYS_PER_MONTH


def _saving(
    line: CostLine, mechanism: Mechanism, amount: Decimal, reference: Decimal, details: dict[str, Any]
) -> SavingLine:
    return SavingLine(line.job_id, line.image_index, line.stage, mechanism, amount, reference, details)


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
        refs_of: dict[tuple[SpecKey, str, bool], References] = {}
        rows: list[dict[str, Any]] = []
        learning = Learning()
        for item in measured:
            device = next((line.device_type for line in item.lines if line.stage in DEVICE_STAGES), None)
            refs = References({})
            if device is not None:
                spec = item.request.spec
                key = SpecKey(spec.model, spec.preset, spec.width, spec.height, device)
                asked = item.attribution.tags.get(ROUTED_FROM_TAG, "")
                sized = any(_written_as_other(line) for line in item.lines)
                if (key, asked, sized) not in refs_of:
                    refs_of[(key, asked, sized)] = self._references(conn, key, asked, sized=sized)
                refs = refs_of[(key, asked, sized)]
                if learn:
                    learning.add(key, item.lines)
            found = saving_lines_for(item.lines, refs, standard_retention_days=self.standard_retention_days)
            rows += [_saving_row(line, item.attribution, item.now) for line in found]
        written = self._insert(conn, rows) if rows else 0
        learning.write(conn, max(item.now for item in measured))
        return written

    def solo(self, conn: Connection, key: SpecKey) -> dict[Stage, SoloStage]:
        """The solo figures of ``key``, per stage measured."""
        return solo_by_preset(conn, key, (key.preset,)).get(key.preset, {})

    def stored_size(self, conn: Connection, key: SizeKey) -> Decimal | None:
        """The mean size in bytes of the stored files of ``key``; None before the first."""
        return stored_size(conn, key)

    def _references(self, conn: Connection, key: SpecKey, asked_preset: str, *, sized: bool) -> References:
        """The figures of what ran (``key``), of the preset a routed request asked for, and (``sized``:
        the job wrote a file in another format than the standard one) the mean size of a standard file
        of ``key``'s model and size."""
        standard = SizeKey(key.model, key.width, key.height, str(STANDARD_FORMAT))
        standard_bytes = stored_size(conn, standard) if sized else None
        if not asked_preset or asked_preset == key.preset:
            ran = solo_by_preset(conn, key, (key.preset,)).get(key.preset, {})
            return References(ran, standard_bytes=standard_bytes)
        found = solo_by_preset(conn, key, (key.preset, asked_preset))  # one query for both
        ran, asked = found.get(key.preset, {}), found.get(asked_preset, {})
        return References(ran, asked, asked_preset, standard_bytes)

    def _insert(self, conn: Connection, rows: list[dict[str, Any]]) -> int:
        keys = ("job_id", "image_index", "stage", "mechanism")
        stmt = dialect_insert(conn, saving_lines).on_conflict_do_nothing(index_elements=list(keys))
        return len(conn.execute(stmt.returning(saving_lines.c.id), rows).all())


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
