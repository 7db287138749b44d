"""Webhook operations (admin key; other keys get 403 ``permission_denied``):

- ``GET /v1/admin/webhook-secret``: the deployment's signing secret (``webhook_secret``, else the one
  kept in the database), as the ``X-Rendercost-Signature`` HMAC key and in Standard Webhooks ``whsec_``
  form, for receivers of jobs whose key has no secret of its own.
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
from rendercost.auth.signing import standard_secret
from rendercost.errors import NotFound

router = APIRouter(tags=["webhooks"])


@router.get("/v1/admin/webhook-secret")
async def webhook_secret(request: Request, key: RateLimitedKey) -> dict[str, str]:
    """The deployment's webhook signing secret (admin key)."""
    require_admin(key)
    secret = services(request).webhook_secret
    return {"secret": secret, "standard_secret": standard_secret(secret)}


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
