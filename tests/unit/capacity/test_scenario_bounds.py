"""Scenario sizes are bounded: a replay of a typo's 10^18 workers is refused, not attempted."""

from __future__ import annotations

import pytest

from rendercost.capacity.scenario import MAX_WORKERS, scenario_from_mapping
from rendercost.errors import InvalidRequest


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("workers", MAX_WORKERS + 1),
        ("workers", 0),
        ("max_workers", 10**18),
        ("max_batch", 100_000),
        ("max_wait_ms", -1),
        ("cold_start_s", 10**9),
        ("interruptions_per_hour", -0.5),
    ],
)
def test_out_of_bounds_sizes_are_refused_naming_the_key(key: str, value: float) -> None:
    with pytest.raises(InvalidRequest) as refused:
        scenario_from_mapping({key: value}, default_name="s")
    assert refused.value.param == key


def test_sizes_within_bounds_are_accepted() -> None:
    scenario = scenario_from_mapping({"workers": MAX_WORKERS, "max_batch": 8}, default_name="s")
    assert scenario.workers == MAX_WORKERS
