"""``GET /v1/styles``: the style set every door accepts (``styles`` on POST /v1/jobs and the images API,
``style_selections`` at the Fooocus-API door, ``--style`` in the CLI), with each style's templates."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from rendercost.admission.styles import shipped_styles
from rendercost.api.deps import RateLimitedKey

router = APIRouter(tags=["styles"])


class StyleOut(BaseModel):
    name: str
    prompt: str  # template; "{prompt}" stands for the prompt sent
    negative: str  # words added to the negative prompt
    rewrite: bool  # True: asks the rewrite step to expand the prompt instead of wrapping it


class StyleList(BaseModel):
    object: str = "list"
    data: list[StyleOut]


@router.get("/v1/styles", response_model=StyleList)
async def list_styles(key: RateLimitedKey) -> StyleList:
    """The style set, in its own order."""
    styles = shipped_styles().styles
    return StyleList(
        data=[StyleOut(name=s.name, prompt=s.prompt, negative=s.negative, rewrite=s.rewrite) for s in styles]
    )
