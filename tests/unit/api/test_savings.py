"""Savings measured per line, through the real server and the tiny model: a draft routed to Lightning
carries a routing saving equal to the speed preset's measured solo cost minus its own; its exact repeat
carries the result cache's saving and the same routing saving; the report shows both and counts renders,
not lines, as cache hits; a draft kept a day as WebP saves the days not kept and the bytes a PNG of its
size would have taken."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from rendercost.cli.serve import EmbeddedServer, embedded_server
from rendercost.domain.costs import DEVICE_STAGES, CostLine, Stage
from rendercost.domain.jobs import JobState
from rendercost.domain.money import ZERO, quantize
from rendercost.ledger.ledger import Ledger
from rendercost.ledger.pricing import BYTES_PER_GB, DAYS_PER_MONTH
from rendercost.ledger.references import SizeKey, SpecKey
from rendercost.ledger.savings import STANDARD_RETENTION_DAYS, SavingsBook
from rendercost.ledger.tables import saving_lines
from rendercost.testing.waiting import wait_for_job
from tests.fixtures.models import make_tiny_settings


@pytest.fixture
def server(tmp_path: Path, tiny_model_dir: Path) -> Iterator[tuple[EmbeddedServer, TestClient, str]]:
    settings = make_tiny_settings(
        tmp_path / "data", tiny_model_dir, default_size="64x64", max_wait_ms=0, images_wait_timeout_s=60.0
    )
    with (
        embedded_server(settings, workers=1, webhooks=False) as running,
        TestClient(running.app, raise_server_exceptions=False) as client,
    ):
        yield running, client, running.services.keys.create("acme").secret


def _job(server: EmbeddedServer, client: TestClient, key: str, prompt: str, render_class: str) -> str:
    headers = {"Authorization": f"Bearer {key}", "X-Render-Class": render_class}
    body = {"prompt": prompt, "size": "64x64", "seed": 11}
    response = client.post("/v1/jobs", json=body, headers=headers)
    assert response.status_code == 202, response.text
    job_id = str(response.json()["id"])
    job = wait_for_job(lambda: server.services.store.get(job_id), what=f"job {job_id}", timeout_s=120)
    assert job.state is JobState.SUCCEEDED, job.last_error
    return job_id


def _cache_answer(client: TestClient, key: str, prompt: str, render_class: str) -> str:
    """The id of an exact repeat of a ``_job`` request, answered from the exact-result cache at once."""
    headers = {"Authorization": f"Bearer {key}", "X-Render-Class": render_class}
    body = {"prompt": prompt, "size": "64x64", "seed": 11}
    answer = client.post("/v1/jobs", json=body, headers=headers).json()
    assert answer["state"] == "succeeded"  # answered from the exact-result cache
    return str(answer["id"])


def _device(lines: list[CostLine]) -> list[CostLine]:
    return [line for line in lines if line.stage in DEVICE_STAGES]


def _savings(server: EmbeddedServer, job_id: str, mechanism: str) -> dict[str, Decimal]:
    c = saving_lines.c
    query = select(c.stage, c.amount).where(c.job_id == job_id, c.mechanism == mechanism)
    with server.engine.connect() as conn:
        return {str(stage): amount for stage, amount in conn.execute(query)}


def test_a_routed_draft_saves_the_speed_cost_minus_its_own(
    server: tuple[EmbeddedServer, TestClient, str],
) -> None:
    running, client, key = server
    admin_key = running.services.keys.create("ops", admin=True).secret
    admin = {"Authorization": f"Bearer {admin_key}"}
    rules = {"draft": {"preset": "lightning", "priority": "interactive"}}
    assert client.put("/v1/routing?tenant=acme", json={"rules": rules}, headers=admin).status_code == 200
    ledger = Ledger(running.engine)
    reviewed = _job(running, client, key, "a teapot on slate, soft light", "review")  # speed, alone
    speed = {str(line.stage): line for line in _device(ledger.lines_for_job(reviewed))}
    assert {line.batch_size for line in speed.values()} == {1}
    assert _savings(running, reviewed, "routing") == {}  # not routed: nothing saved by routing

    draft = _job(running, client, key, "a leather wallet on oak, window light", "draft")
    assert running.services.store.get(draft).request.spec.preset == "lightning"
    own = _device(ledger.lines_for_job(draft))
    with running.engine.connect() as conn:
        solo = SavingsBook().solo(conn, SpecKey("default", "speed", 64, 64, own[0].device_type))
    assert {str(stage): figure.samples for stage, figure in solo.items()} == {s: 1 for s in speed}
    routing = _savings(running, draft, "routing")
    # the speed preset's measured solo cost of each stage (one sample: the review's line) minus the draft's
    assert routing == {str(line.stage): speed[str(line.stage)].cost - line.cost for line in own}
    assert sum(routing.values(), ZERO) > 0
    assert _savings(running, draft, "batching") == {}  # rendered alone

    repeat = _cache_answer(client, key, "a leather wallet on oak, window light", "draft")
    hit_lines = _device(ledger.lines_for_job(repeat))
    assert sum((line.cost for line in hit_lines), ZERO) == 0
    assert _savings(running, repeat, "routing") == routing  # same spec, same references
    assert _savings(running, repeat, "batching") == {}  # the paid render ran alone

    report = client.get("/v1/costs?by=class", headers={"Authorization": f"Bearer {key}"}).json()
    rows = {row["class"]: row for row in report["rows"]}
    assert Decimal(rows["draft"]["savings_usd"]["routing"]) == 2 * sum(routing.values(), ZERO)
    assert Decimal(rows["draft"]["savings_usd"]["result"]) > 0
    assert "routing" not in rows["review"]["savings_usd"]
    for row in report["rows"]:
        assert row["cache_hits"] <= row["renders"]
    assert rows["draft"]["cache_hits"] == 1 and rows["draft"]["renders"] == 2

    export = client.get("/v1/costs/export/focus", headers=admin)
    assert export.status_code == 200
    focus = [row for row in csv.DictReader(io.StringIO(export.text)) if row["x_RenderId"] == draft]
    tags = [json.loads(row["Tags"]) for row in focus]
    tagged = [Decimal(tag["saving:routing"]) for tag in tags if "saving:routing" in tag]
    assert sum(tagged, ZERO) == sum(routing.values(), ZERO)
    kept = [Decimal(tag["saving:lifecycle"]) for tag in tags if "saving:lifecycle" in tag]
    assert kept == [_savings(running, draft, "lifecycle")["storage"]]


def test_a_draft_kept_one_day_saves_the_bytes_times_the_days_not_kept(
    server: tuple[EmbeddedServer, TestClient, str],
) -> None:
    running, client, key = server
    draft = _job(running, client, key, "a linen shirt on a chair", "draft")
    final = _job(running, client, key, "a linen shirt on a hanger", "final")
    (storage,) = [line for line in Ledger(running.engine).lines_for_job(draft) if line.stage == Stage.STORAGE]
    granted = int(storage.details["retention_days"])
    assert granted < STANDARD_RETENTION_DAYS
    not_kept = Decimal(STANDARD_RETENTION_DAYS - granted) / DAYS_PER_MONTH
    expected = quantize(Decimal(int(storage.details["bytes"])) / BYTES_PER_GB * not_kept * storage.unit_price)
    assert _savings(running, draft, "lifecycle") == {"storage": expected}
    assert _savings(running, final, "lifecycle") == {}  # kept the standard 30 days


def test_a_draft_written_as_webp_saves_the_bytes_a_png_of_its_size_would_have_taken(
    server: tuple[EmbeddedServer, TestClient, str],
) -> None:
    running, client, key = server
    ledger = Ledger(running.engine)
    final = _job(running, client, key, "a ceramic vase on linen", "final")  # PNG: the standard file
    draft = _job(running, client, key, "a glass bottle on stone", "draft")  # WebP, kept a day

    def storage(job_id: str) -> CostLine:
        (line,) = [line for line in ledger.lines_for_job(job_id) if line.stage == Stage.STORAGE]
        return line

    png, webp = storage(final), storage(draft)
    assert (png.details["format"], webp.details["format"]) == ("png", "webp")
    assert _savings(running, final, "format") == {}  # written in the standard format
    standard_months = Decimal(STANDARD_RETENTION_DAYS) / DAYS_PER_MONTH
    smaller = Decimal(int(png.details["bytes"]) - int(webp.details["bytes"]))
    expected = quantize(smaller / BYTES_PER_GB * standard_months * webp.unit_price)
    assert expected > 0
    assert _savings(running, draft, "format") == {"storage": expected}

    # cost + lifecycle + format is a PNG of the standard size kept the standard days, to the quantum
    kept_less = _savings(running, draft, "lifecycle")["storage"]
    put = Decimal(str(webp.details["put_price_per_1000"])) / 1000
    standard_file = Decimal(int(png.details["bytes"])) / BYTES_PER_GB * standard_months * webp.unit_price
    assert abs(webp.cost + kept_less + expected - standard_file - put) <= Decimal("3e-10")

    repeat = _cache_answer(client, key, "a glass bottle on stone", "draft")
    hit = storage(repeat)
    assert hit.cost == ZERO and hit.cost_avoided == webp.cost
    assert _savings(running, repeat, "format") == {"storage": expected}  # the paid file's
    assert _savings(running, repeat, "lifecycle") == {"storage": kept_less}
    with running.engine.connect() as conn:  # the hit stored nothing: one WebP file learned, not two
        assert SavingsBook().stored_size(conn, SizeKey("default", 64, 64, "webp")) == Decimal(
            int(webp.details["bytes"])
        )
