"""``rendercost worker --devices all|LIST``: one worker process per device, restarted when one dies.

``Supervisor`` starts one child per device (``rendercost worker --device D`` with the same settings,
priorities and, for ``--metrics-bind HOST:PORT``, port PORT+i for the i-th device), and watches them:
a child that exits non-zero or is killed is started again after a backoff (1 s doubling to 30 s; reset
once a child has run 60 s); a child that exits 0 (a burst run that emptied the queue) is done. On stop
(SIGTERM to the supervisor) every child gets SIGTERM and drains on its own; the supervisor waits for
them and exits 0. On Linux each child also gets SIGTERM when the supervisor dies by any means (SIGKILL
included: ``prctl(PR_SET_PDEATHSIG)``), so no worker outlives it holding leases nobody watches.
"""

from __future__ import annotations

import ctypes
import logging
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

logger = logging.getLogger(__name__)

BACKOFF_START_S = 1.0
BACKOFF_CAP_S = 30.0
HEALTHY_RUN_S = 60.0  # a child that ran this long starts its next backoff from the beginning
POLL_S = 0.2

Command = Callable[[int, str], list[str]]  # (device index, device) -> argv of that device's child
_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def die_with_parent() -> None:
    """In a child between fork and exec (``Popen(preexec_fn=...)``), Linux only: ask the kernel to send
    this process SIGTERM when its parent dies."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")


_PREEXEC = die_with_parent if sys.platform == "linux" else None


def child_command(
    global_args: Sequence[str], worker_args: Sequence[str], metrics_bind: str | None
) -> Command:
    """The argv of device ``index``'s child: this interpreter, ``-m rendercost.cli``, the global
    options, ``worker --device D``, the worker options, and the metrics port shifted by ``index``."""

    def command(index: int, device: str) -> list[str]:
        argv = [
            sys.executable,
            "-m",
            "rendercost.cli",
            *global_args,
            "worker",
            "--device",
            device,
            *worker_args,
        ]
        if metrics_bind is not None:
            host, _, port = metrics_bind.rpartition(":")
            argv += ["--metrics-bind", f"{host}:{int(port) + index}"]
        return argv

    return command


def resolve_devices(text: str) -> list[str]:
    """``"all"``: every CUDA device (``cuda:0``...), else ``["cpu"]``; otherwise the comma list."""
    if text.strip().lower() != "all":
        devices = [part.strip() for part in text.split(",") if part.strip()]
        if not devices:
            raise ValueError("--devices needs 'all' or a comma list such as cuda:0,cuda:1")
        return devices
    import torch  # only to count the GPUs

    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    return [f"cuda:{i}" for i in range(count)] or ["cpu"]


@dataclass
class _Child:
    index: int
    device: str
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    restart_at: float = 0.0
    backoff_s: float = BACKOFF_START_S
    done: bool = False
    restarts: int = 0


@dataclass
class Supervisor:
    """See the module docstring. ``run(stop)`` returns when every child is done or ``stop`` is set and
    every child has exited."""

    devices: Sequence[str]
    command: Command
    monotonic: Callable[[], float] = time.monotonic
    children: list[_Child] = field(default_factory=list)

    def run(self, stop: threading.Event) -> int:
        self.children = [_Child(i, device) for i, device in enumerate(self.devices)]
        try:
            while not stop.is_set() and not all(child.done for child in self.children):
                for child in self.children:
                    self._tend(child)
                stop.wait(POLL_S)
        finally:
            self._stop_all()
        return 0

    def _tend(self, child: _Child) -> None:
        now = self.monotonic()
        if child.done:
            return
        if child.process is None:
            if now >= child.restart_at:
                self._start(child, now)
            return
        code = child.process.poll()
        if code is None:
            return
        child.process = None
        if code == 0:
            child.done = True
            return
        if now - child.started_at >= HEALTHY_RUN_S:
            child.backoff_s = BACKOFF_START_S
        child.restart_at = now + child.backoff_s
        logger.warning(
            "worker for %s exited with %s; restarting in %.1f s",
            child.device,
            code,
            child.backoff_s,
            extra={"fields": {"device": child.device, "exit_code": code}},
        )
        child.backoff_s = min(child.backoff_s * 2, BACKOFF_CAP_S)
        child.restarts += 1

    def _start(self, child: _Child, now: float) -> None:
        argv = self.command(child.index, child.device)
        child.process = subprocess.Popen(  # noqa: S603  (our interpreter and CLI, no shell)
            argv, preexec_fn=_PREEXEC
        )
        child.started_at = now
        logger.info("worker for %s started", child.device, extra={"fields": {"pid": child.process.pid}})

    def _stop_all(self) -> None:
        running = [child.process for child in self.children if child.process is not None]
        for process in running:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in running:
            process.wait()
