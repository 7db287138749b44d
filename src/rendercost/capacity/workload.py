"""What the planner replays: a workload of arrivals, read from the history or from a JSONL file.

A workload file has one JSON object per line::

    {"at": 12.5, "preset": "speed", "size": "1024x1024", "n": 2, "class": "draft",
     "priority": "batch", "prompt": "a red fox", "seed": 7}

``at`` is seconds after the window's start (or an ISO-8601 time; the first arrival then starts the
window). ``preset``, ``size`` and ``n`` are required; ``class``, ``priority``, ``model``, ``prompt``,
``seed`` are optional. Repeats of (model, preset, size, n, prompt, seed) with a seed are exact-result
cache hits when the scenario turns caches on (see ``capacity.caching``). A bad line raises
``InvalidRequest`` naming its line number.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from rendercost.domain.presets import get_preset
from rendercost.domain.specs import Priority, parse_size
from rendercost.errors import InvalidRequest, UnknownPreset


@dataclass(frozen=True)
class Arrival:
    """One request as the planner sees it."""

    at_s: float  # seconds after the window start when it arrived
    preset: str  # preset it ran with (after routing)
    width: int  # pixels
    height: int  # pixels
    n: int  # images
    render_class: str = ""  # draft | review | final, "" when the request named none
    priority: Priority = Priority.INTERACTIVE  # planning class
    model: str = "default"  # model name
    prompt: str = ""  # prompt, for modelling exact-result cache repeats ("" = unknown)
    seed: int | None = None  # seed, None when random or unknown
    result_hit: bool = False  # history: answered from the exact-result cache (never rendered)
    embedding_hit: bool = False  # history: text embeddings came from the embedding cache

    @property
    def pixels(self) -> int:
        return self.width * self.height

    @property
    def repeat_key(self) -> tuple[object, ...] | None:
        """What makes a later arrival an exact repeat of this one; None when it cannot repeat."""
        if self.seed is None or not self.prompt:
            return None
        return (self.model, self.preset, self.width, self.height, self.n, self.prompt, self.seed)


@dataclass(frozen=True)
class Workload:
    """Arrivals in time order over a window of ``span_s`` seconds."""

    arrivals: tuple[Arrival, ...]  # sorted by at_s
    span_s: float  # window length in seconds (>= the last arrival)
    source: str  # "ledger <since>..<until>" or "file <path>"
    start: datetime | None = None  # wall-clock start of the window, when known
    observed_cache: bool = False  # arrivals carry the cache hits the history saw (a file's do not)

    @property
    def images(self) -> int:
        return sum(a.n for a in self.arrivals)


def load_jsonl(path: Path, *, span_s: float | None = None) -> Workload:
    """The workload in the JSONL file ``path``; ``span_s`` defaults to the last arrival's time."""
    try:
        lines = Path(path).read_text("utf-8").splitlines()
    except OSError as exc:
        raise InvalidRequest(f"workload file {path}: {exc.strerror}", param="workload") from exc
    raw = [(number, line) for number, line in enumerate(lines, 1) if line.strip()]
    parsed = [_parse_line(line, number, path) for number, line in raw]
    times = [at for at, _ in parsed]
    origin = min((t for t in times if isinstance(t, datetime)), default=None)
    arrivals = sorted(
        (Arrival(at_s=_offset(at, origin), **fields) for at, fields in parsed), key=lambda a: a.at_s
    )
    if not arrivals:
        raise InvalidRequest(f"workload file {path} has no arrivals", param="workload")
    last = arrivals[-1].at_s
    return Workload(
        arrivals=tuple(arrivals),
        span_s=max(span_s or 0.0, last, 1.0),
        source=f"file {path}",
        start=origin,
    )


def _offset(at: float | datetime, origin: datetime | None) -> float:
    if isinstance(at, datetime):
        assert origin is not None  # noqa: S101  set whenever one arrival is a datetime
        return (at - origin).total_seconds()
    return at


def _parse_line(line: str, number: int, path: Path) -> tuple[float | datetime, dict[str, Any]]:
    where = f"workload file {path} line {number}"
    try:
        item = json.loads(line)
    except json.JSONDecodeError as exc:
        raise InvalidRequest(f"{where}: not JSON ({exc.msg})", param="workload") from exc
    if not isinstance(item, dict):
        raise InvalidRequest(f"{where}: expected a JSON object", param="workload")
    try:
        return _at(item.get("at"), where), _fields(item)
    except (KeyError, TypeError, ValueError, UnknownPreset, InvalidRequest) as exc:
        raise InvalidRequest(f"{where}: {_reason(exc)}", param="workload") from exc


def _fields(item: dict[str, Any]) -> dict[str, Any]:
    preset = str(item["preset"])
    get_preset(preset)
    width, height = parse_size(str(item["size"]))
    n = int(item.get("n", 1))
    if n < 1:
        raise ValueError("n must be >= 1")
    seed = item.get("seed")
    return {
        "preset": preset,
        "width": width,
        "height": height,
        "n": n,
        "render_class": str(item.get("class", "")),
        "priority": Priority(str(item.get("priority", "interactive"))),
        "model": str(item.get("model", "default")),
        "prompt": str(item.get("prompt", "")),
        "seed": None if seed is None or int(seed) < 0 else int(seed),
    }


def _at(value: Any, where: str) -> float | datetime:
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        return float(value)
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            pass
        else:
            if moment.tzinfo is None:
                raise ValueError(f"time {value!r} has no time zone")
            return moment
    raise ValueError(f"'at' must be seconds >= 0 or an ISO-8601 time, got {value!r}")


def _reason(exc: Exception) -> str:
    if isinstance(exc, KeyError):
        return f"missing field {exc.args[0]!r}"
    return str(getattr(exc, "message", None) or exc)
