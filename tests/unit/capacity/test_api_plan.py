"""``POST /v1/plan`` over the real app: admin only, the same document as the CLI, 400 on bad input."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.unit.api.conftest import ApiFactory
from tests.unit.capacity.workloads import MIXED, render


def test_post_plan_returns_the_plan_for_admins_only(make_api: ApiFactory) -> None:
    api = make_api(max_batch_size=1)
    admin = {"Authorization": f"Bearer {api.server.admin_key.secret}"}  # type: ignore[union-attr]
    since = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
    render(api.client, admin, MIXED[:6], pace_s=0.0)
    body = {
        "since": since,
        "scenarios": [
            {"name": "l4 spot", "device": "l4", "pricing": "spot", "routes": {"draft": "lightning"}},
            {
                "name": "runpod",
                "pricing": "serverless",
                "serverless": "runpod-flex-24gb",
                "latency_goal_s": 30,
            },
        ],
    }
    response = api.client.post("/v1/plan", json=body, headers=admin)
    assert response.status_code == 200, response.text
    plan = response.json()
    assert plan["baseline"]["name"] == "as-is" and abs(plan["backtest"]["error"]) < 0.001
    assert [s["name"] for s in plan["scenarios"]] == ["l4 spot", "runpod"]
    assert plan["scenarios"][1]["workers_needed"]["keda"]["trigger"] == "postgresql"

    assert api.client.post("/v1/plan", json=body, headers=api.headers()).status_code == 403
    bad = api.client.post("/v1/plan", json={"scenarios": [{"pricing": "free"}]}, headers=admin)
    assert bad.status_code == 400 and "pricing must be one of" in bad.json()["error"]["message"]
    empty = api.client.post("/v1/plan", json={"until": "2020-01-01T00:00:00Z"}, headers=admin)
    assert empty.status_code == 400 and "no succeeded jobs" in empty.json()["error"]["message"]
