"""Workload files, scenario files and flags, and cache modelling: good input parsed, bad input refused
with a message that names the problem."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from rendercost.capacity.caching import cache_view
from rendercost.capacity.scenario import load_scenarios, parse_routes, scenario_from_mapping
from rendercost.capacity.workload import load_jsonl
from rendercost.errors import InvalidRequest


def write(path: Path, text: str) -> Path:
    path.write_text(text, "utf-8")
    return path


def test_a_workload_file_reads_arrivals_in_time_order(tmp_path: Path) -> None:
    path = write(
        tmp_path / "w.jsonl",
        '{"at": 5, "preset": "speed", "size": "1024x1024", "n": 2, "class": "draft", "prompt": "a",'
        ' "seed": 1}\n'
        '\n{"at": 1.5, "preset": "lightning", "size": "832x1216", "priority": "batch"}\n',
    )
    workload = load_jsonl(path)
    assert [a.at_s for a in workload.arrivals] == [1.5, 5.0]
    assert workload.arrivals[0].width == 832 and workload.arrivals[0].seed is None
    assert workload.arrivals[1].render_class == "draft" and workload.images == 3
    assert workload.span_s == 5.0


def test_iso_times_start_the_window_at_the_first_arrival(tmp_path: Path) -> None:
    path = write(
        tmp_path / "w.jsonl",
        '{"at": "2025-11-01T10:00:10+00:00", "preset": "speed", "size": "64x64"}\n'
        '{"at": "2025-11-01T10:00:00+00:00", "preset": "speed", "size": "64x64"}\n',
    )
    assert [a.at_s for a in load_jsonl(path).arrivals] == [0.0, 10.0]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("not json", "line 1: not JSON"),
        ('{"at": 1, "size": "64x64"}', "missing field 'preset'"),
        ('{"at": 1, "preset": "fastest", "size": "64x64"}', "unknown preset 'fastest'"),
        ('{"at": -1, "preset": "speed", "size": "64x64"}', "'at' must be"),
        ('{"at": 1, "preset": "speed", "size": "big"}', "is not of the form"),
    ],
)
def test_a_bad_workload_line_is_refused_with_its_line_number(tmp_path: Path, line: str, message: str) -> None:
    with pytest.raises(InvalidRequest, match=message):
        load_jsonl(write(tmp_path / "w.jsonl", line + "\n"))


def test_scenarios_from_a_toml_file(tmp_path: Path) -> None:
    path = write(
        tmp_path / "s.toml",
        '[[scenario]]\nname = "spot"\ndevice = "l4"\npricing = "spot"\nworkers = 2\n'
        'routes = { draft = "lightning" }\ncaches = true\n'
        '[[scenario]]\npricing = "commitment"\ncommit_usd_per_hour = 0.5\n',
    )
    spot, commit = load_scenarios(path)
    assert (spot.name, spot.device, spot.workers, dict(spot.routes), spot.caches) == (
        "spot", "l4", 2, {"draft": "lightning"}, True,
    )  # fmt: skip
    assert commit.name == "scenario-2" and commit.commit_usd_per_hour == Decimal("0.5")


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"gpu": "l4"}, "unknown scenario keys: gpu"),
        ({"pricing": "free"}, "pricing must be one of"),
        ({"pricing": "serverless"}, "needs an offer"),
        ({"workers": 0}, "workers must be between 1 and 1024"),
        ({"routes": {"draft": "fastest"}}, "unknown preset"),
    ],
)
def test_a_bad_scenario_is_refused(values: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidRequest, match=message):
        scenario_from_mapping(values, default_name="x")


def test_routes_parse_and_refuse_garbage() -> None:
    assert parse_routes("draft=lightning, review=speed") == {"draft": "lightning", "review": "speed"}
    with pytest.raises(InvalidRequest, match="CLASS=PRESET"):
        parse_routes("draft")


def test_caches_on_model_hits_from_repeats_after_routing(tmp_path: Path) -> None:
    rows = [
        '{"at": 0, "preset": "speed", "size": "64x64", "prompt": "a", "seed": 1, "class": "draft"}',
        '{"at": 1, "preset": "quality", "size": "64x64", "prompt": "a", "seed": 1, "class": "draft"}',
        '{"at": 2, "preset": "speed", "size": "64x64", "prompt": "a", "seed": 2}',
        '{"at": 3, "preset": "speed", "size": "64x64", "prompt": "b"}',
        '{"at": 4, "preset": "speed", "size": "64x64", "prompt": "b"}',
    ]
    workload = load_jsonl(write(tmp_path / "w.jsonl", "\n".join(rows)))
    routed = cache_view(workload, {"draft": "lightning"}, caches=True)
    assert routed.presets[:2] == ("lightning", "lightning")
    assert routed.hits == (False, True, False, False, False)  # no seed: never an exact repeat
    assert routed.embedding_hits == (False, True, False, False, True)  # "a" on speed is a new encode
    assert cache_view(workload, {}, caches=True).hits == (False, False, False, False, False)
    assert cache_view(workload, {}, caches=None) == cache_view(workload, {}, caches=True)  # a file: modelled
    assert cache_view(workload, {}, caches=False).embedding_hits == (False,) * 5
