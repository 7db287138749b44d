"""Costs and budgets over HTTP: the 402 breaker at enqueue, reports per tenant, the FOCUS CSV."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

from rendercost.domain.jobs import JobState
from rendercost.ledger.ledger import Ledger
from rendercost.testing.waiting import wait_for_job
from tests.unit.api.conftest import Api, ApiFactory

BODY = {"prompt": "a red fox", "size": "64x64", "n": 1}


def _render(api: Api, key: str | None = None, **headers: str) -> int:
    """Queue a render (POST /v1/jobs) and wait for its worker to finish it; the HTTP status, or the
    job's final state as 200 (succeeded) / 500 (anything else). A job still unfinished after 20 s
    fails the test."""
    response = api.client.post("/v1/jobs", json=BODY, headers={**api.headers(key), **headers})
    if response.status_code != 202:
        return response.status_code
    job_id = response.json()["id"]
    job = wait_for_job(lambda: api.server.services.store.get(job_id), what=f"job {job_id}", timeout_s=20)
    return 200 if job.state == JobState.SUCCEEDED else 500


def test_budget_breaker_refuses_with_402_until_override(make_api: ApiFactory) -> None:
    api = make_api()
    admin = api.new_key("ops", admin=True)
    assert _render(api) == 200
    spent = Ledger(api.server.engine).total(tenant="acme")
    assert spent > 0
    # a budget just above what one render costs: the next estimate (the recent average) does not fit
    amount = format((spent * Decimal("1.5")).quantize(Decimal("1e-10")), "f")
    put = api.client.put(
        "/v1/budgets/acme", json={"amount_usd": amount, "period": "day"}, headers=api.headers(admin)
    )
    assert put.status_code == 200, put.text
    refused = api.client.post("/v1/jobs", json=BODY, headers=api.headers())
    assert refused.status_code == 402
    assert refused.json()["error"]["code"] == "budget_exceeded"
    assert len(api.server.services.store.list_jobs(tenant="acme", limit=10)) == 1  # nothing queued
    assert (
        api.client.put(
            "/v1/budgets/acme", json={"amount_usd": "1", "period": "day"}, headers=api.headers()
        ).status_code
        == 403
    )
    shown = api.client.get("/v1/budgets/acme", headers=api.headers()).json()
    assert Decimal(shown["spent_usd"]) == spent
    override = api.client.post(
        "/v1/budgets/acme/override", json={"until": "2999-01-01T00:00:00Z"}, headers=api.headers(admin)
    )
    assert override.status_code == 200, override.text
    assert _render(api) == 200
    bad = api.client.put(
        "/v1/budgets/acme", json={"amount_usd": "-3", "period": "day"}, headers=api.headers(admin)
    )
    assert bad.status_code == 400


def test_report_and_focus_export_match_the_ledger(make_api: ApiFactory) -> None:
    api = make_api()
    admin = api.new_key("ops", admin=True)
    other = api.new_key("globex")
    assert _render(api) == 200
    assert _render(api, other) == 200
    ledger = Ledger(api.server.engine)
    mine = api.client.get("/v1/costs?by=tenant,model", headers=api.headers()).json()
    assert [row["tenant"] for row in mine["rows"]] == ["acme"]
    assert Decimal(mine["totals"]["allocated_cost_usd"]) == ledger.total(tenant="acme")
    everyone = api.client.get("/v1/costs?by=tenant", headers=api.headers(admin)).json()
    assert sum(Decimal(row["cost_usd"]) for row in everyone["rows"]) == ledger.total()
    assert everyone["rows"][0]["renders"] == 1
    assert api.client.get("/v1/costs?by=colour", headers=api.headers()).status_code == 400
    assert api.client.get("/v1/costs/export/focus", headers=api.headers()).status_code == 403
    export = api.client.get("/v1/costs/export/focus", headers=api.headers(admin))
    assert export.status_code == 200
    assert export.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(export.text)))
    assert sum(Decimal(row["BilledCost"]) for row in rows) == ledger.total()
    assert {row["x_AllocationOf"] for row in rows} == {"machine cost"}


def test_routing_policy_sends_drafts_to_a_cheaper_preset(make_api: ApiFactory) -> None:
    api = make_api()
    admin = api.new_key("acme-admin", admin=True)
    put = api.client.put(
        "/v1/routing?tenant=acme",
        json={"rules": {"draft": {"preset": "lightning", "priority": "batch"}}},
        headers=api.headers(admin),
    )
    assert put.status_code == 200, put.text
    bad = api.client.post("/v1/jobs", json=BODY, headers={**api.headers(), "X-Render-Class": "sketch"})
    assert bad.status_code == 400
    job = api.client.post("/v1/jobs", json=BODY, headers={**api.headers(), "X-Render-Class": "draft"})
    assert job.status_code == 202, job.text
    stored = api.server.services.store.get(job.json()["id"])
    assert stored.request.spec.preset == "lightning"
    assert str(stored.request.priority) == "batch"


def test_render_class_reaches_cost_lines_and_reports(make_api: ApiFactory) -> None:
    api = make_api()
    assert _render(api, **{"X-Render-Class": "review"}) == 200
    report = api.client.get("/v1/costs?by=class", headers=api.headers()).json()
    assert [row["class"] for row in report["rows"]] == ["review"]


def test_an_anomaly_scan_over_centuries_is_refused_not_run(make_api: ApiFactory) -> None:
    api = make_api()
    admin = api.new_key("ops", admin=True)
    response = api.client.get(
        "/v1/costs/anomalies",
        params={"since": "0001-01-01T00:00:00", "until": "9999-01-01T00:00:00Z"},
        headers=api.headers(admin),
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == "since"
