"""One billing path: the same spec rendered through `rendercost render`, `rendercost batch` and
`POST /v1/jobs` (a real server on loopback, the real tiny model) is priced, receipted, embedded, stored
and billed the same way: the same cost-line stages, storage priced on the final bytes, the same file
suffix, and the ledger's lines for each job equal to its receipts' lines."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from rendercost.artifacts.local import LocalArtifactStore
from rendercost.artifacts.metadata import read_receipt
from rendercost.cli import app
from rendercost.cli.local_queue import CLI_TENANT
from rendercost.db.engine import create_db_engine
from rendercost.domain.costs import CostLine, Stage
from rendercost.domain.jobs import Job, JobState
from rendercost.domain.money import ZERO
from rendercost.domain.results import JobResult
from rendercost.execution.models.registry import ModelRegistry
from rendercost.execution.pipeline.runner import DiffusersRunner
from rendercost.ledger.catalog import PriceCatalog
from rendercost.ledger.ledger import Ledger
from rendercost.ledger.pricing import price_storage
from rendercost.queue.sql_store import SqlJobStore
from rendercost.testing.waiting import wait_for_job
from tests.fixtures.models import make_tiny_settings
from tests.integration.http_server import live_server

pytestmark = pytest.mark.slow

PROMPT = "a red kite over the dunes"
SEED = 21


def _cli_env(tiny_model_dir: Path) -> dict[str, str | None]:
    return {
        "RENDERCOST_MODELS__DEFAULT__SOURCE": str(tiny_model_dir),
        "RENDERCOST_MIN_SIDE": "64",
        "RENDERCOST_CONFIG": None,
        "RENDERCOST_DATABASE_URL": None,
        "RENDERCOST_LLM_PROVIDERS": None,
    }


def _invoke(runner: CliRunner, data: Path, *args: str) -> dict[str, Any]:
    """The command's ``--json`` document (``batch`` prints it as its last line)."""
    result = runner.invoke(app, ["--data-dir", str(data), *args])
    assert result.exit_code == 0, result.output
    document: dict[str, Any] = json.loads(
        result.stdout.strip().splitlines()[-1] if args[0] == "batch" else result.stdout
    )
    return document


def _post_job(url: str, key: str) -> str:
    body = {"prompt": PROMPT, "seed": SEED, "size": "64x64", "preset": "lightning", "output_format": "jpeg"}
    headers = {"Authorization": f"Bearer {key}", "Cache-Control": "no-store"}
    with httpx.Client(base_url=url, headers=headers, timeout=60) as client:
        submitted = client.post("/v1/jobs", json=body)
        assert submitted.status_code == 202, submitted.text
        job_id: str = submitted.json()["id"]
        done = wait_for_job(lambda: client.get(f"/v1/jobs/{job_id}").json(), what=job_id, timeout_s=300)
        assert done["state"] == "succeeded", done
    return job_id


def _key(line: CostLine) -> tuple[Any, ...]:
    return (line.job_id, line.image_index, str(line.stage), line.cost, line.cost_avoided, line.quantity)


def test_render_batch_and_jobs_bill_one_way(tmp_path: Path, tiny_model_dir: Path) -> None:
    data, out = tmp_path / "data", tmp_path / "out"
    out.mkdir()
    runner = CliRunner(env=_cli_env(tiny_model_dir))
    spec_flags = ["--seed", str(SEED), "--size", "64x64", "--preset", "lightning", "--format", "jpeg"]
    rendered = _invoke(
        runner, data, "render", PROMPT, *spec_flags, "--out", str(out / "r.jpg"), "--no-cache", "--json"
    )
    line = {"prompt": PROMPT, "seed": SEED, "size": "64x64", "preset": "lightning", "format": "jpeg"}
    (tmp_path / "one.jsonl").write_text(json.dumps(line) + "\n")
    batched = _invoke(runner, data, "batch", str(tmp_path / "one.jsonl"), "--out", str(out / "b"), "--json")
    assert batched["renders"] == 1 and batched["from_cache"] == 0  # render --no-cache stored nothing

    settings = make_tiny_settings(data, tiny_model_dir, default_size="64x64", max_wait_ms=0)
    diffusers = DiffusersRunner(ModelRegistry(settings), settings)
    with live_server(data, tiny_model_dir, runner=diffusers) as server:
        api_job_id = _post_job(server.url, server.new_key("acme"))

    engine = create_db_engine(settings.resolved_database_url)
    try:
        store, ledger = SqlJobStore(engine), Ledger(engine)
        cli_jobs = sorted(store.list_jobs(tenant=CLI_TENANT), key=lambda job: job.created_at)
        jobs = [*cli_jobs, store.get(api_job_id)]
        assert len(jobs) == 3 and {job.state for job in jobs} == {JobState.SUCCEEDED}
        assert rendered["images"][0]["receipt"] == _result(jobs[0]).images[0].receipt.to_dict()
        copies = [out / "r.jpg", out / "b" / "00001-0.jpg", None]
        artifacts = LocalArtifactStore(settings.resolved_artifacts_dir)
        catalog = PriceCatalog.load(settings.catalog_path)
        stages = []
        for job, copy in zip(jobs, copies, strict=True):
            [image] = _result(job).images
            final = artifacts.get(image.artifact_key)
            assert image.artifact_key.endswith(".jpg") and image.media_type == "image/jpeg"
            if copy is not None:
                assert copy.read_bytes() == final  # the door copied the stored file
            payload = read_receipt(final, "image/jpeg")
            assert payload is not None and payload["receipt"] == image.receipt.to_dict()
            storage = next(line for line in image.receipt.lines if line.stage == Stage.STORAGE)
            expected = price_storage(
                job.id,
                0,
                len(final),
                catalog=catalog,
                backend="local",
                region=settings.region,
                retention_days=settings.artifact_retention_days,
            )
            assert (storage.quantity, storage.cost, storage.unit_price) == (
                expected.quantity,
                expected.cost,
                expected.unit_price,
            )  # priced on the final bytes, the receipt inside
            billed = ledger.lines_for_job(job.id)
            assert sorted(map(_key, billed)) == sorted(map(_key, image.receipt.lines))  # ledger = receipts
            assert sum((line.cost for line in billed), ZERO) == _result(job).cost > 0
            stages.append([str(line.stage) for line in image.receipt.lines])
        assert stages[0] == stages[1] == stages[2]
        assert stages[0][-1] == "storage"
    finally:
        engine.dispose()


def _result(job: Job) -> JobResult:
    assert job.result is not None
    return job.result
