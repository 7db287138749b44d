"""The spend rollup equals the ledger, per scope and per day and month, after a mix of real renders
through the app (jobs, an exact-cache answer, prompt rewrites through a loopback LLM and an images-API
cache answer, idle time, lines on another day and month), on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from rendercost.domain.costs import Stage
from rendercost.ledger import rollup
from rendercost.ledger.idle import IdleRecorder
from rendercost.ledger.tables import cost_lines
from tests.unit.api.conftest import ApiFactory
from tests.unit.api.test_jobs import wait_done
from tests.unit.governance.helpers import line, seed
from tests.unit.ledger.test_rollup import PAST, assert_rollup_is_the_ledger, rollup_rows
from tests.unit.llm_gateway.llm_server import KEY_ENV, LlmServer, provider_config

GEN = "/v1/images/generations"


def test_rollup_equals_the_ledger_after_a_mix_of_renders(
    db_url: str,
    make_api: ApiFactory,
    llm: LlmServer,
    monkeypatch: pytest.MonkeyPatch,  # db_url first: torn down last
) -> None:
    monkeypatch.setenv(KEY_ENV, "k1")
    api = make_api(database_url=db_url, llm_providers=[provider_config(llm)])
    globex = api.new_key("globex")
    for key, seed_value, n in ((None, 1, 2), (globex, 2, 1), (None, 3, 3)):
        job = api.client.post(
            "/v1/jobs", json={"prompt": "a kite", "seed": seed_value, "n": n}, headers=api.headers(key)
        )
        assert job.status_code == 202, job.text
        assert wait_done(api, job.json()["id"], key)["state"] == "succeeded"
    repeat = api.client.post("/v1/jobs", json={"prompt": "a kite", "seed": 1, "n": 2}, headers=api.headers())
    assert repeat.json()["state"] == "succeeded"  # an exact-cache answer: $0 lines with the cost avoided
    rewritten = {
        "prompt": "white sneaker on a beach",
        "seed": 4,
        "rewrite": True,
        "response_format": "b64_json",
    }
    assert api.client.post(GEN, json=rewritten, headers=api.headers(globex)).status_code == 200
    assert api.client.post(GEN, json=rewritten, headers=api.headers(globex)).status_code == 200  # cached
    engine = api.server.engine
    idle = IdleRecorder(
        engine, worker_id="w1", usd_per_hour=Decimal("2.5"), device_type="cpu", flush_after_s=3600
    )
    idle.add(12.5)
    assert idle.flush() == 1
    seed(engine, "old-1", PAST, [line("old-1", Stage.DENOISE, "0.1234567891")])  # another day and month
    seed(
        engine,
        "old-2",
        PAST + timedelta(microseconds=1),
        [line("old-2", Stage.DECODE, "0.5")],
        tenant="globex",
    )

    with engine.connect() as conn:
        stages = {s for (s,) in conn.execute(select(cost_lines.c.stage).distinct())}
    assert {"denoise", "storage", "prompt_rewrite", "idle"} <= stages  # the mix really happened
    assert assert_rollup_is_the_ledger(engine) > 0
    before = rollup_rows(engine)
    with engine.begin() as conn:
        rollup.rebuild(conn, now=datetime.now(UTC))
    assert rollup_rows(engine) == before  # the SQL regrouping agrees with the running totals
