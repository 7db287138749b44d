"""Money arithmetic: ``Decimal`` only, a fixed quantum, and splits that sum exactly.

Every cost rendercost writes is quantized to ``COST_QUANTUM`` (1e-10 USD). A total is the sum of its
quantized parts, never re-rounded, so lines always add up to their total.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import ROUND_HALF_EVEN, Decimal

COST_QUANTUM = Decimal("0.0000000001")  # 1e-10 USD: receipts show at least 8 decimal places
SECONDS_PER_HOUR = Decimal(3600)
ZERO = Decimal(0)


def usd(value: str | int | Decimal) -> Decimal:
    """Parse a money amount; floats are refused so binary rounding never enters the books."""
    if isinstance(value, float):
        raise TypeError("money must not be a float; pass a str or Decimal")
    return Decimal(value)


def quantize(amount: Decimal) -> Decimal:
    """Round to ``COST_QUANTUM`` with banker's rounding."""
    return amount.quantize(COST_QUANTUM, rounding=ROUND_HALF_EVEN)


def cost_of_seconds(seconds: float, usd_per_hour: Decimal) -> Decimal:
    """Cost of ``seconds`` of a device priced at ``usd_per_hour``, quantized."""
    exact_seconds = Decimal(repr(seconds))  # the float's shortest repr, not its binary expansion
    return quantize(exact_seconds * usd_per_hour / SECONDS_PER_HOUR)


def split_exact(total: Decimal, weights: Sequence[int | float | Decimal]) -> list[Decimal]:
    """Split ``total`` in proportion to ``weights`` so the parts sum to ``total`` exactly.

    Largest-remainder method over whole quanta: each part gets the floor of its exact share, and the
    leftover quanta go to the parts with the largest remainders (earlier parts win ties). ``total`` must
    already be a multiple of ``COST_QUANTUM``. All-zero weights split equally.
    """
    if not weights:
        raise ValueError("split_exact needs at least one weight")
    exact_weights = [Decimal(repr(w)) if isinstance(w, float) else Decimal(w) for w in weights]
    if any(w < 0 for w in exact_weights):
        raise ValueError("weights must not be negative")
    if sum(exact_weights) == 0:
        exact_weights = [Decimal(1)] * len(exact_weights)
    total_quanta = int((total / COST_QUANTUM).to_integral_exact())
    weight_sum = sum(exact_weights)
    shares = [Decimal(total_quanta) * w / weight_sum for w in exact_weights]
    floors = [int(share.to_integral_value(rounding="ROUND_FLOOR")) for share in shares]
    leftover = total_quanta - sum(floors)
    by_remainder = sorted(range(len(shares)), key=lambda i: (-(shares[i] - floors[i]), i))
    for i in by_remainder[:leftover] if leftover > 0 else []:
        floors[i] += 1
    if leftover < 0:  # negative totals: give back from the smallest remainders
        for i in sorted(range(len(shares)), key=lambda i: (shares[i] - floors[i], i))[:-leftover]:
            floors[i] -= 1
    return [Decimal(q) * COST_QUANTUM for q in floors]


def usd_text(amount: Decimal) -> str:
    """A money amount as a plain decimal string (never scientific notation), for JSON and CSV."""
    return format(amount, "f")
