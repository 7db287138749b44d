"""``GET /web/spend``: spend over time for the Costs page, one cost report per time bucket.

Each bucket is ``governance.reports.build_report`` over ``[start, end)``, scoped exactly as
``GET /v1/costs`` is (a tenant's key or session sees its own lines, an admin everyone's or ``tenant=``'s),
so a bucket's ``total_usd`` is what ``GET /v1/costs?since=start&until=end`` calls ``allocated_cost_usd``.
Buckets are UTC hours, days or calendar months, oldest first, the last one holding now.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel

from rendercost.api.deps import Authenticated, blocking, services
from rendercost.domain.money import usd_text
from rendercost.errors import InvalidRequest, NotFound
from rendercost.governance.reports import build_report, parse_dimensions

router = APIRouter(include_in_schema=False)

Bucket = Literal["hour", "day", "month"]
MAX_BUCKETS = 48


class BucketOut(BaseModel):
    start: str  # ISO 8601 UTC
    end: str
    total_usd: str  # allocated (render) cost in the bucket
    groups: dict[str, str]  # "value / value" of the dimensions -> USD


class SeriesOut(BaseModel):
    bucket: str
    by: list[str]
    buckets: list[BucketOut]


@dataclass(frozen=True)
class Window:
    start: datetime
    end: datetime


def _floor(moment: datetime, bucket: Bucket) -> datetime:
    hour = moment.replace(minute=0, second=0, microsecond=0)
    if bucket == "hour":
        return hour
    day = hour.replace(hour=0)
    return day if bucket == "day" else day.replace(day=1)


def _next(start: datetime, bucket: Bucket) -> datetime:
    if bucket == "hour":
        return start + timedelta(hours=1)
    if bucket == "day":
        return start + timedelta(days=1)
    return (
        start.replace(year=start.year + 1, month=1)
        if start.month == 12
        else start.replace(month=start.month + 1)
    )


def _previous(start: datetime, bucket: Bucket) -> datetime:
    if bucket == "month":
        return (
            start.replace(year=start.year - 1, month=12)
            if start.month == 1
            else start.replace(month=start.month - 1)
        )
    return start - (timedelta(hours=1) if bucket == "hour" else timedelta(days=1))


def windows(now: datetime, bucket: Bucket, count: int) -> list[Window]:
    """``count`` consecutive buckets, oldest first, the last one holding ``now``."""
    starts = [_floor(now, bucket)]
    while len(starts) < count:
        starts.append(_previous(starts[-1], bucket))
    return [Window(start, _next(start, bucket)) for start in reversed(starts)]


@router.get("/web/spend", response_model=SeriesOut)
async def spend_series(
    request: Request,
    key: Authenticated,
    bucket: Bucket = "day",
    count: Annotated[int, Query(ge=1, le=MAX_BUCKETS)] = 14,
    by: str | None = None,
    tenant: str | None = None,
) -> SeriesOut:
    """Spend per bucket, grouped ``by`` (tenant, model, preset, stage, class)."""
    governance = services(request).governance
    if governance is None:
        raise NotFound("cost governance is not enabled on this server")
    try:
        dims = parse_dimensions(by)
    except ValueError as exc:
        raise InvalidRequest(str(exc), param="by") from exc
    scope = tenant if key.admin else key.tenant
    engine = governance.engine

    def compute() -> list[BucketOut]:
        out = []
        for window in windows(datetime.now(UTC), bucket, count):
            report = build_report(engine, by=dims, since=window.start, until=window.end, tenant=scope)
            groups: dict[str, Decimal] = {}
            for row in report.rows:
                label = " / ".join(str(value) for value in row.key.values()) or "all"
                groups[label] = groups.get(label, Decimal(0)) + row.cost
            out.append(
                BucketOut(
                    start=window.start.isoformat(),
                    end=window.end.isoformat(),
                    total_usd=usd_text(report.allocated_cost),
                    groups={label: usd_text(cost) for label, cost in groups.items()},
                )
            )
        return out

    return SeriesOut(bucket=bucket, by=list(dims), buckets=await blocking(compute))
