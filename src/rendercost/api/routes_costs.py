"""Costs and budgets: reports, the FOCUS export, budgets and routing policies.

- ``GET /v1/costs?by=tenant,model&since=&until=``: the cost report. A tenant's key sees only its own
  lines; an admin key sees every tenant's (``tenant=`` narrows it).
- ``GET /v1/costs/export/focus?since=&until=`` (admin): the ledger as FOCUS 1.2 CSV.
- ``GET /v1/costs/anomalies?since=&until=`` (admin): spend anomalies with their top drivers.
- ``GET /v1/budgets`` (admin: all; others: their own and the global one), ``GET /v1/budgets/{scope}``,
  ``PUT /v1/budgets/{scope}`` and ``POST /v1/budgets/{scope}/override`` (admin). ``global`` names the
  budget over every tenant.
- ``GET|PUT /v1/routing`` : the calling tenant's routing policy (PUT needs an admin key;
  ``tenant=`` picks another tenant for admins).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, Field

from rendercost.api.deps import Authenticated, Governance, blocking, services
from rendercost.auth.keys import ApiKey
from rendercost.db.clock import as_utc
from rendercost.errors import InvalidRequest, NotFound, PermissionDenied
from rendercost.governance.anomaly import scan
from rendercost.governance.focus import iter_csv, iter_focus_values
from rendercost.governance.reports import build_report, parse_dimensions
from rendercost.governance.tables import GLOBAL_SCOPE

router = APIRouter(tags=["costs"])


class BudgetIn(BaseModel):
    amount_usd: str = Field(description='USD per period, a decimal string, e.g. "250.00".')
    period: str = Field(description='"day" or "month" (UTC calendar).')


class OverrideIn(BaseModel):
    until: datetime | None = Field(description="Admit past the budget until then (UTC); null ends it.")


class RoutingIn(BaseModel):
    rules: dict[str, dict[str, str]] = Field(
        description='Class -> {"preset": ..., "priority": "interactive"|"batch"}, classes draft|review|final.'
    )


def governance(request: Request) -> Governance:
    found = services(request).governance
    if found is None:
        raise NotFound("cost governance is not enabled on this server")
    return found


def require_admin(key: ApiKey) -> None:
    if not key.admin:
        raise PermissionDenied("this needs an admin key")


def _scope(name: str) -> str:
    return GLOBAL_SCOPE if name in ("global", GLOBAL_SCOPE) else name


def _parse_by(by: str | None) -> tuple[str, ...]:
    try:
        return parse_dimensions(by)
    except ValueError as exc:
        raise InvalidRequest(str(exc), param="by") from exc


@router.get("/v1/costs")
async def cost_report(
    request: Request,
    key: Authenticated,
    by: Annotated[
        str | None, Query(description="Comma-separated: tenant, model, preset, stage, class.")
    ] = None,
    since: datetime | None = None,
    until: datetime | None = None,
    tenant: str | None = None,
) -> dict[str, Any]:
    """The cost report over ``[since, until)``."""
    gov = governance(request)
    dims = _parse_by(by)
    scope = tenant if key.admin else key.tenant
    since, until = _utc_or_none(since), _utc_or_none(until)
    report = await blocking(lambda: build_report(gov.engine, by=dims, since=since, until=until, tenant=scope))
    return report.to_dict()


@router.get("/v1/costs/export/focus", response_class=Response)
async def focus_export(
    request: Request, key: Authenticated, since: datetime | None = None, until: datetime | None = None
) -> Response:
    """FOCUS 1.2 CSV of the ledger (admin key)."""
    require_admin(key)
    gov = governance(request)

    rows = iter_focus_values(gov.engine, _utc_or_none(since), _utc_or_none(until))
    headers = {"Content-Disposition": 'attachment; filename="rendercost-focus.csv"'}
    # streamed: Starlette reads the (blocking) chunk iterator in a worker thread, chunk by chunk
    return StreamingResponse(iter_csv(rows), media_type="text/csv; charset=utf-8", headers=headers)


@router.get("/v1/costs/anomalies")
async def cost_anomalies(
    request: Request, key: Authenticated, since: datetime | None = None, until: datetime | None = None
) -> dict[str, Any]:
    """Anomalous tenant-hours (admin key); default window: the last five weeks."""
    require_admin(key)
    gov = governance(request)
    end = as_utc(until) if until else datetime.now(UTC)
    start = as_utc(since) if since else end - timedelta(weeks=5)
    found = await blocking(lambda: scan(gov.engine, start, end))
    return {"data": [anomaly.to_dict() for anomaly in found]}


@router.get("/v1/budgets")
async def list_budgets(request: Request, key: Authenticated) -> dict[str, Any]:
    gov = governance(request)
    found = await blocking(gov.budgets.list)
    visible = [b for b in found if key.admin or b.scope in (GLOBAL_SCOPE, key.tenant)]
    return {"data": [b.to_dict() for b in visible]}


@router.get("/v1/budgets/{scope}")
async def show_budget(request: Request, key: Authenticated, scope: str) -> dict[str, Any]:
    name = _scope(scope)
    if not key.admin and name not in (GLOBAL_SCOPE, key.tenant):
        raise NotFound(f"no budget for {scope!r}")
    budget = await blocking(governance(request).budgets.get, name)
    return budget.to_dict()


@router.put("/v1/budgets/{scope}")
async def set_budget(request: Request, key: Authenticated, scope: str, body: BudgetIn) -> dict[str, Any]:
    require_admin(key)
    budget = await blocking(governance(request).budgets.set, _scope(scope), body.amount_usd, body.period)
    return budget.to_dict()


@router.post("/v1/budgets/{scope}/override")
async def override_budget(
    request: Request, key: Authenticated, scope: str, body: OverrideIn
) -> dict[str, Any]:
    require_admin(key)
    budget = await blocking(governance(request).budgets.override, _scope(scope), body.until)
    return budget.to_dict()


@router.get("/v1/routing")
async def get_routing(request: Request, key: Authenticated, tenant: str | None = None) -> dict[str, Any]:
    name = tenant if key.admin and tenant else key.tenant
    rules = await blocking(governance(request).routing.get, name)
    return {"tenant": name, "rules": rules}


@router.put("/v1/routing")
async def set_routing(
    request: Request, key: Authenticated, body: RoutingIn, tenant: str | None = None
) -> dict[str, Any]:
    require_admin(key)
    name = tenant or key.tenant
    rules = await blocking(governance(request).routing.set, name, body.rules)
    return {"tenant": name, "rules": rules}


def _utc_or_none(moment: datetime | None) -> datetime | None:
    return as_utc(moment) if moment is not None else None
