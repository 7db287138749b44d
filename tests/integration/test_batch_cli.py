"""`rendercost batch`: bad lines are named and skipped; a killed run resumes and renders only what is
missing, billed once."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from rendercost.cli import app
from rendercost.cli.batch_run import TENANT
from rendercost.domain.costs import DEVICE_STAGES
from rendercost.domain.jobs import JobState
from rendercost.ledger.ledger import Ledger
from rendercost.queue.sql_store import SqlJobStore
from rendercost.testing.waiting import wait_until
from tests.integration.worker_helpers import POLL_S, RENDERCOST, child_env, write_config

pytestmark = pytest.mark.slow

LINES_PER_IMAGE = len(DEVICE_STAGES) + 1


def spec_line(i: int, **extra: object) -> str:
    return json.dumps({"prompt": f"line {i}", "preset": "lightning", "size": "64x64", "seed": i, **extra})


def sqlite_config(tmp_path: Path, tiny_model_dir: Path) -> Path:
    """A config file: the tiny model, a SQLite database in ``tmp_path/data``."""
    data = tmp_path / "data"
    return write_config(
        tmp_path / "rendercost.toml",
        data_dir=data,
        model_dir=tiny_model_dir,
        database_url=f"sqlite:///{data / 'rendercost.db'}",
        lease_seconds=30,
    )


def test_bad_line_is_reported_by_number_and_the_rest_runs(tmp_path: Path, tiny_model_dir: Path) -> None:
    config = sqlite_config(tmp_path, tiny_model_dir)
    lines = [spec_line(1), '{"prompt": "x", "size": "12x"}', "", spec_line(4, n=2)]
    batch_file = tmp_path / "jobs.jsonl"
    batch_file.write_text("\n".join(lines) + "\n")
    out = tmp_path / "out"

    result = CliRunner().invoke(
        app, ["--config", str(config), "batch", str(batch_file), "--out", str(out), "--json"]
    )

    assert result.exit_code == 1, result.output
    assert "line 2: size '12x' is not of the form WIDTHxHEIGHT" in result.stderr
    summary = json.loads(result.stdout)
    assert summary["renders"] == 3
    assert summary["failed"] == 1
    assert summary["batch_fill_ratio"] == pytest.approx(0.75)  # one call of 3 images, max 4
    assert float(summary["device_seconds"]) > 0
    assert summary["cost_usd"].startswith("0.") and len(summary["cost_usd"].split(".")[1]) >= 8
    assert sorted(p.name for p in out.iterdir()) == ["00001-0.png", "00004-0.png", "00004-1.png"]


def test_a_second_file_with_the_same_renders_is_answered_from_the_cache(
    tmp_path: Path, tiny_model_dir: Path
) -> None:
    config = sqlite_config(tmp_path, tiny_model_dir)

    def run(name: str, lines: list[str]) -> dict[str, object]:
        batch_file = tmp_path / name
        batch_file.write_text("\n".join(lines) + "\n")
        args = [
            "--config",
            str(config),
            "batch",
            str(batch_file),
            "--out",
            str(tmp_path / name[:-6]),
            "--json",
        ]
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, result.output
        summary: dict[str, object] = json.loads(result.stdout)
        return summary

    first = run("one.jsonl", [spec_line(1), spec_line(2, n=2)])
    assert first["from_cache"] == 0 and Decimal(str(first["cost_avoided_usd"])) == 0
    # the same renders under other line texts (new idempotency keys), and a random seed
    again = [
        json.dumps({"seed": 1, "size": "64x64", "preset": "lightning", "prompt": "line 1"}),
        spec_line(2, n=2, format="png"),
        json.dumps({"prompt": "line 1", "preset": "lightning", "size": "64x64"}),
    ]
    second = run("two.jsonl", again)
    assert second["from_cache"] == 2 and second["renders"] == 4
    assert Decimal(str(second["cost_avoided_usd"])) == Decimal(str(first["cost_usd"]))  # exactly what it paid
    assert Decimal(str(second["cost_usd"])) > 0  # the random seed rendered
    for name in ("00001-0.png", "00002-0.png", "00002-1.png"):
        assert (tmp_path / "two" / name).read_bytes() == (tmp_path / "one" / name).read_bytes()


@pytest.mark.integration
def test_killed_run_resumes_and_renders_only_what_is_missing(
    migrated_engine: Engine, db_url: str, tiny_model_dir: Path, tmp_path: Path
) -> None:
    count = 12
    config = write_config(
        tmp_path / "rendercost.toml",
        data_dir=tmp_path / "data",
        model_dir=tiny_model_dir,
        database_url=db_url,
        lease_seconds=2,
    )
    batch_file = tmp_path / "jobs.jsonl"
    batch_file.write_text("\n".join(spec_line(i) for i in range(1, count + 1)) + "\n")
    out = tmp_path / "out"
    command = [RENDERCOST, "--config", str(config), "batch", str(batch_file), "--out", str(out), "--json"]
    store = SqlJobStore(migrated_engine)

    def succeeded() -> list[str]:
        return [job.id for job in store.list_jobs(tenant=TENANT, states=[JobState.SUCCEEDED], limit=1000)]

    first = subprocess.Popen(
        command, env=child_env(tmp_path), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_until(lambda: len(succeeded()) >= 4, what="the first jobs", timeout_s=600, interval_s=POLL_S)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
    finally:
        if first.poll() is None:
            first.kill()
    done_before = {job_id: store.get(job_id).result for job_id in succeeded()}
    assert 4 <= len(done_before) < count, "the run finished before it could be killed"
    leases = [job.lease_expires_at for job in store.list_jobs(states=[JobState.RUNNING], limit=1000)]
    expiry = max((at for at in leases if at is not None), default=None)
    if expiry is not None:  # the next run takes over once the dead run's leases expire
        time.sleep(max(0.0, (expiry - datetime.now(UTC)).total_seconds()) + 0.2)

    second = subprocess.run(  # two worker threads sharing the model this time
        [*command, "--workers", "2"], env=child_env(tmp_path), capture_output=True, text=True, timeout=900
    )

    assert second.returncode == 0, second.stderr[-2000:]
    summary = json.loads(second.stdout)
    assert summary["renders"] == count
    assert summary["failed"] == 0
    assert summary["already_done"] == len(done_before)
    jobs = store.list_jobs(tenant=TENANT, limit=1000)
    assert len(jobs) == count  # re-running queued nothing twice
    assert {job.state for job in jobs} == {JobState.SUCCEEDED}
    for job in jobs:
        assert Ledger(store.engine).count_lines(job_id=job.id) == LINES_PER_IMAGE
        if job.id in done_before:
            assert job.result == done_before[job.id]  # not rendered again
    assert len(list(out.iterdir())) == count
