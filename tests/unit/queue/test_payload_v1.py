"""Jobs queued by the release before the typed records (payload schema 1, a free-form ``extra``) are read,
claimed, completed and billed as they were: ``data/job_payloads_v1.json`` holds payloads as that release
wrote them (the jobs API with a rewrite and ``no-store``, the images API with a dropped rewrite, a
``rendercost batch`` line), inserted here as raw rows."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, insert, select

from rendercost.api.views import request_json
from rendercost.db.clock import ManualClock
from rendercost.domain.controls import CacheMode, CacheOutcome, CachePolicy, ClientInfo
from rendercost.domain.costs import CostLine, Stage
from rendercost.domain.jobs import JobState
from rendercost.domain.specs import LoraRef, OutputFormat, Priority, RenderSpec
from rendercost.ledger.billing import Biller
from rendercost.ledger.pricing import rewrite_lines
from rendercost.ledger.tables import cost_lines
from rendercost.queue.codec import PRIORITY_RANK
from rendercost.queue.sql_store import SqlJobStore
from rendercost.queue.tables import jobs
from tests.unit.queue.conftest import LEASE_S, make_lines, make_result

STORED = json.loads((Path(__file__).parent / "data" / "job_payloads_v1.json").read_text())
TAGS = {"api_key": "key_1", "team": "ads"}


def _insert_v1(engine: Engine, clock: ManualClock, job_id: str, payload: dict[str, Any]) -> None:
    """A queued job's row as the release before wrote it (``SqlJobStore._new_row`` at that release)."""
    request = payload["request"]
    now = clock()
    row = {
        "id": job_id,
        "tenant": "acme",
        "state": "queued",
        "priority": request["priority"],
        "priority_rank": PRIORITY_RANK[Priority(request["priority"])],
        "model": request["spec"]["model"],
        "payload": payload,
        "idempotency_key": None,
        "attempts": 0,
        "max_attempts": 3,
        "progress": 0.0,
        "result": {},
        "webhook_url": None,
        "tags": TAGS,
        "created_at": now,
        "updated_at": now,
    }
    with engine.begin() as conn:
        conn.execute(insert(jobs).values(row))


def test_stored_v1_payloads_are_read_as_typed_requests(
    store: SqlJobStore, migrated_engine: Engine, clock: ManualClock
) -> None:
    for name, payload in STORED.items():
        assert payload["schema_version"] == 1
        _insert_v1(migrated_engine, clock, f"job_{name}", payload)

    jobs_api = store.get("job_jobs_api").request
    assert jobs_api.spec == RenderSpec(
        prompt="a red kite over a field, golden hour, 85mm",
        negative_prompt="blurry",
        model="default",
        preset="lightning",
        width=64,
        height=64,
        seed=1234,
        loras=(LoraRef("ink", 0.5),),
        output_format=OutputFormat.JPEG,
    )
    assert (jobs_api.n, jobs_api.priority, jobs_api.styles) == (2, Priority.BATCH, ("cinematic",))
    assert jobs_api.client == ClientInfo(api="jobs", user="u-17", response_format=None)
    assert jobs_api.cache == CachePolicy(CacheMode.NO_STORE, CacheOutcome.BYPASS)
    assert not jobs_api.cache.stores
    rewrite = jobs_api.rewrite
    assert rewrite is not None and rewrite.used
    assert rewrite.original_prompt == "a red kite over a field"
    assert rewrite.revised_prompt == jobs_api.spec.prompt
    assert (rewrite.provider, rewrite.model, rewrite.input_tokens, rewrite.output_tokens) == (
        "openai", "gpt-4o-mini", 120, 45
    )  # fmt: skip
    assert (rewrite.fallback, rewrite.cache, rewrite.reused, rewrite.dropped) == (
        False, CacheOutcome.MISS, False, None
    )  # fmt: skip
    assert rewrite.line is not None
    assert rewrite.line.stage is Stage.PROMPT_REWRITE and rewrite.line.cost == Decimal("0.0000450000")
    assert rewrite.line.details == {
        "provider": "openai",
        "model": "gpt-4o-mini",
        "input_tokens": 120,
        "output_tokens": 45,
        "fallback": False,
    }

    images_api = store.get("job_images_api").request
    assert images_api.spec.prompt == "a lighthouse"  # the dropped rewrite did not render
    assert (images_api.n, images_api.priority, images_api.styles) == (1, Priority.INTERACTIVE, ())
    assert images_api.client == ClientInfo(api="openai", user=None, response_format="b64_json")
    assert images_api.cache == CachePolicy(CacheMode.DEFAULT, CacheOutcome.MISS)
    dropped = images_api.rewrite
    assert dropped is not None and not dropped.used
    assert dropped.dropped == "too long for the model's text encoder"
    assert (dropped.provider, dropped.fallback, dropped.cache) == ("builtin", True, CacheOutcome.OFF)
    assert dropped.line is not None and dropped.line.cost == 0

    batch_cli = store.get("job_batch_cli").request
    assert batch_cli.spec.prompt == "a boat" and batch_cli.priority is Priority.BATCH
    assert batch_cli.client == ClientInfo()
    assert batch_cli.cache == CachePolicy(CacheMode.NO_STORE, CacheOutcome.OFF)
    assert batch_cli.rewrite is None


def test_the_jobs_api_shows_an_old_job_s_request_as_it_was_stored(
    store: SqlJobStore, migrated_engine: Engine, clock: ManualClock
) -> None:
    for name, payload in STORED.items():
        _insert_v1(migrated_engine, clock, f"job_{name}", payload)
        assert request_json(store.get(f"job_{name}").request) == payload["request"]


def test_old_jobs_are_claimed_completed_and_billed_with_their_rewrite_share(
    store: SqlJobStore, biller: Biller, migrated_engine: Engine, clock: ManualClock
) -> None:
    for name, payload in STORED.items():
        _insert_v1(migrated_engine, clock, f"job_{name}", payload)
    claimed = store.claim("w1", 10, lease_seconds=LEASE_S)
    assert [job.id for job in claimed] == [
        "job_images_api",
        "job_jobs_api",
        "job_batch_cli",
    ]  # interactive first
    for job in claimed:
        assert job.result is None and job.state is JobState.RUNNING
        shares = rewrite_lines(job.request, job.id)  # what the worker puts in the receipts
        lines: list[CostLine] = [*shares, *make_lines(job.id, n_images=job.request.n)]
        result = make_result(job.request.n, lines=lines)
        done = biller.complete(job.id, "w1", result)
        assert done.state is JobState.SUCCEEDED and done.result == result
        assert done.request == job.request
        assert biller.ledger.lines_for_job(job.id) == sorted(
            lines, key=lambda line: (line.image_index, list(Stage).index(line.stage))
        )
    kite = rewrite_lines(store.get("job_jobs_api").request, "job_jobs_api")
    assert [line.cost for line in kite] == [Decimal("0.0000225000")] * 2  # 0.000045 over 2 images
    c = cost_lines.c
    query = select(c.job_id, c.tenant, c.model, c.preset, c.request_class, c.tags).distinct()
    with migrated_engine.connect() as conn:
        rows = sorted(tuple(row) for row in conn.execute(query))
    assert rows == [
        ("job_batch_cli", "acme", "default", "lightning", "batch", TAGS),
        ("job_images_api", "acme", "default", "speed", "interactive", TAGS),
        ("job_jobs_api", "acme", "default", "lightning", "batch", TAGS),
    ]
