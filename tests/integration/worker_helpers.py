"""What the worker and batch-CLI integration tests share: a settings file for a `rendercost` child
process, the environment to run it in, a burst worker that renders what is left, and how often to poll
the database while it works (``rendercost.testing.waiting.wait_until``)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

RENDERCOST = str(Path(sys.executable).parent / "rendercost")  # the console script of this venv
POLL_S = 0.05  # how often tests look at the database while a child works


def write_config(
    path: Path, *, data_dir: Path, model_dir: Path, database_url: str, lease_seconds: float
) -> Path:
    """A TOML settings file: the tiny model as "default", 64 px images allowed, a short lease."""
    path.write_text(
        f'data_dir = "{data_dir}"\n'
        f'database_url = "{database_url}"\n'
        "min_side = 64\n"
        f"lease_seconds = {lease_seconds}\n"
        "retry_backoff_seconds = 0\n"
        "max_wait_ms = 0\n"
        f'\n[models.default]\nsource = "{model_dir}"\n'
    )
    return path


def child_env(tmp_path: Path) -> dict[str, str]:
    """The child's environment: no stray RENDERCOST_* settings, one torch thread, data under tmp_path."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RENDERCOST_")}
    env.update(OMP_NUM_THREADS="1", XDG_DATA_HOME=str(tmp_path / "xdg"), PYTHONUNBUFFERED="1")
    return env


def run_burst_worker(config: Path, env: dict[str, str], worker_id: str = "rescuer") -> None:
    """Run ``rendercost worker --burst`` on ``config`` until the queue is empty; it must exit 0."""
    done = subprocess.run(
        [RENDERCOST, "--config", str(config), "worker", "--burst", "--worker-id", worker_id],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
