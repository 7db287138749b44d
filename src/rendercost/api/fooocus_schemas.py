"""Fooocus-API v1's HTTP models (mrhan1993/Fooocus-API 0.5.x), written from its documented contract.

Field names, defaults and ranges are Fooocus-API's, so its clients work unchanged; fields rendercost
does not act on (``sharpness``, the refiner, ``advanced_params``) are accepted and reported as ignored.
Answers add a ``rendercost`` object (the receipt, substitutions) that old clients ignore.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from rendercost.api.schemas import MAX_PROMPT_CHARS, RenderCostInfo

DEFAULT_STYLES = ("Fooocus V2", "Fooocus Enhance", "Fooocus Sharp")  # Fooocus-API's defaults
DEFAULT_ASPECT_RATIO = "1152*896"
DEFAULT_BASE_MODEL = "juggernautXL_v8Rundiffusion.safetensors"  # Fooocus' default checkpoint name
IGNORED_FIELDS = ("sharpness", "refiner_model_name", "refiner_switch", "advanced_params")


class Performance(StrEnum):
    """``performance_selection``: each is one rendercost preset (``PRESET_OF``)."""

    SPEED = "Speed"
    QUALITY = "Quality"
    EXTREME_SPEED = "Extreme Speed"
    LIGHTNING = "Lightning"
    HYPER_SD = "Hyper-SD"


PRESET_OF: dict[Performance, str] = {
    Performance.SPEED: "speed",
    Performance.QUALITY: "quality",
    Performance.EXTREME_SPEED: "extreme-speed",
    Performance.LIGHTNING: "lightning",
    Performance.HYPER_SD: "hyper-sd",
}


class FinishReason(StrEnum):
    SUCCESS = "SUCCESS"
    QUEUE_IS_FULL = "QUEUE_IS_FULL"
    USER_CANCEL = "USER_CANCEL"
    ERROR = "ERROR"


class JobStage(StrEnum):
    WAITING = "WAITING"
    RUNNING = "RUNNING"
    SUCCESS = "SUCCESS"
    ERROR = "ERROR"


class TaskType(StrEnum):
    TEXT_2_IMG = "Text to Image"
    NOT_FOUND = "Not Found"


class FooocusLora(BaseModel):
    model_config = ConfigDict(protected_namespaces=(), extra="ignore")

    enabled: bool = True
    model_name: str = Field(max_length=255)  # a file name in a LoRA folder ("None": no LoRA)
    weight: float = Field(default=0.5, ge=-2, le=2)


class Text2ImgRequest(BaseModel):
    """POST /v1/generation/text-to-image."""

    model_config = ConfigDict(protected_namespaces=(), extra="ignore")

    prompt: str = Field(default="", max_length=MAX_PROMPT_CHARS)
    negative_prompt: str = Field(default="", max_length=MAX_PROMPT_CHARS)
    style_selections: list[str] = Field(default_factory=lambda: list(DEFAULT_STYLES), max_length=32)
    performance_selection: Performance = Performance.SPEED
    aspect_ratios_selection: str = Field(default=DEFAULT_ASPECT_RATIO, max_length=32)  # "W*H"
    image_number: int = Field(default=1, ge=1, le=32)  # and at most settings.max_n
    image_seed: int = -1  # -1: random; image i gets seed + i
    sharpness: float = Field(default=2.0, ge=0.0, le=30.0)  # ignored
    guidance_scale: float = Field(default=4.0, ge=1.0, le=30.0)  # Speed/Quality only, as in Fooocus
    base_model_name: str = Field(default=DEFAULT_BASE_MODEL, max_length=255)
    refiner_model_name: str | None = "None"  # ignored
    refiner_switch: float = Field(default=0.5, ge=0.1, le=1.0)  # ignored
    loras: list[FooocusLora] = Field(default_factory=list, max_length=16)
    advanced_params: dict[str, Any] | None = None  # overwrite_step and sampler_name read; the rest ignored
    save_extension: str = Field(default="png", max_length=8)  # png, jpg/jpeg, webp
    require_base64: bool = False
    async_process: bool = False
    webhook_url: str | None = ""


class Substituted(BaseModel):
    """A value Fooocus-API would silently replace, and what rendercost used instead (None: dropped)."""

    field: str
    asked: str
    used: str | None


class FooocusExtra(BaseModel):
    """The ``rendercost`` object on every generation answer."""

    job_id: str | None = None
    cost_usd: str = "0"  # billed so far: the job's (or this image's) receipt total
    receipt: dict[str, Any] | None = None  # this image's receipt (per image) or the job's cost stages
    job: RenderCostInfo | None = None  # the job's cost by stage, once finished
    styles_applied: list[str] = Field(default_factory=list)
    substituted: list[Substituted] = Field(default_factory=list)
    ignored: list[str] = Field(default_factory=list)  # fields sent that rendercost does not act on


class GeneratedImageResult(BaseModel):
    base64: str | None = None
    url: str | None = None
    seed: str = ""
    finish_reason: FinishReason
    rendercost: FooocusExtra | None = None


class AsyncJobResponse(BaseModel):
    job_id: str = ""
    job_type: TaskType = TaskType.TEXT_2_IMG
    job_stage: JobStage
    job_progress: int = 0
    job_status: str | None = None
    job_step_preview: str | None = None
    job_result: list[GeneratedImageResult] | None = None
    rendercost: FooocusExtra | None = None


class JobQueueInfo(BaseModel):
    running_size: int
    finished_size: int
    last_job_id: str | None


class JobHistoryInfo(BaseModel):
    job_id: str
    is_finished: bool = False


class JobHistoryResponse(BaseModel):
    queue: list[JobHistoryInfo] = Field(default_factory=list)
    history: list[JobHistoryInfo] = Field(default_factory=list)


class AllModelNamesResponse(BaseModel):
    model_config = ConfigDict(protected_namespaces=())

    model_filenames: list[str]
    lora_filenames: list[str]


class StopResponse(BaseModel):
    msg: str
    cancelled: list[str] = Field(default_factory=list)  # rendercost: the job ids cancelled
