"""Every failure a client can cause comes back in the one error shape, with the right status."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.unit.api.conftest import Api, ApiFactory

GEN = "/v1/images/generations"


def assert_error(
    response: httpx.Response, status: int, code: str, param: str | None = None
) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) >= {"error"}
    error = body["error"]
    assert set(error) == {"code", "message", "param", "type"}
    assert error["code"] == code
    assert error["message"]
    if param is not None:
        assert error["param"] == param
    assert response.headers["X-Request-ID"]
    return error


def test_missing_key_is_401(api: Api) -> None:
    error = assert_error(api.client.post(GEN, json={"prompt": "x"}), 401, "invalid_api_key")
    assert error["type"] == "authentication_error"


def test_wrong_and_revoked_keys_are_401(api: Api) -> None:
    assert_error(api.client.get("/v1/jobs", headers=api.headers("rc_not-a-key")), 401, "invalid_api_key")
    assert_error(api.client.get("/v1/jobs", headers=api.headers("garbage")), 401, "invalid_api_key")
    created = api.server.services.keys.create("acme")
    assert api.client.get("/v1/jobs", headers=api.headers(created.secret)).status_code == 200
    api.server.services.keys.revoke(created.key.id)
    assert_error(api.client.get("/v1/jobs", headers=api.headers(created.secret)), 401, "invalid_api_key")


def test_x_api_key_header_is_accepted(api: Api) -> None:
    assert api.client.get("/v1/jobs", headers={"X-API-Key": api.key}).status_code == 200


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({}, "prompt"),
        ({"prompt": ""}, "prompt"),
        ({"prompt": "x", "n": 0}, "n"),
        ({"prompt": "x", "n": "many"}, "n"),
        ({"prompt": "x", "quality": "ultra"}, "quality"),
        ({"prompt": "x", "response_format": "gif"}, "response_format"),
        ({"prompt": "x", "output_format": "bmp"}, "output_format"),
    ],
)
def test_validation_errors_are_400_naming_the_field(api: Api, body: dict[str, Any], param: str) -> None:
    error = assert_error(
        api.client.post(GEN, json=body, headers=api.headers()), 400, "invalid_request", param
    )
    assert error["type"] == "invalid_request_error"
    assert param in error["message"]


def test_malformed_json_is_400(api: Api) -> None:
    response = api.client.post(
        GEN, content=b"{not json", headers={**api.headers(), "Content-Type": "application/json"}
    )
    assert_error(response, 400, "invalid_request")


@pytest.mark.parametrize(
    ("body", "code", "param"),
    [
        ({"prompt": "x", "n": 5}, "invalid_request", "n"),  # max_n is 4 in these tests
        ({"prompt": "x", "model": "no-such-model"}, "unknown_model", "model"),
        ({"prompt": "x", "preset": "turbo"}, "unknown_preset", "preset"),
        ({"prompt": "x", "size": "big"}, "invalid_request", "size"),
        ({"prompt": "x", "size": "65x64"}, "invalid_request", "size"),
        ({"prompt": "x", "size": "8x8"}, "invalid_request", "size"),
    ],
)
def test_unservable_values_are_400(api: Api, body: dict[str, Any], code: str, param: str) -> None:
    assert_error(api.client.post(GEN, json=body, headers=api.headers()), 400, code, param)


def test_jobs_api_refuses_unknown_fields_and_bad_loras(api: Api) -> None:
    post = api.client.post
    assert_error(
        post("/v1/jobs", json={"prompt": "x", "colour": 1}, headers=api.headers()), 400, "invalid_request"
    )
    body = {"prompt": "x", "loras": [{"name": "../etc/passwd"}]}
    assert_error(post("/v1/jobs", json=body, headers=api.headers()), 400, "invalid_request", "loras.0.name")
    body = {"prompt": "x", "loras": [{"name": "missing"}]}
    assert_error(post("/v1/jobs", json=body, headers=api.headers()), 400, "unknown_lora", "loras.0.name")
    body = {"prompt": "x", "webhook_url": "ftp://x"}
    assert_error(post("/v1/jobs", json=body, headers=api.headers()), 400, "invalid_request", "webhook_url")
    body = {"prompt": "x", "seed": 2**32 - 1, "n": 2}
    assert_error(post("/v1/jobs", json=body, headers=api.headers()), 400, "invalid_request", "seed")


def test_unknown_route_and_method_keep_the_shape(api: Api) -> None:
    assert_error(api.client.get("/v1/nothing-here"), 404, "not_found")
    assert_error(api.client.put("/v1/jobs", headers=api.headers()), 405, "method_not_allowed")


def test_unknown_job_and_image_are_404(api: Api) -> None:
    assert_error(api.client.get("/v1/jobs/job_nope", headers=api.headers()), 404, "not_found")
    assert_error(api.client.delete("/v1/jobs/job_nope", headers=api.headers()), 404, "not_found")
    assert_error(api.client.get("/v1/images/job_nope-0", headers=api.headers()), 404, "not_found")
    assert_error(api.client.get("/v1/images/nodash", headers=api.headers()), 404, "not_found")


def test_body_over_the_limit_is_413(make_api: ApiFactory) -> None:
    api = make_api(workers=0, max_body_bytes=1000)
    big = {"prompt": "x" * 2000}
    assert_error(api.client.post("/v1/jobs", json=big, headers=api.headers()), 413, "payload_too_large")

    def chunks() -> Any:  # no Content-Length: the limit is counted while reading
        yield b'{"prompt": "'
        for _ in range(20):
            yield b"x" * 100
        yield b'"}'

    response = api.client.post(
        "/v1/jobs", content=chunks(), headers={**api.headers(), "Content-Type": "application/json"}
    )
    assert_error(response, 413, "payload_too_large")


def test_queue_full_is_503_with_retry_after(make_api: ApiFactory) -> None:
    api = make_api(workers=0, max_queue_depth=1, queue_full_retry_after_s=7)
    assert api.client.post("/v1/jobs", json={"prompt": "a"}, headers=api.headers()).status_code == 202
    response = api.client.post("/v1/jobs", json={"prompt": "b"}, headers=api.headers())
    assert_error(response, 503, "queue_full")
    assert response.headers["Retry-After"] == "7"


def test_a_render_that_does_not_finish_in_time_is_504(make_api: ApiFactory) -> None:
    api = make_api(workers=0, images_wait_timeout_s=0.2)
    error = assert_error(api.client.post(GEN, json={"prompt": "x"}, headers=api.headers()), 504, "timeout")
    assert "GET /v1/jobs/job_" in error["message"]


def test_a_failed_render_is_500_render_failed(make_api: ApiFactory) -> None:
    from rendercost.errors import InvalidRequest
    from rendercost.testing.runner import FakeRunner

    api = make_api(runner=FakeRunner(fail_with=InvalidRequest("the model refused")))
    error = assert_error(
        api.client.post(GEN, json={"prompt": "x"}, headers=api.headers()), 500, "render_failed"
    )
    assert "the model refused" in error["message"]


def test_cancelling_a_finished_job_is_409(api: Api) -> None:
    response = api.client.post(GEN, json={"prompt": "x"}, headers=api.headers())
    job_id = response.json()["rendercost"]["job_id"]
    assert_error(api.client.delete(f"/v1/jobs/{job_id}", headers=api.headers()), 409, "invalid_job_state")
