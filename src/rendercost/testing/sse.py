"""Read a server-sent event stream from an httpx response, one event at a time (for tests and
benchmarks that follow ``GET /v1/jobs/{id}/events``)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx


@dataclass(frozen=True)
class Event:
    """One event: its name (``message`` when the server named none) and its data lines joined."""

    event: str
    data: str

    def json(self) -> Any:
        return json.loads(self.data)


def read_events(response: httpx.Response) -> Iterator[Event]:
    """The events of a streaming ``response`` as they arrive (comments such as pings skipped)."""
    name, data = "message", list[str]()
    for line in response.iter_lines():
        if not line:
            if data:
                yield Event(name, "\n".join(data))
            name, data = "message", []
        elif line.startswith(":"):
            continue
        else:
            field, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if field == "event":
                name = value
            elif field == "data":
                data.append(value)
    if data:
        yield Event(name, "\n".join(data))
