"""A mixed workload rendered through the public jobs API (``POST /v1/jobs``), for planner tests.

``MIXED``: presets, sizes, image counts, render classes and exact repeats (same prompt, seed, preset,
size and n as an earlier request). ``render(client, headers, items, pace_s)`` submits them in order,
``pace_s`` apart (the simulated arrival times), and waits for every job to finish.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, Protocol

CLASS_HEADER = "X-Render-Class"


class Client(Protocol):
    def post(self, url: str, *, json: Any = ..., headers: Any = ...) -> Any: ...
    def get(self, url: str, *, headers: Any = ...) -> Any: ...


def _item(prompt: str, preset: str, size: str, n: int, seed: int, render_class: str) -> dict[str, Any]:
    return {"prompt": prompt, "preset": preset, "size": size, "n": n, "seed": seed, "class": render_class}


MIXED: tuple[dict[str, Any], ...] = (
    _item("a lighthouse at dusk", "speed", "64x64", 1, 1, "draft"),
    _item("a red fox in snow", "speed", "128x128", 2, 2, "final"),
    _item("a teapot, studio light", "speed", "64x64", 1, 3, "draft"),
    _item("a city in the rain", "speed", "96x64", 1, 4, "review"),
    _item("a lighthouse at dusk", "speed", "64x64", 1, 5, "draft"),
    _item("an owl on a branch", "speed", "128x128", 1, 6, "final"),
    _item("a teapot, studio light", "speed", "64x64", 1, 3, "draft"),  # repeat of #3
    _item("a bowl of cherries", "speed", "64x64", 2, 7, "draft"),
    _item("a red fox in snow", "speed", "128x128", 2, 2, "final"),  # repeat of #2
    _item("a glass of water", "speed", "96x64", 1, 8, "review"),
    _item("mountains at dawn", "speed", "64x64", 1, 9, "draft"),
    _item("a lighthouse at dusk", "speed", "64x64", 1, 1, "draft"),  # repeat of #1
    _item("a sailing boat", "speed", "128x128", 1, 10, "final"),
    _item("a bowl of cherries", "speed", "64x64", 2, 7, "draft"),  # repeat of #8
    _item("a paper crane", "speed", "64x64", 1, 11, "draft"),
    _item("a city in the rain", "speed", "96x64", 1, 12, "review"),
)


def render(
    client: Client,
    headers: dict[str, str],
    items: Sequence[dict[str, Any]],
    *,
    pace_s: float,
    wait: bool = True,
) -> list[str]:
    """Submit ``items`` ``pace_s`` apart; wait for every job (unless ``wait=False``); return their ids."""
    ids: list[str] = []
    for item in items:
        body = {k: v for k, v in item.items() if k != "class"}
        extra = {CLASS_HEADER: item["class"]} if item.get("class") else {}
        response = client.post("/v1/jobs", json=body, headers={**headers, **extra})
        assert response.status_code in (200, 202), response.text
        ids.append(response.json()["id"])
        time.sleep(pace_s)
    for job_id in ids if wait else ():
        wait_done(client, headers, job_id)
    return ids


def wait_done(client: Client, headers: dict[str, str], job_id: str, timeout_s: float = 120) -> dict[str, Any]:
    """Poll ``job_id`` until it finished; assert it succeeded. A 503 or 429 (the server busy: a loaded
    CI machine) is waited out as its ``Retry-After`` says; any other answer fails with its body."""
    deadline = time.monotonic() + timeout_s
    delay = 0.02
    while time.monotonic() < deadline:
        response = client.get(f"/v1/jobs/{job_id}", headers=headers)
        if response.status_code in (429, 503):
            time.sleep(float(response.headers.get("Retry-After", "1")))
            continue
        assert response.status_code == 200, (response.status_code, response.text)
        job: dict[str, Any] = response.json()
        if job["state"] in ("succeeded", "failed", "cancelled"):
            assert job["state"] == "succeeded", job
            return job
        time.sleep(delay)
        delay = min(delay * 1.5, 0.5)  # a tight poll loop beside a render slows the render it times
    raise AssertionError(f"job {job_id} did not finish")
