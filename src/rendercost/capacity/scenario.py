"""Scenarios: what-ifs to replay, from command-line flags or a TOML file.

A TOML file holds one ``[[scenario]]`` table per scenario::

    [[scenario]]
    name = "l4-spot-lightning-drafts"
    device = "l4"                 # catalog device type (default: the history's)
    pricing = "spot"              # on_demand | spot | reserved | serverless | commitment
    region = "us-east-1"
    workers = 2                   # fixed fleet; or autoscale = true with min_workers / max_workers
    max_batch = 4
    max_wait_ms = 100
    routes = { draft = "lightning" }   # render class -> preset
    caches = true                 # model exact-result and embedding cache hits from repeats
    serverless = "runpod-flex-24gb"    # with pricing = "serverless"
    commit_usd_per_hour = 0.5     # with pricing = "commitment"; commit_discount = 0.37
    latency_goal_s = 30           # p95 queue wait goal: SLO check and workers needed

A key the planner does not know, a bad value or an unknown preset raises ``InvalidRequest``.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from decimal import Decimal
from pathlib import Path
from typing import Any

from rendercost.domain.presets import get_preset
from rendercost.errors import InvalidRequest

PRICING = ("on_demand", "spot", "reserved", "serverless", "commitment")
AS_IS = "as-is"

MAX_WORKERS = 1024  # the largest fleet a scenario (or the history) may name
MAX_BATCH = 256  # the largest batch a scenario may name


@dataclass(frozen=True)
class Scenario:
    """One what-if. ``None`` fields keep what the history did."""

    name: str  # shown in the output
    device: str | None = None  # catalog device type
    pricing: str | None = None  # one of PRICING
    region: str | None = None  # catalog region (None: the server's configured region)
    workers: int | None = None  # fixed fleet size
    autoscale: bool = False  # scale on queue depth instead
    min_workers: int = 0  # autoscale bounds
    max_workers: int = 8
    jobs_per_worker: int = 4  # autoscale target (KEDA's value)
    cold_start_s: float = 30.0  # model load of a new autoscaled worker
    idle_tail_s: float = 120.0  # idle time before an autoscaled worker is removed
    max_batch: int | None = None  # images per call
    max_wait_ms: int | None = None  # batching wait
    routes: Mapping[str, str] = field(default_factory=dict)  # render class -> preset
    caches: bool | None = None  # None: hits as seen in the history; True: modelled from repeats
    serverless: str | None = None  # serverless offer (catalog [serverless])
    interruptions_per_hour: float | None = None  # spot; None: the catalog's advisor band
    commit_usd_per_hour: Decimal = Decimal(0)  # savings-plan commitment
    commit_discount: Decimal = Decimal("0.37")  # its discount off on-demand
    commit_upfront: Decimal = Decimal(0)  # paid once (for the payback months)
    latency_goal_s: float | None = None  # p95 queue-wait goal

    def __post_init__(self) -> None:
        if self.pricing is not None and self.pricing not in PRICING:
            raise InvalidRequest(
                f"scenario {self.name!r}: pricing must be one of {', '.join(PRICING)}", param="pricing"
            )
        if self.pricing == "serverless" and not self.serverless:
            raise InvalidRequest(
                f"scenario {self.name!r}: serverless pricing needs an offer", param="serverless"
            )
        self._check_bounds()
        if self.autoscale and not 0 <= self.min_workers <= self.max_workers:
            raise InvalidRequest(
                f"scenario {self.name!r}: need 0 <= min_workers <= max_workers", param="min_workers"
            )
        for preset in self.routes.values():
            get_preset(preset)

    def _check_bounds(self) -> None:
        """Sizes a replay can simulate in bounded memory and time (a fleet, not a typo's 10^18)."""
        bounds: tuple[tuple[float | None, str, float, float], ...] = (
            (self.workers, "workers", 1, MAX_WORKERS),
            (self.max_batch, "max_batch", 1, MAX_BATCH),
            (self.min_workers, "min_workers", 0, MAX_WORKERS),
            (self.max_workers, "max_workers", 1, MAX_WORKERS),
            (self.jobs_per_worker, "jobs_per_worker", 1, 1_000_000),
            (self.max_wait_ms, "max_wait_ms", 0, 600_000),
            (self.cold_start_s, "cold_start_s", 0, 86_400),
            (self.idle_tail_s, "idle_tail_s", 0, 86_400),
            (self.interruptions_per_hour, "interruptions_per_hour", 0, 60),
            (self.latency_goal_s, "latency_goal_s", 0.001, 86_400),
        )
        for value, what, low, high in bounds:
            if value is not None and not low <= value <= high:
                raise InvalidRequest(
                    f"scenario {self.name!r}: {what} must be between {low:g} and {high:g}", param=what
                )


_NAMES = {f.name for f in fields(Scenario)}
_DECIMALS = {"commit_usd_per_hour", "commit_discount", "commit_upfront"}
_FLOATS = {"cold_start_s", "idle_tail_s", "interruptions_per_hour", "latency_goal_s"}


def scenario_from_mapping(data: Mapping[str, Any], *, default_name: str) -> Scenario:
    """A scenario from a TOML table or a flag set (keys as in the module docstring)."""
    values = dict(data)
    if "device_type" in values:
        values["device"] = values.pop("device_type")
    unknown = set(values) - _NAMES
    if unknown:
        raise InvalidRequest(
            f"unknown scenario keys: {', '.join(sorted(unknown))}; known: {', '.join(sorted(_NAMES))}",
            param="scenario",
        )
    values.setdefault("name", default_name)
    try:
        for key in _DECIMALS & set(values):
            values[key] = Decimal(str(values[key]))
        for key in _FLOATS & set(values):
            values[key] = float(values[key])
        if "routes" in values:
            values["routes"] = {str(k): str(v) for k, v in dict(values["routes"]).items()}
        return Scenario(**values)
    except (TypeError, ValueError, ArithmeticError) as exc:
        raise InvalidRequest(f"scenario {values.get('name')!r}: {exc}", param="scenario") from exc


def load_scenarios(path: Path) -> tuple[Scenario, ...]:
    """The ``[[scenario]]`` tables of the TOML file ``path``."""
    try:
        raw = tomllib.loads(Path(path).read_text("utf-8"))
    except OSError as exc:
        raise InvalidRequest(f"scenario file {path}: {exc.strerror}", param="scenarios") from exc
    except tomllib.TOMLDecodeError as exc:
        raise InvalidRequest(f"scenario file {path} is not valid TOML: {exc}", param="scenarios") from exc
    tables = raw.get("scenario", [])
    if not isinstance(tables, list) or not tables:
        raise InvalidRequest(f"scenario file {path} has no [[scenario]] tables", param="scenarios")
    return tuple(scenario_from_mapping(t, default_name=f"scenario-{i + 1}") for i, t in enumerate(tables))


def parse_routes(text: str) -> dict[str, str]:
    """``"draft=lightning,review=speed"`` as a class -> preset mapping."""
    routes: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, preset = part.partition("=")
        if not sep or not name.strip() or not preset.strip():
            raise InvalidRequest(f"route {part!r} is not CLASS=PRESET", param="route")
        routes[name.strip()] = preset.strip()
    return routes
