"""``GET /v1/models``: the configured image models in OpenAI's list shape, so OpenAI-style clients and
UIs (``client.models.list()``) find the names to send as ``model``. ``created`` is 0: a configured
model has no creation time."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel

from rendercost.api.deps import RateLimitedKey, blocking, services

router = APIRouter(tags=["models"])

OWNER = "rendercost"


class ModelOut(BaseModel):
    id: str  # a configured model name
    object: Literal["model"] = "model"
    created: int = 0  # unix seconds
    owned_by: str = OWNER


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelOut]


@router.get("/v1/models", response_model=ModelList)
async def list_models(request: Request, key: RateLimitedKey) -> ModelList:
    """The configured models, default first, then by name."""
    svc = services(request)
    names = await blocking(svc.catalog.names)
    default = svc.settings.default_model
    ordered = sorted(names, key=lambda name: (name != default, name))
    return ModelList(data=[ModelOut(id=name) for name in ordered])
