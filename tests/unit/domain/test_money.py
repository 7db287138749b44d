import random
from decimal import Decimal

import pytest

from rendercost.domain.money import COST_QUANTUM, cost_of_seconds, quantize, split_exact, usd, usd_text


def test_usd_refuses_floats() -> None:
    with pytest.raises(TypeError):
        usd(0.1)  # type: ignore[arg-type]
    assert usd("0.10") == Decimal("0.10")


def test_cost_of_seconds_uses_decimal_price_per_hour() -> None:
    # 1.5 s of a 3.6 USD/h device is 0.0015 USD exactly
    assert cost_of_seconds(1.5, Decimal("3.6")) == Decimal("0.0015000000")


def test_cost_is_quantized_to_the_cost_quantum() -> None:
    cost = cost_of_seconds(0.123456789, Decimal("2.49"))
    assert cost == quantize(cost)
    assert cost.as_tuple().exponent == COST_QUANTUM.as_tuple().exponent


@pytest.mark.parametrize("seed", range(25))
def test_split_sums_exactly_for_random_weights(seed: int) -> None:
    rng = random.Random(seed)
    total = quantize(Decimal(rng.randint(0, 10**9)) * COST_QUANTUM * rng.randint(1, 999))
    choices = [0, 1, 64 * 64 * 4, 1024 * 1024 * 30, rng.randint(1, 10**7)]
    weights = [rng.choice(choices) for _ in range(rng.randint(1, 9))]
    parts = split_exact(total, weights)
    assert sum(parts) == total
    assert len(parts) == len(weights)
    assert all(part == quantize(part) for part in parts)


def test_split_is_proportional_within_one_quantum() -> None:
    total = Decimal("0.0000001000")  # 1000 quanta
    parts = split_exact(total, [1, 3])
    assert parts == [Decimal("0.0000000250"), Decimal("0.0000000750")]


def test_split_hands_leftover_quanta_to_largest_remainders() -> None:
    parts = split_exact(Decimal("0.0000000010"), [1, 1, 1])  # 10 quanta over 3
    assert parts == [Decimal("4E-10"), Decimal("3E-10"), Decimal("3E-10")]


def test_split_of_all_zero_weights_is_equal() -> None:
    assert split_exact(Decimal("0.0000000004"), [0, 0]) == [Decimal("2E-10"), Decimal("2E-10")]


def test_split_rejects_bad_weights() -> None:
    with pytest.raises(ValueError):
        split_exact(Decimal(1), [])
    with pytest.raises(ValueError):
        split_exact(Decimal(1), [1, -1])


def test_split_of_negative_total_sums_exactly() -> None:
    parts = split_exact(Decimal("-0.0000000010"), [1, 1, 1])
    assert sum(parts) == Decimal("-0.0000000010")


def test_usd_text_is_never_scientific() -> None:
    assert usd_text(Decimal("3.767E-7")) == "0.0000003767"
    assert usd_text(Decimal("0E-10")) == "0.0000000000"
