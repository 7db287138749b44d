"""HTTP models (pydantic): what clients send and what they get back. They stay in api/; routes turn
them into domain types (``RenderRequest``) and back, so no HTTP model crosses a boundary."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from rendercost.domain.specs import MAX_SEED

MAX_PROMPT_CHARS = 10_000  # a hard cap on the raw text; token limits are checked by the runner
Quality = Literal["auto", "low", "medium", "high", "standard", "hd"]
ImageFormat = Literal["png", "jpeg", "webp"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _check_http_url(value: str | None) -> str | None:
    if value is not None and not value.startswith(("http://", "https://")):
        raise ValueError("must be an http:// or https:// URL")
    return value


# ---- OpenAI-compatible images -------------------------------------------------------------------


class ImageGenerationRequest(BaseModel):
    """POST /v1/images/generations: OpenAI's fields, plus optional ``preset`` and ``seed`` (rendercost
    extensions, sent with the SDK's ``extra_body``). Unknown OpenAI fields are accepted and ignored."""

    model_config = ConfigDict(extra="ignore")

    prompt: str = Field(min_length=1, max_length=MAX_PROMPT_CHARS)
    model: str | None = None  # OpenAI names map to the default model; configured names are used as is
    n: int | None = Field(default=None, ge=1)  # 1..settings.max_n
    size: str | None = None  # "WxH" or "auto"; OpenAI sizes map to SDXL sizes
    quality: Quality | None = None  # maps to a preset
    response_format: Literal["url", "b64_json"] | None = None  # default url
    output_format: ImageFormat | None = None  # default: the render class's format, else png
    style: str | None = Field(default=None, max_length=200)  # a style name (free text accepted)
    user: str | None = Field(default=None, max_length=200)  # end-user id, kept on the job
    preset: str | None = None  # rendercost: overrides quality
    seed: int | None = Field(default=None, ge=0, le=MAX_SEED)  # rendercost: first image's seed
    rewrite: bool | None = None  # rendercost: rewrite the prompt (LLM chain, builtin fallback) first
    retention_days: int | None = None  # rendercost: keep the images this long (default: the class's)
    styles: list[str] = Field(
        default_factory=list, max_length=16
    )  # rendercost: style set names (GET /v1/styles)
    steps: int | None = None  # rendercost: denoising steps (1..settings.max_steps); default: the preset's
    guidance_scale: float | None = None  # rendercost: CFG (0..settings.max_guidance_scale)
    sampler: str | None = None  # rendercost: dpmpp_2m_sde_karras, dpmpp_2m, euler_a, euler, ddim, lcm


class ImageData(BaseModel):
    b64_json: str | None = None
    url: str | None = None
    revised_prompt: str | None = None


class StageCost(BaseModel):
    stage: str  # see domain.costs.Stage
    device_seconds: float  # summed over the job's images
    cost_usd: str  # decimal string


class CacheInfo(BaseModel):
    result: str = "off"  # "hit", "miss" or "off"
    embedding: str = "off"
    rewrite: str = "off"


class RewriteInfo(BaseModel):
    """Who rewrote the prompt, and what it used; ``fallback`` is true when every configured provider
    failed and the builtin rewriter stepped in."""

    provider: str  # provider name, or "builtin"
    model: str  # LLM model, or "builtin"
    input_tokens: int
    output_tokens: int
    fallback: bool
    dropped: str | None = None  # why the rewrite was not used (the original prompt rendered)


class RenderCostInfo(BaseModel):
    """What a render cost, attached to image responses and job results."""

    job_id: str
    cost_usd: str  # decimal string, exact sum of the stages
    stages: list[StageCost]
    cache: CacheInfo
    rewrite: RewriteInfo | None = Field(default=None, exclude_if=lambda value: value is None)  # if rewritten


class ImagesResponse(BaseModel):
    created: int  # unix seconds
    data: list[ImageData]
    rendercost: RenderCostInfo


