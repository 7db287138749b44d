"""Every Prometheus metric rendercost exports, named in this one module.

A ``Metrics`` object owns its own ``CollectorRegistry`` (so tests and several apps in one process never
collide); ``serve`` builds one and hands it to the app and to the in-process workers. Money is a
``Decimal`` everywhere else; it becomes a float only here, at the export boundary, because Prometheus
samples are floats. The ledger stays the book of record.

Queue depth is read from the job store at scrape time (``QueueDepthCollector``), so it is right even
when other processes enqueue or claim. Every registry also carries the process's own metrics
(``process_*``, ``python_info``) and ``rendercost_build_info{version}``; counters export no duplicate
``_created`` series (``disable_created_metrics``, process-wide, on import).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from decimal import Decimal

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from rendercost import __version__
from rendercost.domain.batch import BatchPlan, RenderResult
from rendercost.domain.costs import CostLine
from rendercost.domain.runner import Runner, StepCallback

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
STAGE_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
BATCH_BUCKETS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32)
COST_BUCKETS = (1e-7, 1e-6, 1e-5, 5e-5, 1e-4, 5e-4, 1e-3, 5e-3, 1e-2, 5e-2, 0.1)

DepthReader = Callable[[], Mapping[tuple[str, str], int]]  # (priority, model) -> queued jobs

disable_created_metrics()  # type: ignore[no-untyped-call]  # no `_created` twin of every counter


class Metrics:
    """The metric families; methods record one event each and never raise on odd label values."""

    def __init__(self, registry: CollectorRegistry | None = None, *, component: str = "api") -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        r = self.registry
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        self.build_info = Gauge(
            "rendercost_build_info", "Always 1; the labels say which rendercost this process runs.",
            ["version", "component"], registry=r,
        )  # fmt: skip
        self.build_info.labels(__version__, component).set(1)
        self.http_requests = Counter(
            "rendercost_http_requests", "HTTP requests by route template and status.",
            ["method", "route", "status"], registry=r,
        )  # fmt: skip
        self.http_latency = Histogram(
            "rendercost_http_request_duration_seconds", "HTTP request latency by route template.",
            ["method", "route"], buckets=LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.batch_size = Histogram(
            "rendercost_batch_size", "Images per pipeline call.", ["model"], buckets=BATCH_BUCKETS, registry=r
        )
        self.stage_seconds = Histogram(
            "rendercost_stage_seconds", "Whole-batch device-seconds per pipeline stage.",
            ["stage", "model"], buckets=STAGE_BUCKETS, registry=r,
        )  # fmt: skip
        self.cost_usd = Counter(
            "rendercost_cost_usd", "USD billed, by tenant, model, preset and stage.",
            ["tenant", "model", "preset", "stage"], registry=r,
        )  # fmt: skip
        self.render_cost = Histogram(
            "rendercost_render_cost_usd", "USD billed per image (all stages).",
            ["model", "preset"], buckets=COST_BUCKETS, registry=r,
        )  # fmt: skip
        self.cache_hits = Counter(
            "rendercost_cache_hits", "Cache hits (result, embedding, rewrite).", ["cache"], registry=r
        )
        self.cache_lookups = Counter(
            "rendercost_cache_lookups", "Cache lookups by cache and outcome (hit rate = hit / all).",
            ["cache", "outcome"], registry=r,
        )  # fmt: skip
        self.jobs_finished = Counter(
            "rendercost_jobs_finished", "Jobs that reached a terminal state in this process.", ["state"],
            registry=r,
        )  # fmt: skip
        self.rate_limited = Counter(
            "rendercost_rate_limited", "Requests refused by a rate limit.", ["scope"], registry=r
        )
        self.webhooks = Counter(
            "rendercost_webhook_deliveries", "Webhook deliveries by outcome.", ["outcome"], registry=r
        )

    def watch_worker(self, worker_id: str, held: Callable[[], int], draining: Callable[[], bool]) -> None:
        """Export a worker's jobs held and whether it is draining, read at each scrape."""
        held_jobs = Gauge(
            "rendercost_worker_held_jobs", "Jobs this worker holds (claimed, not settled).", ["worker"],
            registry=self.registry,
        )  # fmt: skip
        held_jobs.labels(worker_id).set_function(lambda: float(held()))
        drain = Gauge(
            "rendercost_worker_draining", "1 while this worker drains (SIGTERM), else 0.", ["worker"],
            registry=self.registry,
        )  # fmt: skip
        drain.labels(worker_id).set_function(lambda: 1.0 if draining() else 0.0)

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        self.http_requests.labels(method, route, str(status)).inc()
        self.http_latency.labels(method, route).observe(seconds)

    def observe_batch(self, model: str, size: int, stage_seconds: Mapping[str, float]) -> None:
        """One pipeline call: its size and the whole batch's seconds per stage."""
        self.batch_size.labels(model).observe(size)
        for stage, seconds in stage_seconds.items():
            self.stage_seconds.labels(str(stage), model).observe(seconds)

    def observe_settled(self, tenant: str, model: str, preset: str, lines: Iterable[CostLine]) -> None:
        """A settled job's cost lines: per-stage USD, per-image USD and cache hits (lines whose
        ``details["cache"]`` names a cache)."""
        per_image: dict[int, Decimal] = {}
        for line in lines:
            cost = line.cost
            self.cost_usd.labels(tenant, model, preset, str(line.stage)).inc(float(cost))
            index = line.image_index
            if index >= 0:
                per_image[index] = per_image.get(index, Decimal(0)) + cost
            cache = line.details.get("cache")
            if isinstance(cache, str) and cache:
                self.cache_hits.labels(cache).inc()
        for cost in per_image.values():
            self.render_cost.labels(model, preset).observe(float(cost))

    def observe_cache_hit(self, cache: str) -> None:
        self.cache_hits.labels(cache).inc()

    def observe_cache_lookup(self, cache: str, hit: bool) -> None:
        """One lookup of ``cache`` ("result", "embedding", "rewrite"): the hit-rate metric."""
        self.cache_lookups.labels(cache, "hit" if hit else "miss").inc()

    def watch_queue(self, read_depth: DepthReader) -> None:
        """Export ``rendercost_queue_depth{priority,model}`` read from ``read_depth`` at each scrape."""
        self.registry.register(QueueDepthCollector(read_depth))

    def exposition(self) -> bytes:
        """The text format served at /metrics."""
        return generate_latest(self.registry)


