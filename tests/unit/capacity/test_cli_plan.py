"""`rendercost plan` over a history rendered through the jobs API into a real SQLite file."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rendercost.cli import app
from tests.unit.api.conftest import ApiFactory
from tests.unit.capacity.workloads import MIXED, render


@pytest.fixture
def history(make_api: ApiFactory, tmp_path: Path) -> tuple[Path, str, str]:
    """A data dir with MIXED rendered in it, and a window around it (ISO strings)."""
    api = make_api(max_batch_size=1)
    admin = {"Authorization": f"Bearer {api.server.admin_key.secret}"}  # type: ignore[union-attr]
    since = datetime.now(UTC) - timedelta(seconds=1)
    render(api.client, admin, MIXED, pace_s=0.0)
    until = datetime.now(UTC) + timedelta(seconds=1)
    return tmp_path, since.isoformat(), until.isoformat()


def run(data_dir: Path, *args: str) -> tuple[int, str, str]:
    """``rendercost plan`` with the server's batching settings (the as-is fleet batches as it did)."""
    config = data_dir / "server.toml"
    config.write_text("max_batch_size = 1\nmax_wait_ms = 0\n", "utf-8")
    result = CliRunner().invoke(app, ["--config", str(config), "--data-dir", str(data_dir), "plan", *args])
    return result.exit_code, result.stdout, result.stderr


def test_plan_json_has_the_baseline_the_flag_scenario_and_its_change(history: tuple[Path, str, str]) -> None:
    data_dir, since, until = history
    code, out, err = run(
        data_dir, "--since", since, "--until", until, "--device", "l4", "--pricing", "spot",
        "--route", "draft=lightning", "--caches", "--latency-goal", "5", "--json",
    )  # fmt: skip
    assert code == 0, err
    plan = json.loads(out)
    assert plan["baseline"]["name"] == "as-is" and plan["baseline"]["evidence"] == "measured"
    assert abs(plan["backtest"]["error"]) < 0.001
    (what_if,) = plan["scenarios"]
    assert (what_if["device"], what_if["pricing"], what_if["evidence"]) == ("l4", "spot", "inferred")
    assert set(what_if["by_preset_usd"]) == {"speed", "lightning"}
    change = what_if["vs_baseline"]["cost_usd"]
    assert Decimal(change["after"]) - Decimal(change["before"]) == Decimal(change["change"])
    assert what_if["workers_needed"]["confirmed"] >= 1 and what_if["workers_needed"]["met"]
    assert int(what_if["workers_needed"]["keda"]["targetQueryValue"]) >= 1
    keda = what_if["keda"]
    assert (
        keda["trigger"] == "postgresql"
        and keda["targetQueryValue"] == what_if["workers_needed"]["keda"]["targetQueryValue"]
    )
    assert keda["minReplicaCount"] == keda["maxReplicaCount"] == what_if["workers_needed"]["confirmed"]
    assert "spot_stops_paying_above_interruptions_per_hour" in what_if["breakevens"]
    assert plan["evidence"]["price_table"]["as_of"] == "2025-11-15"
    provenance = what_if["provenance"]
    assert provenance["evidence"] == "inferred" and provenance["price_as_of"] == "2025-11-15"
    assert provenance["calibration_samples"] > 0 and provenance["window"].startswith("ledger ")
    assert provenance["device_speed"]["relative"] == 1.0 and "L4" in provenance["device_speed"]["source"]
    assert plan["baseline"]["provenance"]["device_speed"] is None  # measured: no speed ratio used


def test_plan_csv_and_table(history: tuple[Path, str, str], tmp_path: Path) -> None:
    data_dir, since, until = history
    scenarios = tmp_path / "s.toml"
    scenarios.write_text(
        '[[scenario]]\nname = "runpod"\npricing = "serverless"\nserverless = "runpod-flex-24gb"\n'
        '[[scenario]]\nname = "reserved"\ndevice = "l4"\npricing = "reserved"\ncommit_upfront = 100\n',
        "utf-8",
    )
    code, out, err = run(data_dir, "--since", since, "--until", until, "--scenarios", str(scenarios), "--csv")
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["name"] for r in rows] == ["as-is", "runpod", "reserved"]
    assert rows[1]["pricing"] == "serverless" and Decimal(rows[1]["cost_usd"]) > 0
    code, out, err = run(data_dir, "--since", since, "--until", until, "--scenarios", str(scenarios))
    assert code == 0, err
    assert "as-is" in out and "runpod" in out and "backtest" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--pricing", "free"], "pricing must be one of"),
        (["--autoscale", "4"], "--autoscale: '4' is not MIN:MAX"),
        (["--route", "draft"], "is not CLASS=PRESET"),
        (["--since", "yesterday"], "--since: 'yesterday' is not an ISO 8601 time"),
        (["--serverless", "nowhere", "--pricing", "serverless"], "no serverless offer 'nowhere'"),
        (["--json", "--csv"], "exclude each other"),
    ],
)
def test_bad_input_exits_2_with_one_line(
    history: tuple[Path, str, str], args: list[str], message: str
) -> None:
    data_dir, since, until = history
    code, _, err = run(data_dir, "--since", since, "--until", until, *args)
    assert code == 2
    assert message in err and err.count("\n") == 1


def test_an_empty_window_says_so(tmp_path: Path) -> None:
    code, _, err = run(tmp_path, "--since", "2020-01-01", "--until", "2020-01-02")
    assert code == 2 and "no succeeded jobs" in err
