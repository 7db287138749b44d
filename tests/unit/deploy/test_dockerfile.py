"""deploy/Dockerfile, read structurally (Docker cannot build here): stages, the install order of
``make setup``, a non-root user, a health check, and COPY sources that exist and are in the context."""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.unit.deploy.conftest import DEPLOY, REPO, assert_real_settings

DOCKERFILE = DEPLOY / "Dockerfile"


@dataclass
class Stage:
    name: str
    base: str
    instructions: list[tuple[str, str]] = field(default_factory=list)  # (INSTRUCTION, arguments)

    def args(self, instruction: str) -> list[str]:
        return [rest for name, rest in self.instructions if name == instruction]


def parse(text: str) -> tuple[list[tuple[str, str]], list[Stage]]:
    """(global ARGs before the first FROM, stages), with comments dropped and continuations joined."""
    logical: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    assert not pending, "a continued line runs past the end of the file"
    preamble: list[tuple[str, str]] = []
    stages: list[Stage] = []
    for line in logical:
        instruction, _, rest = line.partition(" ")
        instruction = instruction.upper()
        if instruction == "FROM":
            words = rest.split()
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else str(len(stages))
            stages.append(Stage(name, words[0]))
        elif stages:
            stages[-1].instructions.append((instruction, rest.strip()))
        else:
            preamble.append((instruction, rest.strip()))
    return preamble, stages


@pytest.fixture(scope="module")
def parsed() -> tuple[list[tuple[str, str]], list[Stage]]:
    return parse(DOCKERFILE.read_text())


def _exec_form(arguments: str) -> list[str]:
    value = json.loads(arguments)
    assert isinstance(value, list), arguments
    return [str(word) for word in value]


def test_stages_build_on_a_pinned_cuda_runtime_base(
    parsed: tuple[list[tuple[str, str]], list[Stage]],
) -> None:
    preamble, stages = parsed
    assert [stage.name for stage in stages] == ["python", "build", "runtime"]
    defaults = dict(rest.split("=", 1) for name, rest in preamble if name == "ARG")
    base = defaults["CUDA_IMAGE"]
    assert stages[0].base == "${CUDA_IMAGE}"
    assert re.fullmatch(r"nvidia/cuda:12\.\d+\.\d+-cudnn-runtime-ubuntu\d\d\.\d\d", base), base
    assert stages[1].base == stages[2].base == "python"  # the venv is built for the runtime's interpreter


def test_install_follows_make_setup(parsed: tuple[list[tuple[str, str]], list[Stage]]) -> None:
    build = parsed[1][1]
    (torch_arg,) = [rest for rest in build.args("ARG") if rest.startswith("TORCH_SPEC=")]
    assert "--index-url https://download.pytorch.org/whl/cu" in torch_arg
    runs = build.args("RUN")
    order = [
        next(i for i, run in enumerate(runs) if "pip install ${TORCH_SPEC}" in run),
        next(i for i, run in enumerate(runs) if "--require-hashes --no-deps -r requirements.lock" in run),
        next(i for i, run in enumerate(runs) if "pip install --no-deps --no-build-isolation ." in run),
    ]
    assert order == sorted(order), "torch, then the lock, then rendercost"


def test_runtime_runs_rendercost_as_a_non_root_user_with_a_health_check(
    parsed: tuple[list[tuple[str, str]], list[Stage]],
) -> None:
    runtime = parsed[1][-1]
    (user,) = runtime.args("USER")
    uid = user.split(":")[0]
    assert uid not in ("root", "0") and uid.isdigit(), "a numeric non-root UID (Kubernetes runAsNonRoot)"
    (healthcheck,) = runtime.args("HEALTHCHECK")
    assert "CMD" in healthcheck and "HEALTHCHECK_URL" in healthcheck
    env = dict(shlex.split(pair)[0].split("=", 1) for pair in _env_pairs(runtime))
    assert env["HEALTHCHECK_URL"].endswith(":8000/healthz")
    assert_real_settings([name for name in env if name.startswith("RENDERCOST_")], origin="Dockerfile")
    (entrypoint,) = runtime.args("ENTRYPOINT")
    assert _exec_form(entrypoint) == ["rendercost"]
    assert any("--from=build /opt/venv /opt/venv" in copy for copy in runtime.args("COPY"))


def _env_pairs(stage: Stage) -> list[str]:
    return [pair for rest in stage.args("ENV") for pair in shlex.split(rest)]


def _ignored(path: str, patterns: list[str]) -> bool:
    """Docker's .dockerignore rule: the last pattern matching the path or a parent decides."""
    parts = path.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    ignored = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        glob = pattern[1:] if negated else pattern
        glob = glob.rstrip("/")
        if any(
            fnmatch.fnmatchcase(c, glob) or fnmatch.fnmatchcase(c, glob.replace("**/", ""))
            for c in candidates
        ):
            ignored = not negated
    return ignored


def _dockerignore() -> list[str]:
    lines = (REPO / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def _copied_sources(stages: list[Stage]) -> list[str]:
    copied: list[str] = []
    for stage in stages:
        for rest in stage.args("COPY"):
            if "--from=" not in rest:
                copied += [word for word in rest.split() if not word.startswith("--")][:-1]
    return copied


def test_every_copied_file_exists_and_is_in_the_build_context(
    parsed: tuple[list[tuple[str, str]], list[Stage]],
) -> None:
    patterns = _dockerignore()
    copied = _copied_sources(parsed[1])
    assert {"requirements.lock", "pyproject.toml", "src"} <= set(copied)
    for source in copied:
        assert (REPO / source).exists(), f"COPY {source}: not in the repository"
        assert not _ignored(source, patterns), f"COPY {source}: excluded by .dockerignore"
    for path in (
        "src/rendercost/settings.py",
        "src/rendercost/migrations/env.py",
        "src/rendercost/data/catalog.toml",
    ):
        assert not _ignored(path, patterns), path
    assert _ignored("tests/conftest.py", patterns) and _ignored(".venv/bin/python", patterns)


@pytest.mark.slow
def test_the_copied_context_builds_the_package(
    parsed: tuple[list[tuple[str, str]], list[Stage]], tmp_path: Path
) -> None:
    """What the build stage's `pip install --no-deps --no-build-isolation .` gets (the COPY sources
    minus .dockerignore) builds a wheel with the migrations, the catalog and the `rendercost` command."""
    patterns, context = _dockerignore(), tmp_path / "context"
    for source in _copied_sources(parsed[1]):
        paths = [REPO / source] if (REPO / source).is_file() else sorted((REPO / source).rglob("*"))
        for path in paths:
            relative = path.relative_to(REPO).as_posix()
            if path.is_file() and not _ignored(relative, patterns):
                (context / relative).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, context / relative)
    wheels = tmp_path / "wheels"
    command = [
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "-q",
        "--no-deps",
        "--no-build-isolation",
        "-w",
        str(wheels),
        str(context),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    (wheel,) = wheels.glob("rendercost-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {
        "rendercost/data/catalog.toml",
        "rendercost/migrations/env.py",
        "rendercost/cli/__init__.py",
    } <= names
    assert any(name.startswith("rendercost/migrations/versions/0001") for name in names)
    (entry_points,) = [name for name in names if name.endswith(".dist-info/entry_points.txt")]
    assert "rendercost = rendercost.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()
