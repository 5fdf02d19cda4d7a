"""The mapping of the generated client's failures to the SDK's typed errors (no stack needed)."""

from __future__ import annotations

import json
from typing import Any, Dict, Optional

import pytest
import urllib3

from chaos_client.exceptions import ApiException
from chaos_sdk import (
    BadRequest,
    ChaosError,
    Conflict,
    ConnectionFailed,
    FieldError,
    Forbidden,
    InvalidScenario,
    NotFound,
    RateLimited,
    ServerError,
    Unauthorized,
    translate_errors,
)
from chaos_sdk.errors import from_api_exception


def api_exception(status: int, body: Dict[str, Any], headers: Optional[Dict[str, str]] = None) -> ApiException:
    """What the generated client raises for an error response."""
    error = ApiException(status=status, reason="refused", body=json.dumps(body))
    error.headers = headers or {}
    return error


@pytest.mark.parametrize(
    "status, kind",
    [
        (400, BadRequest),
        (401, Unauthorized),
        (403, Forbidden),
        (404, NotFound),
        (409, Conflict),
        (422, InvalidScenario),
        (429, RateLimited),
        (500, ServerError),
        (503, ServerError),
    ],
)
def test_each_status_has_its_type(status: int, kind: type) -> None:
    error = from_api_exception(api_exception(status, {"code": "Code", "message": "no"}))
    assert type(error) is kind
    assert isinstance(error, ChaosError)
    assert (error.status, error.code, error.message) == (status, "Code", "no")


def test_an_unknown_status_is_the_base_error() -> None:
    error = from_api_exception(api_exception(418, {"code": "Teapot", "message": "short and stout"}))
    assert type(error) is ChaosError and error.status == 418


def test_one_invalid_field_is_its_path_and_line() -> None:
    body = {"code": "Invalid", "message": "invalid type", "field": "spec.volumes.max", "line": 9}
    error = from_api_exception(api_exception(422, body))
    assert isinstance(error, InvalidScenario)
    assert error.errors == [FieldError("spec.volumes.max", 9, "invalid type")]
    assert (error.field, error.line) == ("spec.volumes.max", 9)
    assert "spec.volumes.max (line 9): invalid type" in str(error)


def test_several_invalid_fields_are_each_listed() -> None:
    errors = [
        {"path": "spec.volumes.step.min", "line": 12, "message": "must be at least 1"},
        {"path": "spec.duration", "line": 4, "message": "must be positive"},
    ]
    body = {"code": "Invalid", "message": "must be at least 1", "field": "spec.volumes.step.min", "line": 12}
    error = from_api_exception(api_exception(422, {**body, "errors": errors}))
    assert [(e.path, e.line) for e in error.errors] == [("spec.volumes.step.min", 12), ("spec.duration", 4)]
    assert "spec.duration (line 4): must be positive" in str(error)


def test_invalid_yaml_is_a_line_without_a_field() -> None:
    body = {"code": "Invalid", "message": "invalid YAML: duplicate key", "line": 12}
    error = from_api_exception(api_exception(422, body))
    assert isinstance(error, InvalidScenario)
    assert (error.field, error.line) == (None, 12)


def test_rate_limited_says_when_to_retry() -> None:
    error = from_api_exception(api_exception(429, {"code": "TooManyRequests", "message": "slow"}, {"Retry-After": "3"}))
    assert isinstance(error, RateLimited) and error.retry_after == 3.0


def test_a_body_that_is_not_json_is_kept_as_the_message() -> None:
    error = from_api_exception(ApiException(status=502, reason="Bad Gateway", body="<html>proxy</html>"))
    assert isinstance(error, ServerError)
    assert (error.code, error.message) == ("HTTP502", "Bad Gateway")
    assert error.body == "<html>proxy</html>"


def test_translate_errors_raises_typed_errors_from_the_original() -> None:
    original = api_exception(404, {"code": "NotFound", "message": 'scenario "x" not found'})
    with pytest.raises(NotFound) as caught:
        with translate_errors():
            raise original
    assert caught.value.__cause__ is original


def test_no_answer_is_connection_failed() -> None:
    with pytest.raises(ConnectionFailed) as caught:
        with translate_errors():
            raise urllib3.exceptions.NewConnectionError(None, "connection refused")  # type: ignore[arg-type]
    assert caught.value.status == 0
