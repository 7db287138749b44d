"""Write ``requirements.lock``: every package rendercost and its dev tools install, pinned with hashes.

Run with pip-tools' ``pip-compile`` on PATH (``make lock`` installs it into a throwaway venv):

    python tools/lock.py            # keep the current pins, add what is new
    python tools/lock.py --upgrade  # re-resolve everything to the newest allowed versions

torch is not in the lock: ``make setup`` installs it first from ``TORCH_SPEC`` (a CPU build by default, a
CUDA build from another index when the user asks), so its build and the packages only torch needs
(sympy, networkx, ...) are left to that step. Every other package is pinned and installed with
``pip install --require-hashes --no-deps -r requirements.lock``.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOCK = "requirements.lock"
LEFT_TO_TORCH_SPEC = "torch"
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==\S+")
_VIA_NAME = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)")


@dataclass
class Block:
    """One pinned package of pip-compile's output: its lines and the packages that pull it in."""

    name: str
    lines: list[str]
    via: set[str]  # requiring packages; "rendercost" for the project itself


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--upgrade", action="store_true", help="re-resolve every pin")
    parser.add_argument("--pip-compile", default="pip-compile", help="the pip-compile to run")
    parser.add_argument("--constraint", help="a pip constraint file to seed the pins from")
    args = parser.parse_args()
    command = [
        args.pip_compile,
        "--quiet",
        "--generate-hashes",
        "--allow-unsafe",  # pip and setuptools are pinned like the rest
        "--strip-extras",
        "--extra=dev",
        "--build-deps-for=editable",  # setuptools and wheel: the project is installed without isolation
        "--no-emit-index-url",  # indexes and wheel folders are the installing machine's business
        "--no-emit-find-links",
        f"--output-file={LOCK}",
        "pyproject.toml",
    ]
    if args.upgrade:
        command.append("--upgrade")
    if args.constraint:
        command.append(f"--constraint={args.constraint}")
    env = {**os.environ, "CUSTOM_COMPILE_COMMAND": "make lock"}
    subprocess.run(command, cwd=ROOT, env=env, check=True)  # noqa: S603  pip-compile with our own flags
    path = ROOT / LOCK
    text, dropped = strip_torch(path.read_text())
    path.write_text(text)
    print(f"{LOCK}: left to TORCH_SPEC: {', '.join(sorted(dropped))}", file=sys.stderr)


def strip_torch(text: str) -> tuple[str, set[str]]:
    """``text`` without torch and the packages that only torch (directly or not) needs."""
    header, blocks = _parse(text)
    dropped = {LEFT_TO_TORCH_SPEC}
    changed = True
    while changed:
        changed = False
        for block in blocks:
            if block.name not in dropped and block.via and block.via <= dropped:
                dropped.add(block.name)
                changed = True
    note = f"# Not pinned here (make setup installs them with {LEFT_TO_TORCH_SPEC} from TORCH_SPEC): "
    kept = [line for block in blocks if block.name not in dropped for line in block.lines]
    return "".join([*header, note, ", ".join(sorted(dropped)), "\n\n", *kept]), dropped


def _parse(text: str) -> tuple[list[str], list[Block]]:
    header: list[str] = []
    blocks: list[Block] = []
    for line in text.splitlines(keepends=True):
        pin = _PIN.match(line)
        if pin:
            blocks.append(Block(pin.group(1).lower(), [line], set()))
        elif not blocks:
            header.append(line)
        else:
            blocks[-1].lines.append(line)
            _add_via(blocks[-1], line)
    return header, blocks


def _add_via(block: Block, line: str) -> None:
    comment = line.strip()
    if not comment.startswith(("# via", "#   ")):  # pip-compile's annotations, not other comments
        return
    entry = comment.removeprefix("#").strip().removeprefix("via").strip()
    if not entry:
        return
    name = _VIA_NAME.match(entry)
    if name and not entry.startswith("-"):  # "-c FILE" / "-r FILE": an input, not a requirer
        block.via.add(name.group(1).lower())


if __name__ == "__main__":
    main()
