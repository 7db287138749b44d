"""Spend over time for the Costs page: buckets, and each bucket equal to the cost report's window."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

from rendercost.testing.waiting import wait_for_job
from rendercost.web.series import windows
from tests.unit.api.conftest import ApiFactory


def test_buckets_are_contiguous_and_the_last_holds_now() -> None:
    now = datetime(2026, 1, 15, 10, 30, tzinfo=UTC)
    hours = windows(now, "hour", 24)
    assert len(hours) == 24 and hours[-1].start == datetime(2026, 1, 15, 10, tzinfo=UTC)
    assert all(a.end == b.start for a, b in itertools.pairwise(hours))
    months = windows(now, "month", 3)
    assert [w.start.month for w in months] == [11, 12, 1]
    assert months[0].start.year == 2025 and months[-1].end == datetime(2026, 2, 1, tzinfo=UTC)
    days = windows(now, "day", 2)
    assert days[0].start == datetime(2026, 1, 14, tzinfo=UTC) and days[-1].start <= now < days[-1].end


def test_a_bucket_is_the_cost_report_of_its_window_and_a_tenant_sees_only_its_own(
    make_api: ApiFactory,
) -> None:
    api = make_api()
    other = api.new_key("globex")
    for key in (api.key, other):
        job = api.client.post("/v1/jobs", json={"prompt": "a fox", "size": "64x64"}, headers=api.headers(key))
        job_id = job.json()["id"]
        wait_for_job(lambda job_id=job_id: api.server.services.store.get(job_id), what=job_id, timeout_s=20)
    series = api.client.get(
        "/web/spend", params={"bucket": "day", "count": 2, "by": "tenant"}, headers=api.headers()
    )
    assert series.status_code == 200, series.text
    today = series.json()["buckets"][-1]
    report = api.client.get(
        "/v1/costs", params={"since": today["start"], "until": today["end"]}, headers=api.headers()
    ).json()
    assert today["total_usd"] == report["totals"]["allocated_cost_usd"]
    assert list(today["groups"]) == ["acme"]
    admin = api.new_key("ops", admin=True)
    every = api.client.get("/web/spend", params={"count": 1, "by": "tenant"}, headers=api.headers(admin))
    assert sorted(every.json()["buckets"][-1]["groups"]) == ["acme", "globex"]
    bad = api.client.get("/web/spend", params={"by": "colour"}, headers=api.headers())
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "by"
