"""GET /v1/jobs/{id}/events on a real server over the tiny model, on SQLite and PostgreSQL: a job
followed from queued to done by httpx streaming, rendered by a burst worker (as another process's would
be: the stream sees it by polling the store), and tenancy both ways."""

from __future__ import annotations

import threading
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest

from rendercost.execution.models.registry import ModelRegistry
from rendercost.execution.pipeline.runner import DiffusersRunner
from rendercost.execution.worker.setup import build_worker
from rendercost.queue.sql_store import SqlJobStore
from rendercost.testing.sse import read_events
from tests.integration.http_server import LiveServer, few_steps, live_server

pytestmark = pytest.mark.slow


def start_burst_worker(server: LiveServer) -> threading.Thread:
    embedded = server.embedded
    store = embedded.services.store
    assert isinstance(store, SqlJobStore)
    runner = DiffusersRunner(ModelRegistry(embedded.settings), embedded.settings, preset_lookup=few_steps)
    worker = build_worker(
        embedded.settings, store, runner, worker_id="burst", artifacts=embedded.services.artifacts
    )
    thread = threading.Thread(target=worker.run_burst, daemon=True)
    thread.start()
    return thread


def test_a_job_streams_queued_then_done_on_the_tiny_model(
    db_url: str, tmp_path: Path, tiny_model_dir: Path
) -> None:
    with ExitStack() as stack:
        server = stack.enter_context(
            live_server(tmp_path / "data", tiny_model_dir, workers=0, database_url=db_url)
        )
        acme = stack.enter_context(
            httpx.Client(base_url=server.url, headers={"X-API-Key": server.new_key("acme")}, timeout=120)
        )
        globex = stack.enter_context(
            httpx.Client(base_url=server.url, headers={"X-API-Key": server.new_key("globex")}, timeout=60)
        )
        body = {"prompt": "a lighthouse at dusk", "preset": "lightning", "seed": 7, "size": "64x64"}
        ahead = acme.post("/v1/jobs", json={**body, "seed": 6}).json()["id"]
        job_id = acme.post("/v1/jobs", json=body).json()["id"]
        globex_job = globex.post("/v1/jobs", json=body).json()["id"]

        for client, foreign in ((globex, job_id), (acme, globex_job)):
            refused = client.get(f"/v1/jobs/{foreign}/events")
            assert refused.status_code == 404, refused.text
            assert refused.json()["error"]["code"] == "not_found"

        with acme.stream("GET", f"/v1/jobs/{job_id}/events") as response:
            assert response.status_code == 200
            events = read_events(response)
            first = next(events)
            assert first.event == "queued"
            assert first.json() == {"id": job_id, "state": "queued", "queue_position": 2}
            worker = start_burst_worker(server)
            rest = list(events)
        worker.join(120)
        job = acme.get(f"/v1/jobs/{job_id}").json()
        assert acme.get(f"/v1/jobs/{ahead}").json()["state"] == "succeeded"

    assert rest, "the stream ended without a done event"
    assert {e.event for e in rest[:-1]} <= {"queued", "progress"}
    done = rest[-1]
    assert done.event == "done"
    body_done = done.json()
    assert body_done["state"] == "succeeded" == job["state"]
    assert body_done["receipt"] == job["receipt"]
    assert body_done["receipt"]["total_usd"] == job["receipt"]["total_usd"]
    assert [r["url"] for r in body_done["results"]] == [r["url"] for r in job["results"]]
