"""A tiny threaded HTTP server for ``/metrics`` and ``/healthz``, beside a process that serves no HTTP.

``rendercost worker --metrics-bind HOST:PORT`` runs one (no uvicorn in a worker), and so does
``rendercost serve`` when ``metrics_bind`` moves the API's ``/metrics`` off the public port. Paths:
``GET /metrics`` (the registry, Prometheus text format), ``GET /healthz`` (the ``health`` callable's
answer: 200 or 503 with a small JSON body; 404 when the server has none). Anything else is 404.
The server threads are daemons; ``close()`` stops it.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Health:
    """A ``/healthz`` answer."""

    healthy: bool
    body: dict[str, Any]


HealthCheck = Callable[[], Health]


def parse_bind(bind: str) -> tuple[str, int]:
    """``"HOST:PORT"`` (``"[::1]:9100"`` for IPv6) to (host, port); ``ValueError`` naming the problem."""
    host, sep, port_text = bind.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValueError(f"bind address {bind!r} is not HOST:PORT")
    return host, int(port_text)


class OpsServer:
    """``/metrics`` and ``/healthz`` on one address, served from daemon threads."""

    def __init__(self, bind: str, registry: CollectorRegistry, health: HealthCheck | None = None) -> None:
        host, port = parse_bind(bind)
        handler = _handler(registry, health)
        self._server = ThreadingHTTPServer((host, port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="ops-http", daemon=True)

    @property
    def port(self) -> int:
        """The port bound (the one asked for, or the one the system chose for port 0)."""
        return int(self._server.server_address[1])

    def start(self) -> OpsServer:
        self._thread.start()
        return self

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


def _handler(registry: CollectorRegistry, health: HealthCheck | None) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._send(200, generate_latest(registry), CONTENT_TYPE_LATEST)
            elif path == "/healthz" and health is not None:
                answer = health()
                self._send(
                    200 if answer.healthy else 503, json.dumps(answer.body).encode(), "application/json"
                )
            else:
                self._send(404, b'{"error": {"code": "not_found"}}', "application/json")

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            logger.debug("ops http: " + format, *args)

    return Handler
