"""deploy/Dockerfile, read structurally (Docker cannot build here): stages, the install order of
``make setup``, a non-root user, a health check, and COPY sources that exist and are in the context."""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
from dataclasses import dataclass, field

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


def test_every_copied_file_exists_and_is_in_the_build_context(
    parsed: tuple[list[tuple[str, str]], list[Stage]],
) -> None:
    patterns = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    copied: list[str] = []
    for stage in parsed[1]:
        for rest in stage.args("COPY"):
            words = [word for word in rest.split() if not word.startswith("--")]
            if "--from=" in rest:
                continue
            copied += words[:-1]
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
