"""Webhook operations (admin key; other keys get 403 ``permission_denied``):

- ``GET /v1/admin/webhooks/{job_id}``: where the job's webhook stands (state, attempts, next attempt,
  last error); 404 when the job asked for none.
- ``POST /v1/admin/webhooks/{job_id}/redeliver``: back to pending, due now, with a fresh retry schedule
  (also a delivered or failed one; receivers deduplicate on ``webhook-id``); 404 when there is none.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from rendercost.api.deps import RateLimitedKey, blocking, services
from rendercost.api.routes_costs import require_admin
from rendercost.errors import NotFound

router = APIRouter(tags=["webhooks"])


@router.get("/v1/admin/webhooks/{job_id}")
async def webhook_status(request: Request, key: RateLimitedKey, job_id: str) -> dict[str, Any]:
    """The job's webhook delivery (admin key)."""
    require_admin(key)
    found = await blocking(services(request).outbox.status, job_id)
    if found is None:
        raise NotFound(f"no webhook delivery for job {job_id!r}", param="job_id")
    return found.to_dict()


@router.post("/v1/admin/webhooks/{job_id}/redeliver")
async def redeliver_webhook(request: Request, key: RateLimitedKey, job_id: str) -> dict[str, Any]:
    """Send the job's webhook again now, on a fresh retry schedule (admin key)."""
    require_admin(key)
    status = await blocking(services(request).outbox.redeliver, job_id)
    return status.to_dict()
