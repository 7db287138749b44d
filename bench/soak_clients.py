"""The soak's clients: each thread loops over a weighted mix of actions against the real server.

Every HTTP call is recorded (kind, status or transport error, start and end) in one ``Tally``; what a
client was told about jobs (ids, states, the cost it was quoted) is kept for the audit. A client has at
most one request in flight and waits for its own async job, so the queue stays bounded by the clients.

Actions: ``render`` (sync, a new seed), ``repeat`` (sync, a seed rendered before: a cache hit),
``job`` (async: submit, then poll until it is finished), ``cancel`` (submit, cancel at once),
``budget`` (a tenant over its budget: 402), ``hostile`` (bad bodies that must be refused with a 4xx).
After an async job, the other tenant asks for it and must get 404 (``peek``).
"""

from __future__ import annotations

import itertools
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import httpx

PRESET = "lightning"  # 4 steps: the most renders per second on a small machine
SIZE = "64x64"
POLL_S = 0.2
JOB_WAIT_S = 180.0  # a client stops polling its job after this (the audit still checks it)
REQUEST_TIMEOUT_S = 150.0  # above the server's images_wait_timeout_s (120 s)
BACKOFF_S = 0.5  # after a transport error, or a 503 without Retry-After
MAX_RETRY_AFTER_S = 5.0
TERMINAL = frozenset({"succeeded", "failed", "cancelled"})


@dataclass(frozen=True)
class Call:
    """One HTTP call as a client saw it; ``status`` 0 is a transport error (refused, reset, timeout)."""

    kind: str
    status: int
    started: float  # time.monotonic()
    ended: float


@dataclass
class Tally:
    """What every client saw, shared by all of them (one lock)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    calls: list[Call] = field(default_factory=list)
    latency: dict[str, list[float]] = field(default_factory=lambda: {"cache_hit": [], "render": []})
    quoted: dict[str, Decimal] = field(default_factory=dict)  # job id -> cost the client was told
    seen_state: dict[str, str] = field(default_factory=dict)  # job id -> last state the client saw
    hit_ids: set[str] = field(default_factory=set)  # ids of cache answers (no job row)
    rendered: list[dict[str, Any]] = field(default_factory=list)  # bodies that rendered (to repeat)
    notes: Counter[str] = field(default_factory=Counter)  # e.g. "repeat missed the cache"

    def record(self, call: Call) -> None:
        with self.lock:
            self.calls.append(call)

    def outcomes(self) -> Counter[str]:
        with self.lock:
            return Counter(f"{c.kind} {c.status or 'transport-error'}" for c in self.calls)


def _seconds(retry_after: str | None) -> float:
    try:
        return float(retry_after) if retry_after is not None else BACKOFF_S
    except ValueError:  # an HTTP date: this server sends seconds, so just back off
        return BACKOFF_S


_seeds = itertools.count(1)
_seed_lock = threading.Lock()


def new_seed() -> int:
    with _seed_lock:
        return next(_seeds)


class Client:
    """One client thread's actions over one ``httpx.Client``."""

    def __init__(self, base_url: str, keys: dict[str, str], tally: Tally, rng: random.Random) -> None:
        self.http = httpx.Client(base_url=base_url, timeout=REQUEST_TIMEOUT_S)
        self.keys, self.tally, self.rng = keys, tally, rng
        self.tenant = rng.choice(("soak-a", "soak-b"))

    def call(
        self, kind: str, method: str, path: str, *, tenant: str | None = None, **kw: Any
    ) -> httpx.Response | None:
        headers = dict(kw.pop("headers", {}))
        if tenant != "":
            headers.setdefault("Authorization", f"Bearer {self.keys[tenant or self.tenant]}")
        started = time.monotonic()
        try:
            response = self.http.request(method, path, headers=headers, **kw)
        except httpx.TransportError:
            self.tally.record(Call(kind, 0, started, time.monotonic()))
            time.sleep(BACKOFF_S)  # the server is restarting: do not spin on refused connections
            return None
        self.tally.record(Call(kind, response.status_code, started, time.monotonic()))
        if response.status_code in (429, 503):  # as a polite client does: wait as long as asked
            time.sleep(min(MAX_RETRY_AFTER_S, _seconds(response.headers.get("Retry-After"))))
        return response

    def body(self, **extra: Any) -> dict[str, Any]:
        return {
            "prompt": f"a soak test lamp {self.rng.randrange(1000)}",
            "preset": PRESET,
            "size": SIZE,
            **extra,
        }

    def render(self) -> None:
        self._sync(self.body(seed=new_seed()), repeat=False)

    def repeat(self) -> None:
        with self.tally.lock:
            body = self.rng.choice(self.tally.rendered) if self.tally.rendered else None
        if body is None:
            return self.render()
        self._sync(body, repeat=True)

    def _sync(self, body: dict[str, Any], *, repeat: bool) -> None:
        started = time.monotonic()
        response = self.call("repeat" if repeat else "render", "POST", "/v1/images/generations", json=body)
        if response is None or response.status_code != 200:
            return
        info = response.json()["rendercost"]
        hit = info["cache"]["result"] == "hit"
        with self.tally.lock:
            self.tally.latency["cache_hit" if hit else "render"].append(time.monotonic() - started)
            if hit:
                self.tally.hit_ids.add(info["job_id"])
            else:
                self.tally.quoted[info["job_id"]] = Decimal(info["cost_usd"])
                self.tally.seen_state[info["job_id"]] = "succeeded"
                self.tally.rendered.append(body)
            if repeat and not hit:
                self.tally.notes[
                    "a repeat rendered again (its first render's cache entry was not stored)"
                ] += 1

    def job(self) -> None:
        job_id = self._submit(
            "job", self.body(seed=new_seed(), priority=self.rng.choice(("interactive", "batch")))
        )
        if job_id is not None:
            self._poll(job_id)
            self._peek(job_id)

    def _peek(self, job_id: str) -> None:
        """The other tenant asks for this job: it must not exist for them (404)."""
        other = "soak-b" if self.tenant == "soak-a" else "soak-a"
        response = self.call("peek", "GET", f"/v1/jobs/{job_id}", tenant=other)
        if response is not None and response.status_code != 404 and response.status_code < 500:
            with self.tally.lock:
                self.tally.notes[f"TENANT LEAK: another tenant's job -> {response.status_code}"] += 1

    def cancel(self) -> None:
        job_id = self._submit("cancel-submit", self.body(seed=new_seed(), priority="batch"))
        if job_id is None:
            return
        response = self.call("cancel", "DELETE", f"/v1/jobs/{job_id}")
        if response is not None and response.status_code == 200:
            self._saw(job_id, response.json())
        elif response is not None and response.status_code == 409:
            self._poll(job_id)  # it finished first

    def budget(self) -> None:
        job_id = self._submit("budget", self.body(seed=new_seed()), tenant="poor")
        if job_id is not None:  # admitted while under the budget: a job like any other
            self._poll(job_id, tenant="poor")

    def _submit(self, kind: str, body: dict[str, Any], *, tenant: str | None = None) -> str | None:
        response = self.call(kind, "POST", "/v1/jobs", json=body, tenant=tenant)
        if response is None or response.status_code != 202:
            return None
        document = response.json()
        self._saw(document["id"], document)
        return str(document["id"])

    def _poll(self, job_id: str, *, tenant: str | None = None) -> None:
        deadline = time.monotonic() + JOB_WAIT_S
        while time.monotonic() < deadline:
            response = self.call("poll", "GET", f"/v1/jobs/{job_id}", tenant=tenant)
            if response is not None and response.status_code == 200:
                document = response.json()
                self._saw(job_id, document)
                if document["state"] in TERMINAL:
                    return
            time.sleep(POLL_S)

    def _saw(self, job_id: str, document: dict[str, Any]) -> None:
        with self.tally.lock:
            self.tally.seen_state[job_id] = document["state"]
            receipt = document.get("receipt")
            if document["state"] == "succeeded" and receipt is not None:
                self.tally.quoted[job_id] = Decimal(receipt["total_usd"])

    def hostile(self) -> None:
        kind, method, path, kw = self.rng.choice(HOSTILE)
        response = self.call(f"hostile {kind}", method, path, **kw)
        if response is not None and response.status_code < 400:
            with self.tally.lock:
                self.tally.notes[f"HOSTILE ACCEPTED: {kind} -> {response.status_code}"] += 1

    def close(self) -> None:
        self.http.close()


