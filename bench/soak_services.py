"""The soak's processes: a restartable throwaway PostgreSQL and a ``rendercost serve`` child.

PostgreSQL starts the way ``tests/fixtures/databases.py`` starts it (its helpers: the binaries, running
as ``postgres`` when root, a free loopback port, trust auth, fsync off) but stays on one data folder and
port so it can be stopped (``-m immediate``: a crash, not a clean shutdown) and started again mid-run.
The server is the real console script with its settings in a TOML file; it can be SIGKILLed and
started again on the same port, and reports its resident set size from ``/proc``.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # run as a script: tests.fixtures is the repository's

from tests.fixtures.databases import (  # noqa: E402  after the path above
    PG_START_TIMEOUT_S,
    _as_postgres,
    _find_pg_bin,
    _free_port,
    _install_postgresql,
)

RENDERCOST = str(Path(sys.executable).parent / "rendercost")  # the console script of this venv
READY_TIMEOUT_S = 600.0  # a cold start loads torch and the model; a loaded machine is slow
POLL_S = 0.25


class Postgres:
    """A throwaway PostgreSQL on 127.0.0.1 that can be restarted on the same data and port."""

    def __init__(self) -> None:
        self.pg_bin = _find_pg_bin() or _install_postgresql()
        self.workdir = Path(tempfile.mkdtemp(prefix="rendercost-soak-pg-"))
        if os.geteuid() == 0:
            shutil.chown(self.workdir, user="postgres", group="postgres")
        self.data = self.workdir / "pg"
        self.port = _free_port()
        subprocess.run(
            _as_postgres(str(self.pg_bin / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres"),
            check=True,
            capture_output=True,
        )

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _ctl(self, *args: str) -> None:
        pg_ctl = str(self.pg_bin / "pg_ctl")
        subprocess.run(_as_postgres(pg_ctl, "-D", str(self.data), *args), check=True, capture_output=True)

    def start(self) -> None:
        """Start and wait until it accepts connections."""
        options = f"-p {self.port} -k {self.workdir} -c listen_addresses=127.0.0.1 -c fsync=off"
        log = str(self.workdir / "log")
        self._ctl("-o", options, "-l", log, "-w", "-t", str(PG_START_TIMEOUT_S), "start")

    def crash(self) -> None:
        """Stop at once (``immediate``: no checkpoint, clients cut off), as a crash would."""
        self._ctl("-m", "immediate", "-w", "stop")

    def close(self) -> None:
        subprocess.run(
            _as_postgres(str(self.pg_bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop"),
            capture_output=True,
        )
        shutil.rmtree(self.workdir, ignore_errors=True)


def write_config(path: Path, *, data_dir: Path, model_dir: Path, database_url: str, port: int) -> Path:
    """The server's settings: the tiny model at 64 px, short leases (a killed server's jobs come back
    within seconds), no rate limits (the soak measures faults, not throttling), one torch thread."""
    path.write_text(
        f'data_dir = "{data_dir}"\n'
        f'database_url = "{database_url}"\n'
        'host = "127.0.0.1"\n'
        f"port = {port}\n"
        "min_side = 64\n"
        'default_size = "64x64"\n'
        "lease_seconds = 5.0\n"
        "retry_backoff_seconds = 0.5\n"
        "max_wait_ms = 20\n"
        "images_wait_timeout_s = 120.0\n"
        "torch_threads = 1\n"
        "rate_limit_key_requests_per_minute = 0\n"
        "rate_limit_tenant_requests_per_minute = 0\n"
        "rate_limit_key_images_per_minute = 0\n"
        "rate_limit_tenant_images_per_minute = 0\n"
        'webhook_secret = "soak-webhook-secret"\n'
        f'\n[models.default]\nsource = "{model_dir}"\n'
    )
    return path


def child_env() -> dict[str, str]:
    """No stray RENDERCOST_* settings (the TOML file says everything), one thread per math library."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RENDERCOST_")}
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    return env


class Server:
    """``rendercost serve`` with ``workers`` in-process workers; output appended to ``log_path``."""

    def __init__(self, config: Path, port: int, log_path: Path, *, workers: int) -> None:
        self.config, self.port, self.log_path, self.workers = config, port, log_path, workers
        self.url = f"http://127.0.0.1:{port}"
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> float:
        """Start it and wait for ``/readyz``; the monotonic time it became ready."""
        argv = [RENDERCOST, "--config", str(self.config), "serve", "--workers", str(self.workers)]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(argv, env=child_env(), stdout=log, stderr=subprocess.STDOUT)
        self.starts += 1
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited with {self.process.returncode}; see {self.log_path}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=5).status_code == 200:
                    return time.monotonic()
            except httpx.TransportError:
                pass
            time.sleep(POLL_S)
        raise RuntimeError(f"the server was not ready in {READY_TIMEOUT_S:.0f} s; see {self.log_path}")

    def kill(self) -> None:
        """SIGKILL: no drain, no cleanup, leases left to expire."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=30)

    def stop(self) -> None:
        """SIGTERM (uvicorn shuts down, the workers drain), SIGKILL after a minute."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.kill()

    def rss_bytes(self) -> int | None:
        """Resident set size of the running server, or None when it is not running."""
        if self.process is None or self.process.poll() is not None:
            return None
        try:
            status = Path(f"/proc/{self.process.pid}/status").read_text()
        except OSError:
            return None
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        return None


def create_key(config: Path, tenant: str) -> str:
    """A new API key of ``tenant`` (``rendercost keys create``: the secret is the last line)."""
    done = subprocess.run(
        [RENDERCOST, "--config", str(config), "keys", "create", "--tenant", tenant],
        env=child_env(),
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip().splitlines()[-1]
