"""``POST /v1/plan`` (admin key): the capacity plan, the same JSON document as ``rendercost plan --json``.

Body: ``{"since": ISO time, "until": ISO time, "history_workers": N, "scenarios": [{...}, ...]}``; each
scenario takes the keys of a ``[[scenario]]`` table (``capacity.scenario``). ``since`` defaults to 30
days before ``until``, ``until`` to now. A bad scenario or an empty window is a 400 with its code.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from rendercost.api.deps import Authenticated, blocking, services
from rendercost.capacity.scenario import MAX_WORKERS
from rendercost.db.clock import as_utc
from rendercost.errors import NotFound, PermissionDenied

router = APIRouter(tags=["plan"])

DEFAULT_WINDOW = timedelta(days=30)
MAX_SCENARIOS = 32  # what-ifs per request


class PlanIn(BaseModel):
    since: datetime | None = Field(default=None, description="History start (default: 30 days before until).")
    until: datetime | None = Field(default=None, description="History end (default: now).")
    history_workers: int | None = Field(
        default=None,
        ge=1,
        le=MAX_WORKERS,
        description="Devices the history ran on (default: those whose idle time is metered).",
    )
    scenarios: list[dict[str, Any]] = Field(
        default_factory=list, max_length=MAX_SCENARIOS, description="What-ifs, as [[scenario]] tables."
    )


@router.post("/v1/plan")
async def make_plan(request: Request, key: Authenticated, body: PlanIn) -> dict[str, Any]:
    """The as-is replay of the window and each scenario beside it (admin key)."""
    if not key.admin:
        raise PermissionDenied("this needs an admin key")
    svc = services(request)
    if svc.governance is None:
        raise NotFound("cost governance is not enabled on this server")
    until = as_utc(body.until) if body.until else datetime.now(UTC)
    since = as_utc(body.since) if body.since else until - DEFAULT_WINDOW
    engine, settings = svc.governance.engine, svc.settings

    def plan() -> dict[str, Any]:
        from rendercost.capacity.plan import plan_from_database
        from rendercost.capacity.scenario import scenario_from_mapping
        from rendercost.ledger.catalog import PriceCatalog

        scenarios = [
            scenario_from_mapping(table, default_name=f"scenario-{i + 1}")
            for i, table in enumerate(body.scenarios)
        ]
        catalog = PriceCatalog.load(settings.catalog_path)
        report = plan_from_database(
            engine,
            settings,
            catalog,
            since=since,
            until=until,
            scenarios=scenarios,
            workers=body.history_workers,
        )
        return report.to_dict()

    return await blocking(plan)
