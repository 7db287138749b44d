"""A night of product renders, naive against optimized, side by side in one run, through real servers.

Each run is a fleet of one on loopback, as ``deploy/`` runs them: ``rendercost serve --no-worker`` for
the API and one ``rendercost worker`` process (the tiny model on the CPU, SQLite, local artifacts).
Both replay the same seeded night (``bench/savings_workload.py``: products x scenes x lighting, exact
repeats, paraphrases, draft/review/final, three sizes) through the OpenAI door
(``POST /v1/images/generations``, which answers when the images exist), with ``concurrency`` designers
each keeping one request in flight. Nothing beside the renders competes for the worker's GIL, and no
client polls: on this machine the "device" is the CPU, and a worker thread inside the API process, or a
poll loop, slowed the busier (optimized) server's renders by 10-20% (``bench/gil_contention.py``);
``--in-process`` runs each worker as a thread of ``rendercost serve`` instead, and ``--api-nice N``
runs the API processes and the client at niceness N (the workers at 0), closer to a fleet whose
renders have a device of their own.

- **naive**: every request renders with the speed preset, alone (``max_batch_size = 1``), with no
  exact-result, embedding or rewrite cache;
- **optimized**: the server's defaults (caches on, batches of up to 4) plus a routing policy that sends
  drafts to Lightning on batch priority; the default storage lifecycle keeps drafts a day and reviews a
  week as WebP, finals 30 days as PNG (naive: every image 30 days as PNG). Before the night, it renders
  each (preset, size) alone ``--calibration`` times under its own tenant, so the solo references that
  routing and batching savings are measured against exist (not counted in the night).

Both servers run at once, one busy at a time: the night is cut into ``--slices`` slices and each run
replays a slice in turn, so a machine whose speed drifts (cores shared with other work) slows both runs
alike (each worker first renders every size at presets the night never uses, so its first, slower
renders land on no figure); the optimized run also renders the speed preset alone at every size after
each of its slices, so the solo references follow that drift and rest on more than a handful of renders
(the speed means carry every routing and batching saving's total: a routed draft batched on Lightning
saves ``(lightning solo - its share) + (speed solo - lightning solo)``, so the Lightning mean only
splits it between the two mechanisms). Both runs send the same bodies (``preset: speed``, ``rewrite:
true`` with the builtin rewriter, which costs nothing) and the same ``X-Render-Class``. The figures are
the night tenant's ``GET /v1/costs``: cost (allocated, idle excluded), device-seconds, savings by
mechanism; plus wall time and images/s. The check: optimized + every saving recorded = naive, within 5%
(the gap is printed), and the same with the machine taken out (``savings_check.py``: the naive renders
re-timed at the optimized server's solo means, which leaves only what the ledger miscounts).
``--gpu-prices DEVICE`` re-prices the same device-seconds at DEVICE's catalog price (storage unchanged).

Usage: .venv/bin/python bench/savings.py [--requests 400] [--concurrency 8] [--gpu-prices h100]
Default run: about 7 minutes on 2 quiet CPU cores (longer when they are busy).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from rendercost.ledger.catalog import PriceCatalog
from savings_check import SplitCheck, read_solo_table, split_check
from savings_workload import NightRequest, night

ZERO = Decimal(0)
NIGHT_TENANT = "night"
RUNS = ("naive", "optimized")
ROUTING = {"draft": {"preset": "lightning", "priority": "batch"}}
WARM_UP_PRESETS = ("quality", "hyper-sd")  # presets the night never renders (bench: warm_up)
OPTIMIZED_SETTINGS: dict[str, Any] = {}  # the defaults: caches, batches of 4, the storage lifecycle
NAIVE_SETTINGS = {
    "artifact_classes": {},  # no lifecycle: every image kept 30 days as PNG
    "max_batch_size": 1,
    "result_cache_ttl_seconds": 0,
    "embedding_cache_ttl_seconds": 0,
    "rewrite_cache_ttl_seconds": 0,
}
TOLERANCE = Decimal("0.05")


@dataclass
class RunFigures:
    """One run's figures, from its server's ledger and the client's clock."""

    name: str
    requests: int
    wall_s: float
    cost: Decimal
    device_seconds: float
    savings: dict[str, Decimal]
    stage_cost: dict[str, Decimal]
    stage_savings: dict[str, dict[str, Decimal]]
    states: dict[str, int] = field(default_factory=dict)
    calibration_cost: Decimal = ZERO

    @property
    def images_per_s(self) -> float:
        return self.requests / self.wall_s if self.wall_s > 0 else 0.0

    @property
    def saved(self) -> Decimal:
        return sum(self.savings.values(), ZERO)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "requests": self.requests,
            "wall_s": self.wall_s,
            "images_per_s": self.images_per_s,
            "cost_usd": str(self.cost),
            "device_seconds": self.device_seconds,
            "savings_usd": {k: str(v) for k, v in sorted(self.savings.items())},
            "stage_cost_usd": {k: str(v) for k, v in sorted(self.stage_cost.items())},
            "states": self.states,
            "calibration_cost_usd": str(self.calibration_cost),
        }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict) and not value:
        return "{}"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(str(value))


