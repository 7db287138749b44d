"""Reading a ``rendercost batch`` file: one JSON render spec per line, checked before anything is queued.

Fields (as ``rendercost render`` takes them): ``prompt`` (required), ``negative``, ``preset``, ``size``
("WxH"), ``n``, ``seed`` (omitted or -1: random), ``model``, ``format`` (png, webp, jpeg),
``retention_days`` (how long the images are kept and priced for; default 30, capped). Blank lines
and lines starting with ``#`` are skipped. A bad line becomes a ``BadLine`` with its number and the
reason; the other lines still run.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from rendercost.admission.lifecycle import check_retention
from rendercost.domain.controls import CacheMode, CachePolicy, Retention
from rendercost.domain.presets import DEFAULT_PRESET, get_preset
from rendercost.domain.specs import (
    RANDOM_SEED,
    OutputFormat,
    Priority,
    RenderRequest,
    RenderSpec,
    check_size,
    parse_size,
    resolve_seed,
)
from rendercost.errors import InvalidRequest, UnknownModel
from rendercost.settings import Settings

FIELDS = ("prompt", "negative", "preset", "size", "n", "seed", "model", "format", "retention_days")


@dataclass(frozen=True)
class BatchLine:
    """A line that parsed: what to render and the key that makes re-running it idempotent."""

    number: int  # 1-based line number in the file
    request: RenderRequest  # seeds resolved
    idempotency_key: str  # "batch-" + sha256 of the stripped line


@dataclass(frozen=True)
class BadLine:
    number: int  # 1-based line number in the file
    error: str  # why it was refused


def read_lines(text_lines: Iterable[str], settings: Settings) -> tuple[list[BatchLine], list[BadLine]]:
    """Parse every line; good ones in file order, bad ones with their reasons."""
    good: list[BatchLine] = []
    bad: list[BadLine] = []
    for number, raw in enumerate(text_lines, start=1):
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        try:
            request = parse_line(stripped, settings)
        except InvalidRequest as exc:
            bad.append(BadLine(number, exc.message))
            continue
        key = "batch-" + hashlib.sha256(stripped.encode()).hexdigest()
        good.append(BatchLine(number, request, key))
    return good, bad


def parse_line(line: str, settings: Settings) -> RenderRequest:
    """One line as a batch-priority ``RenderRequest``; ``InvalidRequest`` naming the bad field."""
    try:
        data = json.loads(line)
    except json.JSONDecodeError as exc:
        raise InvalidRequest(f"not valid JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(data, dict):
        raise InvalidRequest("each line must be a JSON object")
    unknown = sorted(set(data) - set(FIELDS))
    if unknown:
        raise InvalidRequest(f"unknown field(s) {', '.join(unknown)}; allowed: {', '.join(FIELDS)}")
    prompt = _text(data, "prompt", None)
    if not prompt.strip():
        raise InvalidRequest("prompt must not be empty", param="prompt")
    preset = get_preset(_text(data, "preset", DEFAULT_PRESET)).name
    width, height = parse_size(_text(data, "size", settings.default_size))
    check_size(width, height, min_side=settings.min_side, max_side=settings.max_side)
    n = _integer(data, "n", 1)
    if not 1 <= n <= settings.max_n:
        raise InvalidRequest(f"n must be between 1 and {settings.max_n}", param="n")
    seed = _integer(data, "seed", RANDOM_SEED)
    spec = RenderSpec(
        prompt=prompt,
        negative_prompt=_text(data, "negative", ""),
        model=_model(_text(data, "model", settings.default_model), settings),
        preset=preset,
        width=width,
        height=height,
        seed=resolve_seed(seed, n),
        output_format=OutputFormat.parse(_text(data, "format", "png")),
    )
    mode = CacheMode.NO_STORE if seed == RANDOM_SEED else CacheMode.DEFAULT  # a random seed is never cached
    days = data.get("retention_days")
    if days is not None:
        days = _integer(data, "retention_days", 0)
        check_retention(days, settings.artifact_max_retention_days)
    retention = Retention(asked_days=days)
    return RenderRequest(
        spec=spec, n=n, priority=Priority.BATCH, cache=CachePolicy(mode), retention=retention
    )


def _text(data: dict[str, Any], name: str, default: str | None) -> str:
    value = data.get(name, default)
    if value is None:
        raise InvalidRequest(f"{name} is required", param=name)
    if not isinstance(value, str):
        raise InvalidRequest(f"{name} must be a string", param=name)
    return value


def _integer(data: dict[str, Any], name: str, default: int) -> int:
    value = data.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidRequest(f"{name} must be an integer", param=name)
    return value


def _model(name: str, settings: Settings) -> str:
    known = {settings.default_model, *settings.models}
    if name not in known:
        raise UnknownModel(f"unknown model {name!r}; configured: {', '.join(sorted(known))}", param="model")
    return name
