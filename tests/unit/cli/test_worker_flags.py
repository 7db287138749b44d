"""`rendercost worker`'s flags: bad input is one readable line and exit 2, before anything starts;
the supervisor's child command lines."""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rendercost.cli import app
from rendercost.cli.worker_supervisor import Supervisor, child_command, resolve_devices
from rendercost.testing.waiting import wait_until


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--priorities", "urgent"], "--priorities: unknown priority urgent"),
        (["--priorities", ""], "--priorities: no priorities given"),
        (["--device", "gpu0"], "unknown device 'gpu0'"),
        (["--devices", "cpu,tpu"], "unknown device 'tpu'"),
        (["--device", "cpu", "--devices", "cpu,cpu"], "not both"),
        (["--metrics-bind", "nowhere"], "worker_metrics_bind"),
    ],
)
def test_bad_flags_exit_2_with_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    result = CliRunner().invoke(app, ["--data-dir", str(tmp_path), "worker", *args])
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "rendercost.db").exists()  # nothing was started


def test_each_device_gets_its_own_child_and_metrics_port() -> None:
    command = child_command(["--config", "c.toml"], ["--priorities", "batch"], "0.0.0.0:9100")
    assert command(0, "cuda:0") == [
        sys.executable, "-m", "rendercost.cli", "--config", "c.toml", "worker", "--device", "cuda:0",
        "--priorities", "batch", "--metrics-bind", "0.0.0.0:9100",
    ]  # fmt: skip
    assert command(3, "cuda:3")[-1] == "0.0.0.0:9103"
    assert "--metrics-bind" not in child_command([], [], None)(1, "cpu")


def test_a_device_list_is_taken_as_given() -> None:
    assert resolve_devices("cpu, cpu") == ["cpu", "cpu"]
    with pytest.raises(ValueError, match="--devices needs"):
        resolve_devices(" , ")


def test_a_child_that_dies_is_restarted_and_one_that_finishes_is_not(tmp_path: Path) -> None:
    """Device 0's child crashes (exit 3) on its first start and finishes on its second; device 1's
    finishes at once. The supervisor returns once both are done, having restarted only device 0."""
    script = (
        "import pathlib, sys\n"
        "marker = pathlib.Path(sys.argv[1])\n"
        "if sys.argv[2] == '0' and not marker.exists():\n"
        "    marker.touch(); sys.exit(3)\n"
    )

    def command(index: int, _device: str) -> list[str]:
        return [sys.executable, "-c", script, str(tmp_path / f"started-{index}"), str(index)]

    supervisor = Supervisor(["cpu", "cpu"], command)
    assert supervisor.run(threading.Event()) == 0
    assert [child.restarts for child in supervisor.children] == [1, 0]
    assert all(child.done for child in supervisor.children)
    assert (tmp_path / "started-0").exists() and not (tmp_path / "started-1").exists()


def test_stopping_the_supervisor_stops_its_children(tmp_path: Path) -> None:
    stop = threading.Event()

    def command(_index: int, _device: str) -> list[str]:
        return [sys.executable, "-c", "import time; time.sleep(600)"]

    supervisor = Supervisor(["cpu"], command)
    runner = threading.Thread(target=supervisor.run, args=(stop,))
    runner.start()
    wait_until(lambda: supervisor.children and supervisor.children[0].process, what="the child started")
    process = supervisor.children[0].process
    assert process is not None
    stop.set()
    runner.join(timeout=60)
    assert process.returncode == -signal.SIGTERM


@pytest.mark.skipif(sys.platform != "linux", reason="PR_SET_PDEATHSIG is Linux's")
def test_a_supervisor_killed_by_sigkill_takes_its_children_with_it(tmp_path: Path) -> None:
    """The supervisor (its own process here) is SIGKILLed, so it cannot forward anything: the kernel
    sends each child SIGTERM (prctl PR_SET_PDEATHSIG), and the child, a sleeper, is gone."""
    import subprocess

    import psutil

    pid_file = tmp_path / "child.pid"
    child = (
        "import os, pathlib, time\n"
        f"pathlib.Path({str(pid_file)!r}).write_text(str(os.getpid()))\n"
        "time.sleep(600)\n"
    )
    supervising = (
        "import sys, threading\n"
        "from rendercost.cli.worker_supervisor import Supervisor\n"
        f"Supervisor(['cpu'], lambda i, d: [sys.executable, '-c', {child!r}]).run(threading.Event())\n"
    )
    supervisor = subprocess.Popen([sys.executable, "-c", supervising])
    try:
        wait_until(lambda: pid_file.exists() and pid_file.read_text().strip(), what="the child started")
        child_pid = int(pid_file.read_text())
        supervisor.send_signal(signal.SIGKILL)
        supervisor.wait(timeout=30)

        def gone() -> bool:
            try:
                return psutil.Process(child_pid).status() == psutil.STATUS_ZOMBIE
            except psutil.NoSuchProcess:
                return True

        wait_until(gone, what="the orphaned child exited", timeout_s=30)
    finally:
        if supervisor.poll() is None:
            supervisor.kill()
