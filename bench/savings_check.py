"""The savings check split in two: the machine and the accounting.

``optimized + savings = naive`` holds only if the optimized server's solo renders (the references its
batching and routing savings are measured against) take as long as the naive server's renders of the
same spec. On a shared CPU they do not quite: each solo mean rests on tens of renders whose times
scatter by 12-16%, and the two servers' processes do different work beside their renders. So the
measured gap mixes two things, and this module tells them apart from the two servers' own ledgers:

- **speed**: per size, the naive server's mean speed-preset render against the optimized server's solo
  mean of the same spec (every naive render is a solo render, so both come from ``solo_references``);
- **accounting**: the naive cost with its device time re-timed at the optimized server's solo means,
  against optimized + savings. Machine drift between the servers drops out; what is left is what the
  ledger counted twice or not at all (the running means the savings were priced at as each job settled
  against the final means here, and the night's own solo renders, leave it within a percent or two).

Read after both servers stopped, from their databases.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from sqlalchemy import select

from rendercost.db.engine import create_db_engine
from rendercost.domain.costs import DEVICE_STAGES
from rendercost.domain.money import cost_of_seconds
from rendercost.ledger.tables import cost_lines, solo_references
from rendercost.settings import Settings

ASKED_PRESET = "speed"  # what every request of the night asks for
SoloKey = tuple[int, int, str]  # width, height, stage
DEVICE_STAGE_NAMES = tuple(str(stage) for stage in DEVICE_STAGES)


@dataclass(frozen=True)
class SoloTable:
    """One server's solo figures of the asked-for preset: (width, height, stage) -> (images, seconds)."""

    figures: dict[SoloKey, tuple[int, float]]
    usd_per_hour: Decimal

    def mean(self, key: SoloKey) -> float | None:
        samples, seconds = self.figures.get(key, (0, 0.0))
        return seconds / samples if samples else None

    def sizes(self) -> list[tuple[int, int]]:
        return sorted({(w, h) for w, h, _ in self.figures})

    def size_mean(self, width: int, height: int) -> float:
        """Mean solo seconds of one image of this size, every device stage summed."""
        return sum(self.mean(key) or 0.0 for key in self.figures if key[:2] == (width, height))


def read_solo_table(config: Path) -> SoloTable:
    """The solo table of the server that ``config`` configures (its database, as the server finds it)."""
    url = Settings(config=config, env_file=None, secrets_dir=None).resolved_database_url
    engine = create_db_engine(url)
    try:
        with engine.connect() as conn:
            c = solo_references.c
            query = select(c.width, c.height, c.stage, c.samples, c.seconds).where(c.preset == ASKED_PRESET)
            figures = {(w, h, s): (n, float(t)) for w, h, s, n, t in conn.execute(query)}
            price = conn.execute(
                select(cost_lines.c.unit_price).where(cost_lines.c.stage.in_(DEVICE_STAGE_NAMES)).limit(1)
            ).scalar()
    finally:
        engine.dispose()
    return SoloTable(figures, Decimal(price) if price is not None else Decimal(0))


@dataclass(frozen=True)
class SplitCheck:
    """The naive device cost as measured and as re-timed at the optimized server's solo means."""

    naive_device: Decimal
    naive_retimed: Decimal
    speed_by_size: dict[tuple[int, int], float]  # naive mean / optimized solo mean, per size

    def retimed_naive_cost(self, naive_cost: Decimal) -> Decimal:
        return naive_cost - self.naive_device + self.naive_retimed


def split_check(naive: SoloTable, optimized: SoloTable) -> SplitCheck:
    """Re-time every naive solo render at the optimized server's mean for its (size, stage); a stage
    the optimized server never rendered alone keeps the naive time."""
    measured = retimed = Decimal(0)
    for key, (samples, seconds) in naive.figures.items():
        measured += cost_of_seconds(seconds, naive.usd_per_hour)
        mean = optimized.mean(key)
        retimed += cost_of_seconds(seconds if mean is None else mean * samples, naive.usd_per_hour)
    speed = {
        (w, h): naive.size_mean(w, h) / optimized.size_mean(w, h)
        for w, h in naive.sizes()
        if optimized.size_mean(w, h) > 0
    }
    return SplitCheck(measured, retimed, speed)
