"""Prompt rewriting through the real HTTP app and a local OpenAI-compatible server: revised_prompt,
the token line, a paraphrase served by the semantic cache, and the builtin fallback."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from rendercost.artifacts.metadata import read_receipt
from rendercost.ledger.tables import cost_lines
from tests.unit.api.conftest import Api, ApiFactory
from tests.unit.api.test_jobs import wait_done
from tests.unit.llm_gateway.llm_server import (
    INPUT_TOKENS,
    KEY_ENV,
    OUTPUT_TOKENS,
    LlmServer,
    provider_config,
    token_cost,
)

GEN = "/v1/images/generations"


@pytest.fixture
def rewriting_api(make_api: ApiFactory, llm: LlmServer, monkeypatch: pytest.MonkeyPatch) -> Api:
    monkeypatch.setenv(KEY_ENV, "k1")
    return make_api(llm_providers=[provider_config(llm)])


def _rewrite_lines(api: Api, job_id: str) -> list[dict[str, Any]]:
    with api.server.engine.connect() as conn:
        query = select(cost_lines).where(
            cost_lines.c.job_id == job_id, cost_lines.c.stage == "prompt_rewrite"
        )
        return [dict(row) for row in conn.execute(query).mappings()]


def test_rewrite_then_paraphrase_hits_semantic_and_result_caches(rewriting_api: Api, llm: LlmServer) -> None:
    api = rewriting_api
    body = {"prompt": "white sneaker on a beach", "seed": 4, "rewrite": True, "response_format": "b64_json"}
    first = api.client.post(GEN, json=body, headers=api.headers()).json()
    assert first["data"][0]["revised_prompt"] == "white sneaker on a beach, golden hour, 85mm"
    assert first["rendercost"]["cache"]["rewrite"] == "miss"
    assert first["rendercost"]["rewrite"] == {
        "provider": "local", "model": "gpt-4o-mini", "input_tokens": INPUT_TOKENS,
        "output_tokens": OUTPUT_TOKENS, "fallback": False,
    }  # fmt: skip
    [line] = _rewrite_lines(api, first["rendercost"]["job_id"])
    assert (
        line["details"]["input_tokens"] == INPUT_TOKENS and line["details"]["output_tokens"] == OUTPUT_TOKENS
    )
    assert line["cost"] > 0

    paraphrase = {**body, "prompt": "a white sneaker on the beach"}
    second = api.client.post(GEN, json=paraphrase, headers=api.headers()).json()
    assert second["rendercost"]["cache"] == {"result": "hit", "embedding": "off", "rewrite": "hit"}
    assert second["data"][0]["revised_prompt"] == first["data"][0]["revised_prompt"]
    assert len(llm.script.calls("/a")) == 1 and api.runner.calls == [1]
    [avoided] = _rewrite_lines(api, second["rendercost"]["job_id"])
    assert avoided["cost"] == 0 and avoided["cost_avoided"] == line["cost"]

    red = api.client.post(GEN, json={**body, "prompt": "red sneaker on beach"}, headers=api.headers()).json()
    assert red["rendercost"]["cache"]["rewrite"] == "miss" and len(llm.script.calls("/a")) == 2
    bypass = {**api.headers(), "X-Cache": "bypass"}
    assert (
        api.client.post(GEN, json=paraphrase, headers=bypass).json()["rendercost"]["cache"]["rewrite"]
        == "bypass"
    )
    other = api.new_key("globex")
    assert (
        api.client.post(GEN, json=paraphrase, headers=api.headers(other)).json()["rendercost"]["cache"][
            "rewrite"
        ]
        == "miss"
    )  # tenants never share rewrites


def test_every_provider_failing_renders_with_the_builtin_rewrite(rewriting_api: Api, llm: LlmServer) -> None:
    api = rewriting_api
    llm.script.add("/a", ("500",))
    body = {"prompt": "a fox in the snow", "seed": 1, "rewrite": True}
    payload = api.client.post(GEN, json=body, headers=api.headers()).json()
    revised = payload["data"][0]["revised_prompt"]
    assert revised.startswith("a fox in the snow, ") and "golden hour" not in revised
    said = payload["rendercost"]["rewrite"]
    assert said["provider"] == "builtin" and said["fallback"] is True  # the response says so
    job = api.client.get(f"/v1/jobs/{payload['rendercost']['job_id']}", headers=api.headers()).json()
    record = job["request"]["extra"]["rewrite"]
    assert record["fallback"] is True and record["provider"] == "builtin"
    assert Decimal(str(_rewrite_lines(api, job["id"])[0]["cost"])) == 0
    again = api.client.post(GEN, json={**body, "seed": 2}, headers=api.headers()).json()
    assert again["rendercost"]["cache"]["rewrite"] == "miss"  # a fallback is never stored


def test_with_the_builtin_rewriter_a_paraphrase_renders_nothing(make_api: ApiFactory) -> None:
    """No LLM configured: the builtin rewrite is stored like a provider's, so a paraphrase takes the
    first request's revised prompt and is answered by the exact-result cache."""
    api = make_api()
    body = {"prompt": "a silver ring in a sunlit kitchen, golden hour light", "seed": 3, "rewrite": True}
    first = api.client.post(GEN, json=body, headers=api.headers()).json()
    assert first["rendercost"]["rewrite"]["provider"] == "builtin"
    assert first["rendercost"]["cache"]["rewrite"] == "miss"
    paraphrase = {**body, "prompt": "silver ring in a sunlit kitchen, golden hour light, product photo"}
    second = api.client.post(GEN, json=paraphrase, headers=api.headers()).json()
    assert second["rendercost"]["cache"] == {"result": "hit", "embedding": "off", "rewrite": "hit"}
    assert second["data"][0]["revised_prompt"] == first["data"][0]["revised_prompt"]
    other_light = {**body, "prompt": "a silver ring in a sunlit kitchen, cool morning light"}
    third = api.client.post(GEN, json=other_light, headers=api.headers()).json()
    assert third["rendercost"]["cache"] == {"result": "miss", "embedding": "off", "rewrite": "miss"}
    assert api.runner.calls == [1, 1]  # the paraphrase rendered nothing