_GOOD = {"prompt": "a hostile lamp", "preset": PRESET, "size": SIZE}
HOSTILE: list[tuple[str, str, str, dict[str, Any]]] = [
    ("oversized", "POST", "/v1/jobs", {"json": {**_GOOD, "prompt": "x" * (3 << 19)}}),
    ("wrong-types", "POST", "/v1/jobs", {"json": {**_GOOD, "n": "three", "seed": "x"}}),
    ("prompt-not-text", "POST", "/v1/images/generations", {"json": {**_GOOD, "prompt": ["a", 1]}}),
    ("bad-size", "POST", "/v1/jobs", {"json": {**_GOOD, "size": "65x64"}}),
    ("huge-size", "POST", "/v1/images/generations", {"json": {**_GOOD, "size": "99999x99999"}}),
    ("size-not-wxh", "POST", "/v1/jobs", {"json": {**_GOOD, "size": "big"}}),
    ("unknown-field", "POST", "/v1/jobs", {"json": {**_GOOD, "colour": "red"}}),
    ("too-many", "POST", "/v1/jobs", {"json": {**_GOOD, "n": 10_000}}),
    ("bad-seed", "POST", "/v1/jobs", {"json": {**_GOOD, "seed": -7}}),
    ("bad-preset", "POST", "/v1/jobs", {"json": {**_GOOD, "preset": "turbo"}}),
    (
        "not-json",
        "POST",
        "/v1/jobs",
        {"content": b"{not json", "headers": {"Content-Type": "application/json"}},
    ),
    ("not-an-object", "POST", "/v1/images/generations", {"json": [1, 2, 3]}),
    ("no-key", "POST", "/v1/jobs", {"json": _GOOD, "tenant": ""}),
    ("bad-key", "POST", "/v1/jobs", {"json": _GOOD, "headers": {"Authorization": "Bearer rc_nope"}}),
    ("unknown-job", "DELETE", "/v1/jobs/job_doesnotexist", {}),
]

WEIGHTS: dict[str, int] = {"render": 25, "repeat": 20, "job": 20, "cancel": 10, "budget": 5, "hostile": 20}


def client_loop(client: Client, go_on: Callable[[], bool]) -> None:
    """Run ``client``'s weighted actions while ``go_on()`` (the run's clock and request count)."""
    actions = {name: getattr(client, name) for name in WEIGHTS}
    names, weights = list(WEIGHTS), list(WEIGHTS.values())
    try:
        while go_on():
            actions[client.rng.choices(names, weights)[0]]()
    finally:
        client.close()
