"""The worker end to end on the tiny diffusers model and both databases: real pipeline, real SQL, real
files. One burst run; what it leaves behind is checked image by image and line by line."""

from __future__ import annotations

import io
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import Engine

from rendercost.artifacts.local import TEMP_PREFIX, LocalArtifactStore
from rendercost.artifacts.metadata import read_receipt
from rendercost.domain.costs import DEVICE_STAGES, PricingModel, Stage
from rendercost.domain.jobs import JobState
from rendercost.domain.money import cost_of_seconds
from rendercost.domain.runner import Runner
from rendercost.domain.specs import Priority, RenderRequest, RenderSpec
from rendercost.execution.worker.loop import Worker
from rendercost.execution.worker.pricing import WorkerPricing
from rendercost.execution.worker.setup import build_planner
from rendercost.ledger.billing import Biller
from rendercost.ledger.catalog import PriceCatalog
from rendercost.queue.sql_store import SqlJobStore
from rendercost.settings import Settings
from rendercost.testing.runner import TimedRunner

pytestmark = pytest.mark.slow


def test_burst_on_the_tiny_model(
    migrated_engine: Engine, tiny_runner: Runner, tiny_settings: Settings, tmp_path: Path
) -> None:
    store = SqlJobStore(migrated_engine)
    spec = RenderSpec(prompt="a tiny harbour", preset="lightning", width=64, height=64)
    sizes = {"a": 1, "b": 2, "c": 3}
    job_ids = {
        name: store.enqueue("t", RenderRequest(spec=spec, n=n, priority=Priority.BATCH)).id
        for name, n in sizes.items()
    }
    artifacts = LocalArtifactStore(tmp_path / "artifacts")
    pricing = WorkerPricing(PriceCatalog.load(), "cpu", PricingModel.ON_DEMAND, "us-east-1")
    runner = TimedRunner(tiny_runner)  # keeps the real runner's results
    biller = Biller(store)
    worker = Worker(
        store, runner, artifacts, build_planner(tiny_settings), pricing, biller=biller, worker_id="w"
    )
    stats = worker.run_burst()

    assert stats.jobs_succeeded == 3
    assert [len(result.images) for result in runner.results] == [4, 2]  # a, b, c0 | c1, c2
    usd_per_hour = pricing.catalog.device_price("cpu", PricingModel.ON_DEMAND, "us-east-1")
    by_batch: dict[tuple[str, Stage], Decimal] = defaultdict(Decimal)
    for name, job_id in job_ids.items():
        job = store.get(job_id)
        assert job.state is JobState.SUCCEEDED
        lines = biller.ledger.lines_for_job(job_id)
        assert len(lines) == sizes[name] * (len(DEVICE_STAGES) + 1)
        for line in lines:
            by_batch[(line.batch_id, line.stage)] += line.cost
        assert job.result is not None
        for image in job.result.images:
            data = artifacts.get(image.artifact_key)
            assert Image.open(io.BytesIO(data)).size == (64, 64)
            assert read_receipt(data, "image/png")["receipt"] == image.receipt.to_dict()  # type: ignore[index]
            assert image.seed == spec.seed + image.index
    for result in runner.results:  # each batch's lines add up to exactly what the batch cost
        for stage, seconds in result.stage_seconds.items():
            assert by_batch[(result.batch_id, stage)] == cost_of_seconds(seconds, usd_per_hour)
    assert list(artifacts.root.rglob(f"{TEMP_PREFIX}*")) == []
