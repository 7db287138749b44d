"""The jobs API over real HTTP: a server with a worker on the tiny model, on SQLite and PostgreSQL, and
a webhook receiver of our own on loopback."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from rendercost.api.webhooks import SIGNATURE_HEADER, verify_signature
from rendercost.testing.waiting import wait_for_job, wait_until
from tests.integration.http_server import live_server, uvicorn_thread

pytestmark = pytest.mark.slow


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[tuple[bytes, dict[str, str]]]]]:
    """A webhook receiver on loopback: fails the first POST with 503, then accepts and records."""
    received: list[tuple[bytes, dict[str, str]]] = []
    attempts: list[int] = []

    async def hook(request: Request) -> Response:
        attempts.append(1)
        if len(attempts) == 1:
            return Response(status_code=503)
        received.append((await request.body(), dict(request.headers)))
        return Response(status_code=204)

    with uvicorn_thread(Starlette(routes=[Route("/hook", hook, methods=["POST"])])) as url:  # type: ignore[arg-type]
        yield f"{url}/hook", received


def wait_for(client: httpx.Client, job_id: str, timeout_s: float = 120) -> dict[str, Any]:
    def read() -> dict[str, Any]:
        job: dict[str, Any] = client.get(f"/v1/jobs/{job_id}").json()
        return job

    return wait_for_job(read, what=f"job {job_id}", timeout_s=timeout_s, interval_s=0.05)


def test_jobs_path(
    db_url: str,
    tmp_path: Path,
    tiny_model_dir: Path,
    receiver: tuple[str, list[tuple[bytes, dict[str, str]]]],
) -> None:
    hook_url, received = receiver
    with ExitStack() as stack:
        server = stack.enter_context(live_server(tmp_path / "data", tiny_model_dir, database_url=db_url))
        acme = stack.enter_context(
            httpx.Client(base_url=server.url, headers={"X-API-Key": server.new_key("acme")}, timeout=60)
        )
        body = {
            "prompt": "a lighthouse at dusk",
            "negative_prompt": "blurry",
            "preset": "lightning",
            "seed": 1234,
            "n": 2,
            "size": "64x64",
            "priority": "batch",
            "webhook_url": hook_url,
            "output_format": "png",
        }
        submitted = acme.post("/v1/jobs", json=body, headers={"Idempotency-Key": "k-1"})
        assert submitted.status_code == 202, submitted.text
        job_id = submitted.json()["id"]
        again = acme.post("/v1/jobs", json=body, headers={"Idempotency-Key": "k-1"})
        assert again.json()["id"] == job_id

        job = wait_for(acme, job_id)
        assert job["state"] == "succeeded", job
        assert [r["seed"] for r in job["results"]] == [1234, 1235]
        assert job["rendercost"]["job_id"] == job_id
        assert job["receipt"]["total_usd"] == job["rendercost"]["cost_usd"]

        image = job["results"][0]
        meta = acme.get(f"/v1/images/{image['id']}").json()
        assert meta["media_type"] == "image/png" and meta["seed"] == 1234
        raw = acme.get(f"/v1/images/{image['id']}", headers={"Accept": "image/png"})
        assert raw.content.startswith(b"\x89PNG") and len(raw.content) == meta["size_bytes"]

        globex = stack.enter_context(
            httpx.Client(base_url=server.url, headers={"X-API-Key": server.new_key("globex")})
        )
        assert globex.get(f"/v1/jobs/{job_id}").status_code == 404
        assert globex.get(f"/v1/images/{image['id']}").status_code == 404
        assert globex.get("/v1/jobs").json()["data"] == []

        wait_until(lambda: received, what="the webhook retried after a 503", timeout_s=30, interval_s=0.05)
        assert len(received) == 1, "the webhook was not retried after a 503"
        raw_body, headers = received[0]
        assert verify_signature("hook-secret", raw_body, headers[SIGNATURE_HEADER.lower()])
        event = json.loads(raw_body)
        assert event["type"] == "job.succeeded" and event["data"]["id"] == job_id
        assert event["data"]["rendercost"] == job["rendercost"]

        listed = acme.get("/v1/jobs", params={"state": "succeeded"}).json()
        assert [j["id"] for j in listed["data"]] == [job_id]
        metrics = httpx.get(f"{server.url}/metrics").text
        assert (
            'rendercost_cost_usd_total{model="default",preset="lightning",stage="denoise",tenant="acme"}'
            in metrics
        )


def test_cancel_a_queued_job_on_a_server_without_workers(tmp_path: Path, tiny_model_dir: Path) -> None:
    with (
        live_server(tmp_path / "data", tiny_model_dir, workers=0) as server,
        httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {server.admin_key}"}) as client,
    ):
        first = client.post("/v1/jobs", json={"prompt": "one"}).json()
        second = client.post("/v1/jobs", json={"prompt": "two"}).json()
        assert (first["queue_position"], second["queue_position"]) == (1, 2)
        queue = client.get("/v1/queue").json()
        assert queue["total"] == 2
        cancelled = client.delete(f"/v1/jobs/{first['id']}")
        assert cancelled.status_code == 200 and cancelled.json()["state"] == "cancelled"
        assert client.get(f"/v1/jobs/{second['id']}").json()["queue_position"] == 1
        again = client.delete(f"/v1/jobs/{first['id']}")
        assert again.status_code == 409 and again.json()["error"]["code"] == "invalid_job_state"
        ready = httpx.get(f"{server.url}/readyz").json()
        assert ready["checks"] == {"database": "ok", "model": "ok"}