def test_bad_threshold_header_is_a_clear_400(rewriting_api: Api) -> None:
    api = rewriting_api
    body = {"prompt": "a fox", "rewrite": True}
    response = api.client.post(GEN, json=body, headers={**api.headers(), "X-Cache-Threshold": "2"})
    assert response.status_code == 400 and "X-Cache-Threshold" in response.text


def test_async_job_with_rewrite_style(rewriting_api: Api) -> None:
    api = rewriting_api
    body = {"prompt": "a red kite over a field", "styles": ["rewrite"], "seed": 2}
    job = api.client.post("/v1/jobs", json=body, headers=api.headers()).json()
    assert job["request"]["spec"]["prompt"] == "a red kite over a field, golden hour, 85mm"
    assert job["request"]["extra"]["rewrite"]["original_prompt"] == "a red kite over a field"
    assert len(_rewrite_lines(api, job["id"])) == 1


def test_the_rewrite_is_on_every_images_receipt_and_adds_up(rewriting_api: Api) -> None:
    api = rewriting_api
    body = {"prompt": "a blue teapot on a table", "n": 3, "seed": 5, "rewrite": True}
    submitted = api.client.post("/v1/jobs", json=body, headers=api.headers()).json()
    job = wait_done(api, submitted["id"])
    assert job["state"] == "succeeded"
    shares = [
        Decimal(line["cost_usd"])
        for result in job["results"]
        for line in result["receipt"]["lines"]
        if line["stage"] == "prompt_rewrite"
    ]
    assert len(shares) == 3 and sum(shares) == token_cost() > 0  # split exactly across the images
    ledger = _rewrite_lines(api, job["id"])
    assert sorted(line["image_index"] for line in ledger) == [0, 1, 2]
    assert sum((line["cost"] for line in ledger), Decimal(0)) == token_cost()
    with api.server.engine.connect() as conn:
        query = select(cost_lines.c.cost).where(cost_lines.c.job_id == job["id"])
        billed = sum(conn.execute(query).scalars(), Decimal(0))
    assert billed == Decimal(job["rendercost"]["cost_usd"]) == Decimal(job["receipt"]["total_usd"])
    first = api.client.get(
        f"/v1/images/{job['results'][0]['id']}", headers={**api.headers(), "Accept": "image/png"}
    )
    embedded = read_receipt(first.content, "image/png")
    assert embedded is not None
    assert embedded["receipt"]["lines"][0]["stage"] == "prompt_rewrite"  # the file carries its share


def test_a_result_cache_hit_still_bills_a_rewrite_it_paid_for(rewriting_api: Api, llm: LlmServer) -> None:
    api = rewriting_api
    body = {"prompt": "green kettle on a stove", "seed": 8, "rewrite": True, "response_format": "b64_json"}
    api.client.post(GEN, json=body, headers=api.headers())
    bypass = {**api.headers(), "X-Cache": "bypass"}  # the LLM is asked again: tokens paid
    again = api.client.post(GEN, json=body, headers=bypass).json()
    info = again["rendercost"]
    assert info["cache"]["result"] == "hit" and len(llm.script.calls("/a")) == 2
    assert Decimal(info["cost_usd"]) == token_cost()
    [line] = _rewrite_lines(api, info["job_id"])
    assert line["cost"] == token_cost()
