"""GET /v1/jobs/{id}/events over a real HTTP server (uvicorn on loopback): queued with its position,
progress, done with the job JSON; tenancy as GET /v1/jobs/{id}; a bounded lifetime. The model is the
painter runner; the worker is a burst worker started by the test, as another process's would be."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from rendercost.api.threaded_server import uvicorn_thread
from rendercost.cli.serve import EmbeddedServer, embedded_server
from rendercost.domain.batch import BatchPlan
from rendercost.domain.runner import StepCallback
from rendercost.execution.models.catalog import SettingsModelCatalog
from rendercost.execution.worker.setup import build_worker
from rendercost.queue.sql_store import SqlJobStore
from rendercost.testing.runner import FakeRunner
from rendercost.testing.sse import Event, read_events
from tests.unit.api.conftest import api_settings


@dataclass
class Served:
    server: EmbeddedServer
    url: str
    admin_key: str

    def client(self, tenant: str) -> httpx.Client:
        secret = self.server.services.keys.create(tenant).secret
        return httpx.Client(base_url=self.url, headers={"X-API-Key": secret}, timeout=30)

    def burst(self, runner: FakeRunner) -> threading.Thread:
        """A burst worker on its own thread (no in-process wake-ups: the stream must poll)."""
        store = self.server.services.store
        assert isinstance(store, SqlJobStore)
        worker = build_worker(
            self.server.settings, store, runner, worker_id="burst", artifacts=self.server.services.artifacts
        )
        thread = threading.Thread(target=worker.run_burst, daemon=True)
        thread.start()
        return thread


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    settings = api_settings(tmp_path)
    catalog = SettingsModelCatalog(settings)
    with (
        embedded_server(settings, workers=0, runner=FakeRunner(), catalog=catalog, webhooks=False) as server,
        uvicorn_thread(server.app) as url,
    ):
        assert server.admin_key is not None
        yield Served(server, url, server.admin_key.secret)


def submit(client: httpx.Client, seed: int) -> str:
    response = client.post("/v1/jobs", json={"prompt": "a red kite", "seed": seed, "size": "64x64"})
    assert response.status_code == 202, response.text
    job_id: str = response.json()["id"]
    return job_id


def next_event(events: Iterator[Event]) -> Event:
    return next(events)


def test_queued_with_position_then_progress_then_done(served: Served) -> None:
    gate = threading.Event()

    def report_then_wait(plan: BatchPlan, on_step: StepCallback | None) -> None:
        assert on_step is not None
        threading.Event().wait(0.6)  # the worker writes progress at most every 0.5 s
        on_step(1, 2)
        gate.wait(20)

    with served.client("acme") as acme:
        first, second = submit(acme, 1), submit(acme, 2)
        with acme.stream("GET", f"/v1/jobs/{second}/events") as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            events = read_events(response)
            queued = next_event(events)
            assert (queued.event, queued.json()) == (
                "queued",
                {"id": second, "state": "queued", "queue_position": 2},
            )
            acme.delete(f"/v1/jobs/{first}")  # the job ahead leaves: the position moves up
            moved = next_event(events)
            assert (moved.event, moved.json()["queue_position"]) == ("queued", 1)
            worker = served.burst(FakeRunner(before=report_then_wait))
            progress = next_event(events)
            while progress.json()["state"] == "queued" or progress.json()["progress"] == 0:
                progress = next_event(events)  # claimed (running at 0) before the first step lands
            assert progress.event == "progress"
            assert progress.json() == {"id": second, "state": "running", "progress": 0.5, "images": 1}
            gate.set()
            done = next_event(events)
            assert done.event == "done"
            assert list(events) == []  # the stream ended after done
        worker.join(20)
        job = acme.get(f"/v1/jobs/{second}").json()
    body = done.json()
    assert body["state"] == "succeeded"
    assert body["receipt"] == job["receipt"] and body["receipt"]["lines"]
    assert body["results"] == job["results"]


def test_a_finished_job_streams_done_at_once(served: Served) -> None:
    with served.client("acme") as acme:
        job_id = submit(acme, 3)
        acme.delete(f"/v1/jobs/{job_id}")
        with acme.stream("GET", f"/v1/jobs/{job_id}/events") as response:
            events = list(read_events(response))
    assert [e.event for e in events] == ["done"]
    assert events[0].json()["state"] == "cancelled"


def test_another_tenants_job_is_404_both_ways_and_admin_sees_all(served: Served) -> None:
    with served.client("acme") as acme, served.client("globex") as globex:
        acme_job, globex_job = submit(acme, 4), submit(globex, 5)
        for client, foreign in ((acme, globex_job), (globex, acme_job)):
            refused = client.get(f"/v1/jobs/{foreign}/events")
            assert refused.status_code == 404
            assert refused.json()["error"]["code"] == "not_found"
        admin = httpx.Client(base_url=served.url, headers={"X-API-Key": served.admin_key}, timeout=30)
        with admin, admin.stream("GET", f"/v1/jobs/{acme_job}/events", params={"timeout_s": 0.5}) as seen:
            events = list(read_events(seen))
    assert [e.event for e in events] == ["queued", "timeout"]  # nobody renders: the lifetime runs out
    assert events[1].json() == {"id": acme_job, "state": "queued"}


def test_no_key_is_401_and_a_bad_lifetime_is_400(served: Served) -> None:
    with served.client("acme") as acme:
        job_id = submit(acme, 6)
        assert httpx.get(f"{served.url}/v1/jobs/{job_id}/events").status_code == 401
        bad = acme.get(f"/v1/jobs/{job_id}/events", params={"timeout_s": 0})
        assert bad.status_code == 400 and bad.json()["error"]["param"] == "timeout_s"
        assert acme.get("/v1/jobs/job_missing/events").status_code == 404
