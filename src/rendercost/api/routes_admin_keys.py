"""Key management over HTTP (admin key; any other key gets 403 ``permission_denied``), like LiteLLM's
``/key/generate``, over the same ``auth.keys.KeyStore`` as ``rendercost keys``:

- ``POST /v1/admin/keys`` ``{"tenant", "name"?, "tags"?, "admin"?}``: a new key for the tenant (created
  if new); the answer carries the secret in ``key``, the only time it is ever shown.
- ``GET /v1/admin/keys?tenant=&include_revoked=``: keys, oldest first, never their secrets.
- ``DELETE /v1/admin/keys/{key_id}``: revoke; the key is refused (401) from its next request on.

``name`` is kept as the key's ``name`` tag, so it travels to the key's jobs and cost lines like any tag.
The key store has no expiry: a key lives until it is revoked.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from rendercost.api.deps import RateLimitedKey, blocking, services
from rendercost.api.routes_costs import require_admin
from rendercost.auth.keys import ApiKey, parse_tags
from rendercost.auth.tables import MAX_TENANT_LENGTH

router = APIRouter(tags=["admin"])

NAME_TAG = "name"  # the tag that holds a key's name
MAX_TAGS = 32


class KeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tenant: str = Field(min_length=1, max_length=MAX_TENANT_LENGTH)  # owner of what the key creates
    name: str | None = Field(default=None, min_length=1, max_length=256)  # a label; kept as a tag
    tags: dict[str, str] = Field(default_factory=dict, max_length=MAX_TAGS)  # carried to jobs and lines
    admin: bool = False  # may administer (these routes, every tenant's jobs and costs)


class KeyOut(BaseModel):
    id: str
    object: str = "api_key"
    tenant: str
    name: str | None = None
    prefix: str  # the first characters of the secret, to recognise it
    admin: bool
    active: bool
    tags: dict[str, str]
    created_at: str | None = None  # ISO 8601 UTC
    revoked_at: str | None = None


class CreatedKeyOut(KeyOut):
    key: str  # the secret: shown in this answer only, never again


class KeyList(BaseModel):
    object: str = "list"
    data: list[KeyOut]


def key_view(key: ApiKey) -> KeyOut:
    """What the API shows of a stored key: never its secret or webhook secret."""
    return KeyOut(
        id=key.id,
        tenant=key.tenant,
        name=key.tags.get(NAME_TAG),
        prefix=key.prefix,
        admin=key.admin,
        active=key.active,
        tags=dict(key.tags),
        created_at=key.created_at.isoformat() if key.created_at else None,
        revoked_at=key.revoked_at.isoformat() if key.revoked_at else None,
    )


@router.post("/v1/admin/keys", response_model=CreatedKeyOut, status_code=201)
async def create_key(request: Request, body: KeyCreate, key: RateLimitedKey) -> CreatedKeyOut:
    """Make a key for ``tenant``; the secret is in ``key``, shown this once (admin key)."""
    require_admin(key)
    tags = parse_tags(f"{name}={value}" for name, value in body.tags.items())  # 400 on a bad tag
    if body.name is not None:
        tags[NAME_TAG] = body.name
    keys = services(request).keys
    created = await blocking(lambda: keys.create(body.tenant, tags=tags, admin=body.admin))
    return CreatedKeyOut(**key_view(created.key).model_dump(), key=created.secret)


@router.get("/v1/admin/keys", response_model=KeyList)
async def list_keys(
    request: Request,
    key: RateLimitedKey,
    tenant: Annotated[str | None, Query(max_length=MAX_TENANT_LENGTH)] = None,
    include_revoked: bool = True,
) -> KeyList:
    """Keys, oldest first, optionally one tenant's or only active ones; never a secret (admin key)."""
    require_admin(key)
    keys = services(request).keys
    found = await blocking(lambda: keys.list_keys(tenant=tenant, include_revoked=include_revoked))
    return KeyList(data=[key_view(k) for k in found])


@router.delete("/v1/admin/keys/{key_id}", response_model=KeyOut)
async def revoke_key(request: Request, key_id: str, key: RateLimitedKey) -> KeyOut:
    """Revoke a key: refused from its next request on; revoking twice keeps the first time (admin key)."""
    require_admin(key)
    keys = services(request).keys
    return key_view(await blocking(keys.revoke, key_id))
