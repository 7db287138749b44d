"""Property-based checks from /openapi.json (schemathesis strategies driven by hypothesis): no input a
client can send gets a 5xx, and every refusal comes in the one error shape. Bounded and deterministic:
``MAX_EXAMPLES`` cases per operation, derandomized. (Schemathesis' own pytest plugin does not support
this pytest yet, so the operations are walked here.)"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from rendercost.testing.runner import FakeRunner
from tests.integration.http_server import LiveServer, live_server

pytestmark = pytest.mark.slow

MAX_EXAMPLES = 6  # per operation


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Iterator[LiveServer]:
    data_dir = tmp_path_factory.mktemp("schema-server")
    overrides = {"max_n": 2, "rate_limit_key_requests_per_minute": 0, "rate_limit_key_images_per_minute": 0}
    # The contract is under test, not rendering: schemathesis may ask for 60 CFG steps at 1024x1024,
    # which the CPU would take minutes over, so images are painted at the Runner seam.
    painter = FakeRunner()
    with live_server(data_dir, tiny_model_dir, runner=painter, **overrides) as live:  # type: ignore[arg-type]
        yield live


def check_operation(
    operation: schemathesis.APIOperation, mode: GenerationMode, server: LiveServer, client: httpx.Client
) -> int:
    """Send ``MAX_EXAMPLES`` generated requests; return how many were sent."""
    sent: list[int] = []

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=MAX_EXAMPLES,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def check(case: schemathesis.Case) -> None:
        request = case.as_transport_kwargs(base_url=server.url)
        headers = {**(request.get("headers") or {}), "Authorization": f"Bearer {server.admin_key}"}
        response = client.request(
            request["method"],
            request["url"],
            headers=headers,
            params=request.get("params"),
            json=request.get("json"),
            content=request.get("data"),
        )
        sent.append(response.status_code)
        where = f"{case.method} {case.formatted_path} ({mode})"
        assert response.status_code < 500, f"{where}: {response.status_code} {response.text}"
        if response.status_code >= 400:
            assert set(response.json()["error"]) == {"code", "message", "param", "type"}, where

    try:
        check()
    except Unsatisfiable:
        assert mode == GenerationMode.NEGATIVE  # an operation without inputs has no invalid ones
    return len(sent)


def test_no_input_gets_a_server_error(server: LiveServer) -> None:
    schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
    sent: dict[str, int] = {}
    with httpx.Client(timeout=120) as client:
        for result in schema.get_all_operations():
            operation = result.ok()
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                sent[operation.label] = sent.get(operation.label, 0) + check_operation(
                    operation, mode, server, client
                )
    assert sent["POST /v1/images/generations"] > 0 and sent["POST /v1/jobs"] > 0, sent