# ---- jobs ---------------------------------------------------------------------------------------


class LoraIn(_Strict):
    name: str = Field(min_length=1, max_length=200)  # file stem in a configured LoRA folder
    weight: float = Field(default=1.0, ge=-4.0, le=4.0)


class JobRequest(_Strict):
    """POST /v1/jobs: the full render spec."""

    prompt: str = Field(min_length=1, max_length=MAX_PROMPT_CHARS)
    negative_prompt: str = Field(default="", max_length=MAX_PROMPT_CHARS)
    model: str | None = None  # configured model name; default: settings.default_model
    preset: str | None = None  # quality, speed, extreme-speed, lightning, hyper-sd; default speed
    styles: list[str] = Field(default_factory=list, max_length=16)  # style set names (GET /v1/styles)
    seed: int | None = Field(default=None, ge=-1, le=MAX_SEED)  # None or -1: random
    steps: int | None = None  # denoising steps (1..settings.max_steps); default: the preset's
    guidance_scale: float | None = None  # CFG scale (0..settings.max_guidance_scale); default: the preset's
    sampler: str | None = None  # dpmpp_2m_sde_karras, dpmpp_2m, euler_a, euler, ddim, lcm
    rewrite: bool | None = None  # rewrite the prompt first (LLM chain, builtin fallback): admission.rewrite
    n: int = Field(default=1, ge=1)  # 1..settings.max_n
    size: str | None = None  # "WxH" or "auto"
    loras: list[LoraIn] = Field(default_factory=list, max_length=8)
    priority: Literal["interactive", "batch"] = "interactive"
    webhook_url: str | None = Field(default=None, max_length=2000)  # POSTed when the job finishes
    output_format: ImageFormat | None = None  # default: the render class's format, else png
    user: str | None = Field(default=None, max_length=200)
    retention_days: int | None = None  # keep the images this long (default: the class's); priced for it

    _url = field_validator("webhook_url")(_check_http_url)


class ImageRef(BaseModel):
    id: str  # GET /v1/images/{id}
    index: int
    url: str
    media_type: str
    seed: int | None = None
    receipt: dict[str, Any] | None = None  # this image's cost lines


class JobOut(BaseModel):
    id: str
    object: Literal["job"] = "job"
    state: str  # queued, running, succeeded, failed, cancelled
    priority: str
    model: str
    preset: str
    n: int
    created_at: str  # ISO 8601 UTC
    updated_at: str
    started_at: str | None = None
    finished_at: str | None = None
    queue_position: int | None = None  # 1-based, while queued
    progress: float  # 0..1
    eta_seconds: float | None = None  # an estimate, when one can be made
    attempts: int
    error: str | None = None
    webhook_url: str | None = None
    request: dict[str, Any]  # the render request as stored
    results: list[ImageRef] = Field(default_factory=list)
    receipt: dict[str, Any] | None = None  # all cost lines of the job and their total
    rendercost: RenderCostInfo | None = None  # when succeeded


class JobList(BaseModel):
    object: Literal["list"] = "list"
    data: list[JobOut]
    has_more: bool
    next_before: str | None = None  # pass as ?before= for the next (older) page


class QueueDepth(BaseModel):
    priority: str
    model: str
    queued: int


class QueueOut(BaseModel):
    total: int
    depth: list[QueueDepth]
    max_queue_depth: int


class ImageMeta(BaseModel):
    id: str
    job_id: str
    index: int
    media_type: str
    seed: int | None = None
    size_bytes: int | None = None
    url: str  # GET /v1/images/{id}, or a presigned GET of the stored object (artifacts_presign_seconds)
    url_expires_at: str | None = None  # ISO 8601 UTC, when url is presigned
    receipt: dict[str, Any] | None = None


class Health(BaseModel):
    status: str  # "ok" or "unavailable"
    checks: dict[str, str] = Field(default_factory=dict)  # name -> "ok" or the failure
