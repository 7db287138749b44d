"""`rendercost worker --burst` on the real tiny model: it renders the queue, and what it renders answers
exact repeats (the cache entries are keyed by the weights its own registry fingerprinted)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rendercost.admission.exact_cache import ExactCache
from rendercost.artifacts.local import LocalArtifactStore
from rendercost.caches.result_cache import ResultCache
from rendercost.cli import app
from rendercost.db.engine import create_db_engine
from rendercost.db.migrate import migrate
from rendercost.domain.jobs import JobState
from rendercost.domain.specs import RenderRequest, RenderSpec
from rendercost.execution.models.registry import ModelRegistry
from rendercost.queue.sql_store import SqlJobStore
from rendercost.settings import Settings

pytestmark = pytest.mark.slow


def test_a_burst_worker_renders_the_queue_and_fills_the_result_cache(
    tmp_path: Path, tiny_model_dir: Path
) -> None:
    env = {
        "RENDERCOST_MODELS__DEFAULT__SOURCE": str(tiny_model_dir),
        "RENDERCOST_MIN_SIDE": "64",
        "RENDERCOST_CONFIG": None,
        "RENDERCOST_DATABASE_URL": None,
    }
    settings = Settings(data_dir=tmp_path, min_side=64, models={"default": {"source": str(tiny_model_dir)}})
    engine = create_db_engine(settings.resolved_database_url)
    try:
        migrate(engine)
        store = SqlJobStore(engine)
        spec = RenderSpec(prompt="a tiny harbour", preset="lightning", width=64, height=64, seed=12)
        job = store.enqueue("acme", RenderRequest(spec=spec, n=2))

        result = CliRunner(env=env).invoke(app, ["--data-dir", str(tmp_path), "worker", "--burst"])
        assert result.exit_code == 0, result.output
        summary = json.loads(result.stdout.strip().splitlines()[-1])
        assert summary["jobs_succeeded"] == 1 and summary["images"] == 2
        assert store.get(job.id).state == JobState.SUCCEEDED

        gate = ExactCache(
            ResultCache(engine, settings.result_cache_ttl_seconds),
            LocalArtifactStore(settings.resolved_artifacts_dir),
            ModelRegistry(settings).fingerprint,
        )
        entries = gate.find(RenderRequest(spec=spec, n=2))
        assert entries is not None
        result = store.get(job.id).result
        assert result is not None
        stored = [image.artifact_key for image in result.images]
        assert [entry.location for entry in entries] == stored
    finally:
        engine.dispose()
