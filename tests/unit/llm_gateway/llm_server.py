"""A scripted OpenAI-/Anthropic-compatible HTTP server on 127.0.0.1, in a thread.

Each route prefix (``/a``, ``/b``, ...) has a queue of actions; a request pops the next (``ok`` when
empty): ``("ok",)`` 200 with usage, ``("429", retry_after)``, ``("500",)``, ``("401",)``, ``("403",)``,
``("hang", seconds)``. Every request is recorded (prefix, key used).
"""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict, deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from rendercost.domain.money import quantize
from rendercost.ledger.catalog import PriceCatalog

INPUT_TOKENS = 21
OUTPUT_TOKENS = 34


@dataclass
class Script:
    actions: dict[str, deque[tuple[Any, ...]]] = field(default_factory=lambda: defaultdict(deque))
    seen: list[tuple[str, str]] = field(default_factory=list)  # (prefix, key)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, prefix: str, *actions: tuple[Any, ...]) -> None:
        with self.lock:
            self.actions[prefix].extend(actions)

    def next(self, prefix: str, key: str) -> tuple[Any, ...]:
        with self.lock:
            self.seen.append((prefix, key))
            queue = self.actions[prefix]
            return queue.popleft() if queue else ("ok",)

    def calls(self, prefix: str) -> list[str]:
        return [key for p, key in self.seen if p == prefix]


def _handler(script: Script) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", "0"))
            body = json.loads(self.rfile.read(length) or b"{}")
            prefix = "/" + self.path.strip("/").split("/")[0]
            key = self.headers.get("x-api-key") or self.headers.get("authorization", "").removeprefix(
                "Bearer "
            )
            action = script.next(prefix, key)
            kind = action[0]
            if kind == "hang":
                time.sleep(action[1])
                return self._send(200, _answer(self.path, body))
            if kind == "ok":
                return self._send(200, _answer(self.path, body))
            headers = {"retry-after": str(action[1])} if kind == "429" else {}
            return self._send(
                int(kind), {"error": {"message": f"scripted {kind}", "type": "scripted"}}, headers
            )

        def _send(self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
            raw = json.dumps(payload).encode()
            try:
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(raw)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(raw)
            except (BrokenPipeError, ConnectionResetError):
                pass

    return Handler


def _answer(path: str, body: dict[str, Any]) -> dict[str, Any]:
    user = body["messages"][-1]["content"]
    text = f"{user}, golden hour, 85mm"
    if path.endswith("/messages"):
        return {
            "type": "message",
            "content": [{"type": "text", "text": text}],
            "usage": {"input_tokens": INPUT_TOKENS, "output_tokens": OUTPUT_TOKENS},
        }
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 0,
        "model": body["model"],
        "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}],
        "usage": {
            "prompt_tokens": INPUT_TOKENS,
            "completion_tokens": OUTPUT_TOKENS,
            "total_tokens": INPUT_TOKENS + OUTPUT_TOKENS,
        },
    }


@dataclass
class LlmServer:
    url: str  # http://127.0.0.1:PORT
    script: Script


def serve() -> Iterator[LlmServer]:
    script = Script()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(script))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield LlmServer(f"http://127.0.0.1:{server.server_address[1]}", script)
    finally:
        server.shutdown()
        server.server_close()


MODEL = "gpt-4o-mini"  # the model the scripted server claims to be (priced in the shipped catalog)
KEY_ENV = "RC_TEST_LLM_KEY"  # environment variable holding the key the providers send


def provider_config(server: LlmServer, prefix: str = "/a") -> dict[str, Any]:
    """An ``llm_providers`` entry for ``server``'s ``prefix``: one attempt, a 2 s timeout."""
    return {
        "name": "local",
        "kind": "openai",
        "model": MODEL,
        "base_url": f"{server.url}{prefix}",
        "keys": {KEY_ENV: 1},
        "timeout_s": 2,
        "max_attempts": 1,
    }


def token_cost() -> Decimal:
    """What one ``ok`` answer (INPUT_TOKENS in, OUTPUT_TOKENS out) costs at the catalog's prices."""
    prices = PriceCatalog.load().token_prices(MODEL)
    million = Decimal(1_000_000)
    return quantize(
        INPUT_TOKENS * prices.input_per_1m / million + OUTPUT_TOKENS * prices.output_per_1m / million
    )
