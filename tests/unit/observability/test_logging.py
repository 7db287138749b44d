"""JSON logs follow the process's current stderr."""

from __future__ import annotations

import contextlib
import io
import json
import logging
from collections.abc import Iterator

import pytest

from rendercost.observability.logging import configure_logging


@pytest.fixture
def clean_root() -> Iterator[logging.Logger]:
    root = logging.getLogger()
    saved, level = list(root.handlers), root.level
    root.handlers = []
    yield root
    root.handlers, root.level = saved, level


def test_logs_go_to_the_stderr_of_the_moment_not_a_closed_capture(clean_root: logging.Logger) -> None:
    first = io.StringIO()
    with contextlib.redirect_stderr(first):
        configure_logging()  # e.g. a CLI command run under a test runner's captured stderr
    first.close()
    later = io.StringIO()
    with contextlib.redirect_stderr(later):
        logging.getLogger("rendercost.test").warning("after the capture closed")
    record = json.loads(later.getvalue())
    assert record["message"] == "after the capture closed" and record["level"] == "warning"