def write_config(folder: Path, model_dir: Path, overrides: dict[str, Any]) -> Path:
    values: dict[str, Any] = {
        "data_dir": folder / "data",
        "min_side": 64,
        "default_size": "64x64",
        "max_queue_depth": 100_000,
        "rate_limit_key_requests_per_minute": 0,
        "rate_limit_tenant_requests_per_minute": 0,
        "rate_limit_key_images_per_minute": 0,
        "rate_limit_tenant_images_per_minute": 0,
        "log_level": "warning",
        **overrides,
    }
    lines = [f"{name} = {toml_value(value)}" for name, value in values.items()]
    lines += ["", "[models.default]", f"source = {toml_value(model_dir)}"]
    path = folder / "rendercost.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def cli(config: Path, *args: str) -> str:
    command = [
        sys.executable,
        "-c",
        "from rendercost.cli import main; main()",
        "--config",
        str(config),
        *args,
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return done.stdout.strip().splitlines()[-1]


class Server:
    """One run's server, stopped with SIGTERM (workers drain): ``rendercost serve --no-worker`` for the
    API and one ``rendercost worker`` process, as a fleet runs them (``in_process``: one ``rendercost
    serve --workers 1``, whose worker thread shares the GIL with the API threads)."""

    def __init__(self, config: Path, log: Path, *, in_process: bool = False, api_nice: int = 0) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        base = [sys.executable, "-c", "from rendercost.cli import main; main()", "--config", str(config)]
        serve = [
            *(["nice", "-n", str(api_nice)] if api_nice and not in_process else []),
            *base,
            "serve",
            "--port",
            str(self.port),
            *(["--workers", "1"] if in_process else ["--no-worker"]),
        ]
        self._log = log.open("w", encoding="utf-8")
        self._processes = [subprocess.Popen(serve, stdout=self._log, stderr=subprocess.STDOUT)]
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if self._processes[0].poll() is not None:
                raise SystemExit(f"the server exited ({self._processes[0].returncode}); see {log}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        else:
            self.stop()
            raise SystemExit(f"the server did not answer in 180 s; see {log}")
        if not in_process:  # started once the API has migrated the database
            worker = [*base, "worker", "--worker-id", f"{log.parent.name}-worker"]
            self._processes.append(subprocess.Popen(worker, stdout=self._log, stderr=subprocess.STDOUT))

    def stop(self) -> None:
        for process in reversed(self._processes):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=120)
                except subprocess.TimeoutExpired:
                    process.kill()
        self._log.close()


def submit_and_wait(client: httpx.Client, key: str, request: NightRequest) -> str:
    """One request of the night through the OpenAI door (``POST /v1/images/generations``), which
    answers once the images exist: ``succeeded``, or the error code of a refused or failed render."""
    headers = {"Authorization": f"Bearer {key}", "X-Render-Class": request.render_class}
    body = {"prompt": request.prompt, "size": request.size, "seed": request.seed, "preset": "speed"}
    response = client.post("/v1/images/generations", json={**body, "rewrite": True}, headers=headers)
    if response.status_code == 200:
        return "succeeded"
    return str(response.json().get("error", {}).get("code", response.status_code))


def replay(
    url: str, key: str, requests: Sequence[NightRequest], concurrency: int
) -> tuple[float, dict[str, int]]:
    """The night through ``concurrency`` clients in request order; wall seconds and final states."""
    states: dict[str, int] = {}
    lock = threading.Lock()
    queue = list(reversed(requests))
    failures: list[BaseException] = []

    def designer() -> None:
        with httpx.Client(base_url=url, timeout=600) as client:
            while True:
                with lock:
                    if not queue or failures:
                        return
                    request = queue.pop()
                try:
                    state = submit_and_wait(client, key, request)
                except (httpx.HTTPError, OSError) as exc:
                    with lock:
                        failures.append(exc)
                    return
                with lock:
                    states[state] = states.get(state, 0) + 1

    start = time.perf_counter()
    threads = [threading.Thread(target=designer) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise SystemExit(f"a request failed: {failures[0]!r}")
    return time.perf_counter() - start, states


def calibrate(url: str, key: str, combos: Sequence[tuple[str, str]], start: int = 0) -> None:
    """Each (preset, size) of ``combos`` rendered alone, in turn, through the same door as the night
    (no polling load beside it): the solo references that routing and batching savings are measured
    against (``start`` keeps prompts and seeds distinct; ``no-store`` keeps them out of the cache)."""
    headers = {"Authorization": f"Bearer {key}", "Cache-Control": "no-store"}
    with httpx.Client(base_url=url, timeout=600) as client:
        for index, (preset, size) in enumerate(combos, start=start):
            body = {"prompt": f"calibration render {index}", "size": size, "seed": index, "preset": preset}
            client.post("/v1/images/generations", json=body, headers=headers).raise_for_status()


def warm_up(url: str, key: str, sizes: Sequence[str]) -> None:
    """A worker's first renders can run 0.5-1.5 s slow here: render each size once, 4 steps, at presets
    the night does not use (``quality``: the speed preset's sampler and guidance; ``hyper-sd``:
    Lightning's shape, a speed LoRA, no guidance), so that cost lands on no reference the check reads
    and on no night render."""
    headers = {"Authorization": f"Bearer {key}", "Cache-Control": "no-store"}
    with httpx.Client(base_url=url, timeout=600) as client:
        for size in sizes:
            for preset in WARM_UP_PRESETS:
                body = {"prompt": "warm-up render", "size": size, "seed": 1, "preset": preset, "steps": 4}
                client.post("/v1/images/generations", json=body, headers=headers).raise_for_status()


def report(url: str, key: str) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {key}"}
    return dict(httpx.get(f"{url}/v1/costs?by=stage", headers=headers, timeout=120).raise_for_status().json())


def figures(
    name: str, requests: int, wall_s: float, states: dict[str, int], shown: dict[str, Any]
) -> RunFigures:
    totals = shown["totals"]
    stage_cost = {row["stage"]: Decimal(row["cost_usd"]) for row in shown["rows"]}
    stage_savings = {
        row["stage"]: {k: Decimal(v) for k, v in row["savings_usd"].items()} for row in shown["rows"]
    }
    return RunFigures(
        name=name,
        requests=requests,
        wall_s=wall_s,
        cost=Decimal(totals["allocated_cost_usd"]),
        device_seconds=float(totals["busy_device_seconds"]),
        savings={k: Decimal(v) for k, v in totals["savings_usd"].items()},
        stage_cost=stage_cost,
        stage_savings=stage_savings,
        states=states,
    )


@dataclass
class Started:
    """One run's config, server and keys, and what it has replayed so far."""

    name: str
    config: Path
    server: Server
    night_key: str
    calibration_key: str
    wall_s: float = 0.0
    states: dict[str, int] = field(default_factory=dict)


def start(name: str, root: Path, model_dir: Path, args: argparse.Namespace) -> Started:
    folder = root / name
    folder.mkdir()
    optimized = name == "optimized"
    config = write_config(folder, model_dir, OPTIMIZED_SETTINGS if optimized else NAIVE_SETTINGS)
    night_key = cli(config, "keys", "create", "--tenant", NIGHT_TENANT)
    admin_key = cli(config, "keys", "create", "--tenant", "ops", "--admin")
    calibration_key = cli(config, "keys", "create", "--tenant", "calibration")
    server = Server(config, folder / "server.log", in_process=args.in_process, api_nice=args.api_nice)
    if optimized:
        put = httpx.put(
            f"{server.url}/v1/routing?tenant={NIGHT_TENANT}",
            json={"rules": ROUTING},
            headers={"Authorization": f"Bearer {admin_key}"},
            timeout=60,
        )
        put.raise_for_status()
    return Started(name, config, server, night_key, calibration_key)


def interleaved(
    runs: Sequence[Started], requests: list[NightRequest], args: argparse.Namespace
) -> list[RunFigures]:
    """The night in ``args.slices`` slices, each replayed by every run in turn (both servers up, one
    busy at a time), so a machine whose speed drifts (shared cores) slows both runs alike. The
    optimized run calibrates before the night and renders the speed preset alone at every size after
    each of its slices (not before: the first render after the other server's slice runs on cold
    caches, 10-15% slower here). Both workers are warmed up first (``warm_up``)."""
    sizes = sorted({r.size for r in requests})
    combos = [(p, size) for size in sizes for p in ("speed", "lightning")]
    asked = [("speed", size) for size in sizes]
    optimized = [run for run in runs if run.name == "optimized"]
    for run in runs:
        warm_up(run.server.url, run.calibration_key, sizes)
    for run in optimized:
        calibrate(run.server.url, run.calibration_key, combos * args.calibration)
    size = -(-len(requests) // args.slices)
    for number, first in enumerate(range(0, len(requests), size)):
        for run in runs:
            wall_s, states = replay(
                run.server.url, run.night_key, requests[first : first + size], args.concurrency
            )
            run.wall_s += wall_s
            for state, count in states.items():
                run.states[state] = run.states.get(state, 0) + count
            if run in optimized:  # right after its slice, warm, as the night's own solo renders are
                start = len(combos) * args.calibration + number * len(asked)
                calibrate(run.server.url, run.calibration_key, asked, start=start)
    found = []
    for run in runs:
        try:
            found.append(
                figures(
                    run.name, len(requests), run.wall_s, run.states, report(run.server.url, run.night_key)
                )
            )
            shown = report(run.server.url, run.calibration_key)
            found[-1].calibration_cost = Decimal(shown["totals"]["allocated_cost_usd"])
        finally:
            run.server.stop()
    return found


def gpu_repriced(found: RunFigures, ratio: Decimal) -> tuple[Decimal, Decimal]:
    """Cost and savings with every device stage's money scaled by ``ratio`` (storage and tokens as they
    were): the same device-seconds at another device's price."""
    fixed = {"storage", "prompt_rewrite"}
    cost = sum((c if s in fixed else c * ratio for s, c in found.stage_cost.items()), ZERO)
    saved = sum(
        (v if s in fixed else v * ratio for s, by in found.stage_savings.items() for v in by.values()), ZERO
    )
    return cost, saved


def share(part: Decimal, whole: Decimal) -> str:
    return f"{float(part / whole) * 100:5.1f}%" if whole else "   -"


def print_split(naive: RunFigures, optimized: RunFigures, split: SplitCheck) -> Decimal:
    """The check with the machine taken out; returns the accounting gap (share of the re-timed naive)."""
    speeds = "  ".join(f"{w}x{h} {ratio:.1%}" for (w, h), ratio in sorted(split.speed_by_size.items()))
    print(f"  naive speed renders / optimized solo means, per size: {speeds}")
    retimed = split.retimed_naive_cost(naive.cost)
    gap = (retimed - optimized.cost - optimized.saved) / retimed if retimed else ZERO
    print(f"  accounting: naive re-timed at those means = {retimed:.10f}  gap {float(gap):+.2%}")
    return gap


def print_figures(
    naive: RunFigures, optimized: RunFigures, split: SplitCheck, gpu: str | None
) -> tuple[Decimal, Decimal]:
    """Both runs side by side; returns the savings check's gap and its accounting gap."""
    print(f"a night of {naive.requests} product renders, tiny model on the CPU, through `rendercost serve`")
    print(f"{'':24}{'naive':>16}{'optimized':>16}{'optimized/naive':>18}")
    rows = (
        ("cost USD", naive.cost, optimized.cost),
        ("device-seconds", naive.device_seconds, optimized.device_seconds),
        ("wall s", naive.wall_s, optimized.wall_s),
        ("images/s", naive.images_per_s, optimized.images_per_s),
    )
    for label, a, b in rows:
        row_ratio = float(b) / float(a) if a else 0.0
        print(f"{label:<24}{float(a):>16.8f}{float(b):>16.8f}{row_ratio:>17.1%}")
    storage = "storage"
    print(
        f"{'storage share of cost':<24}{share(naive.stage_cost.get(storage, ZERO), naive.cost):>16}"
        f"{share(optimized.stage_cost.get(storage, ZERO), optimized.cost):>16}"
    )
    print(f"final states: naive {naive.states}, optimized {optimized.states}")
    print(f"calibration renders (optimized server, not in the night): {optimized.calibration_cost} USD")
    print("savings by mechanism (optimized run, USD, share of the naive cost):")
    for name, value in sorted(optimized.savings.items(), key=lambda item: -item[1]):
        print(f"  {name:<14}{value:>18.10f}  {share(value, naive.cost)}")
    total = optimized.cost + optimized.saved
    gap = (naive.cost - total) / naive.cost if naive.cost else ZERO
    print(f"check: optimized + savings = {total:.10f}  naive = {naive.cost:.10f}  gap {float(gap):+.2%}")
    accounting_gap = print_split(naive, optimized, split)
    if gpu:
        catalog = PriceCatalog.load(None)
        ratio = catalog.device_price(gpu, "on_demand", "us-east-1") / catalog.device_price(
            "cpu", "on_demand", "us-east-1"
        )
        naive_cost, _ = gpu_repriced(naive, ratio)
        opt_cost, opt_saved = gpu_repriced(optimized, ratio)
        print(f"re-priced at {gpu}'s on-demand price ({ratio:.2f}x the cpu's), same device-seconds:")
        print(f"  naive {naive_cost:.8f}  optimized {opt_cost:.8f}  ratio {float(opt_cost / naive_cost):.1%}")
        print(f"  storage share: naive {share(naive.stage_cost.get(storage, ZERO), naive_cost)}"
              f"  optimized {share(optimized.stage_cost.get(storage, ZERO), opt_cost)}")  # fmt: skip
        repriced_gap = (naive_cost - opt_cost - opt_saved) / naive_cost
        print(f"  check: optimized + savings vs naive gap {float(repriced_gap):+.2%}")
    return gap, accounting_gap


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=8, help="designers with a request in flight")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--calibration", type=int, default=2, help="solo renders per (preset, size) first")
    parser.add_argument("--slices", type=int, default=20, help="the night in this many interleaved slices")
    parser.add_argument("--gpu-prices", metavar="DEVICE", default=None)
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    parser.add_argument(
        "--in-process", action="store_true", help="each run's worker as a thread of its API server"
    )
    parser.add_argument(
        "--api-nice",
        type=int,
        default=0,
        help="niceness of the API processes and the client; the workers keep 0 (default: all alike)",
    )
    parser.add_argument(
        "--keep", type=Path, default=None, help="keep both servers' folders (databases, logs) here"
    )
    args = parser.parse_args()
    requests = night(args.requests, args.seed)
    kinds = {kind: sum(1 for r in requests if r.kind == kind) for kind in ("new", "repeat", "paraphrase")}
    classes = {c: sum(1 for r in requests if r.render_class == c) for c in ("draft", "review", "final")}
    print(f"workload (seed {args.seed}): {kinds}, {classes}")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    with tempfile.TemporaryDirectory(prefix="rc-bench-savings-") as tmp:
        root = Path(tmp) if args.keep is None else args.keep
        root.mkdir(parents=True, exist_ok=True)
        from rendercost.execution.models.tiny_model import build_tiny_model

        model_dir = root / "tiny-sdxl"
        build_tiny_model(model_dir)
        runs: list[Started] = []
        try:
            runs = [start(name, root, model_dir, args) for name in RUNS]
            os.nice(args.api_nice)  # the designers too: their requests come from other machines
            naive, optimized = interleaved(runs, requests, args)
        finally:
            for started in runs:
                started.server.stop()
        tables = [read_solo_table(run.config) for run in runs]
    gap, accounting_gap = print_figures(naive, optimized, split_check(*tables), args.gpu_prices)
    if args.json is not None:
        data = {
            "naive": naive.to_dict(),
            "optimized": optimized.to_dict(),
            "gap": str(gap),
            "accounting_gap": str(accounting_gap),
            "kinds": kinds,
        }
        args.json.write_text(json.dumps(data, indent=2), encoding="utf-8")
    if abs(gap) > TOLERANCE:
        print(f"WARNING: the savings and the naive cost differ by more than {TOLERANCE:.0%}")


if __name__ == "__main__":
    main()
