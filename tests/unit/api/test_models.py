"""GET /v1/models: the openai SDK lists the configured models from a real server on loopback."""

from __future__ import annotations

from pathlib import Path

import openai
import pytest

from rendercost.api.threaded_server import uvicorn_thread
from rendercost.settings import ModelConfig
from tests.unit.api.conftest import ApiFactory


def test_the_openai_sdk_lists_the_configured_models(make_api: ApiFactory, tmp_path: Path) -> None:
    other = ModelConfig(source=str(tmp_path / "juggernaut-xl"))
    api = make_api(webhooks=False, models={"juggernaut-xl": other})
    with uvicorn_thread(api.server.app) as url:
        client = openai.OpenAI(api_key=api.key, base_url=f"{url}/v1", max_retries=0)
        models = list(client.models.list())
        assert [model.id for model in models] == ["default", "juggernaut-xl"]  # the default first
        assert {(model.object, model.owned_by) for model in models} == {("model", "rendercost")}
        anonymous = openai.OpenAI(api_key="rc_wrong", base_url=f"{url}/v1", max_retries=0)
        with pytest.raises(openai.AuthenticationError):
            anonymous.models.list()