class QueueDepthCollector(Collector):
    """Reads queue depth at scrape time; a failing read exports nothing rather than failing the scrape."""

    def __init__(self, read_depth: DepthReader) -> None:
        self._read_depth = read_depth

    def describe(self) -> Iterable[GaugeMetricFamily]:
        return [GaugeMetricFamily("rendercost_queue_depth", "Queued jobs by priority and model.")]

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "rendercost_queue_depth", "Queued jobs by priority and model.", labels=["priority", "model"]
        )
        try:
            depth = self._read_depth()
        except Exception:  # a scrape must not fail because the database blinked
            depth = {}
        for (priority, model), count in sorted(depth.items()):
            family.add_metric([str(priority), model], count)
        yield family


class MeteredRunner:
    """A ``Runner`` that records each pipeline call's batch size and whole-batch stage seconds."""

    def __init__(self, runner: Runner, metrics: Metrics) -> None:
        self._runner = runner
        self._metrics = metrics

    def run(self, plan: BatchPlan, on_step: StepCallback | None = None) -> RenderResult:
        result = self._runner.run(plan, on_step)
        model = plan.items[0].spec.model if plan.items else ""
        self._metrics.observe_batch(model, plan.size, {str(k): v for k, v in result.stage_seconds.items()})
        return result
