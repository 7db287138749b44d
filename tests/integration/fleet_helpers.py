"""What the fleet test starts: a shared settings file, API server and worker processes, a webhook
receiver that checks Standard Webhooks signatures as they arrive, and a pool of API keys."""

from __future__ import annotations

import itertools
import json
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from rendercost.api.threaded_server import uvicorn_thread
from rendercost.auth.keys import KeyStore
from rendercost.auth.signing import verify_standard
from rendercost.testing.waiting import wait_until
from tests.integration.worker_helpers import RENDERCOST

KEY_LIMIT_PER_MINUTE = 30  # requests per API key; tenant limits are off, so each key counts alone


def fleet_config(path: Path, *, model_dir: Path, database_url: str, redis_url: str, bucket: str) -> Path:
    """One settings file for every process: PostgreSQL, Redis, the bucket, short leases, no drain."""
    path.write_text(
        f'database_url = "{database_url}"\n'
        f'redis_url = "{redis_url}"\n'
        f'artifacts_url = "s3://{bucket}/fleet"\n'
        "min_side = 64\n"
        'default_size = "64x64"\n'
        "lease_seconds = 5\n"
        "retry_backoff_seconds = 0\n"
        "max_wait_ms = 50\n"  # batches fill while jobs arrive
        "worker_drain_seconds = 0\n"
        f"rate_limit_key_requests_per_minute = {KEY_LIMIT_PER_MINUTE}\n"
        "rate_limit_tenant_requests_per_minute = 0\n"
        "rate_limit_key_images_per_minute = 0\n"
        "rate_limit_tenant_images_per_minute = 0\n"
        "rate_limit_fail_open = false\n"
        'webhook_allowed_hosts = ["127.0.0.1"]\n'
        "webhook_backoff_base_s = 0.2\n"
        f'\n[models.default]\nsource = "{model_dir}"\n'
    )
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Processes:
    """Every child the fleet started; all killed at the end, whatever happened."""

    env: dict[str, str]
    config: Path
    workdir: Path
    children: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def api_server(self, name: str) -> str:
        port = free_port()
        argv = [RENDERCOST, "--config", str(self.config), "--data-dir", str(self.workdir / name)]
        self._start([*argv, "serve", "--no-worker", "--port", str(port)], name)
        url = f"http://127.0.0.1:{port}"
        wait_until(
            lambda: _answers(f"{url}/healthz"), what=f"API server {name}", timeout_s=300, interval_s=0.2
        )
        return url

    def worker(self, name: str) -> subprocess.Popen[bytes]:
        argv = [RENDERCOST, "--config", str(self.config), "--data-dir", str(self.workdir / name)]
        return self._start([*argv, "worker", "--worker-id", name], name)

    def _start(self, argv: list[str], name: str) -> subprocess.Popen[bytes]:
        log = (self.workdir / f"{name}.log").open("wb")
        process = subprocess.Popen(argv, env=self.env, cwd=self.workdir, stdout=log, stderr=subprocess.STDOUT)
        self.children.append(process)
        return process

    def stop_all(self) -> None:
        for process in self.children:
            if process.poll() is None:
                process.kill()
        for process in self.children:
            process.wait(timeout=30)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@dataclass
class Delivery:
    webhook_id: str
    job_id: str
    state: str
    signed: bool


@dataclass
class Receiver:
    """Webhook POSTs as received; ``secret`` (set before any arrives) checks each signature then."""

    url: str
    secret: str = ""
    deliveries: list[Delivery] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


@contextmanager
def webhook_receiver() -> Iterator[Receiver]:
    holder: list[Receiver] = []

    async def hook(request: Request) -> Response:
        body = await request.body()
        receiver = holder[0]
        headers = {name.lower(): value for name, value in request.headers.items()}
        signed = verify_standard(receiver.secret, headers, body, now=time.time())
        job = json.loads(body)["data"]  # {"type": "job.succeeded", "created": ..., "data": the job}
        with receiver.lock:
            receiver.deliveries.append(
                Delivery(headers.get("webhook-id", ""), job["id"], job["state"], signed)
            )
        return Response(status_code=204)

    app = Starlette(routes=[Route("/hook", hook, methods=["POST"])])
    with uvicorn_thread(app) as url:  # type: ignore[arg-type]
        holder.append(Receiver(f"{url}/hook"))
        yield holder[0]


class KeyPool:
    """Many keys per tenant, used in turn, so no key nears the per-key limit while the fleet works."""

    def __init__(self, keys: KeyStore, tenants: list[str], per_tenant: int) -> None:
        self._cycles = {
            t: itertools.cycle([keys.create(t).secret for _ in range(per_tenant)]) for t in tenants
        }
        self._lock = threading.Lock()

    def headers(self, tenant: str) -> dict[str, str]:
        with self._lock:
            return {"Authorization": f"Bearer {next(self._cycles[tenant])}"}
