"""Parsing Orange's three error formats into typed exceptions."""

from __future__ import annotations

import json
import pickle

import pytest
import requests

from airflow_provider_orange_sms.exceptions import (
    OrangeSMSAuthError,
    OrangeSMSBadRequestError,
    OrangeSMSError,
    OrangeSMSNotFoundError,
    OrangeSMSRateLimitError,
    OrangeSMSServerError,
)
from airflow_provider_orange_sms.wire.errors import error_from_response


def response(status: int, body: object = None, headers: dict[str, str] | None = None) -> requests.Response:
    resp = requests.Response()
    resp.status_code = status
    resp._content = b"" if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    resp.headers.update(headers or {})
    return resp


def service_body(kind: str, message_id: str, text: str, variables: object) -> dict:
    return {"requestError": {kind: {"messageId": message_id, "text": text, "variables": variables}}}


def test_service_exception_fills_placeholders_and_reads_like_orange():
    body = service_body(
        "serviceException", "SVC0004", "No valid addresses provided in message part %1", ["address"]
    )
    err = error_from_response(response(400, body))
    assert isinstance(err, OrangeSMSBadRequestError)
    assert str(err) == "Orange SMS API 400 SVC0004: No valid addresses provided in message part address"
    assert err.message_id == "SVC0004"
    assert err.variables == ["address"]


def test_variables_may_be_a_string():
    body = service_body(
        "serviceException", "SVC0002", "Invalid input value for message part %1", "senderAddress"
    )
    err = error_from_response(response(400, body))
    assert err.message == "Invalid input value for message part senderAddress"


def test_many_placeholders_do_not_clash():
    variables = [f"v{i}" for i in range(1, 11)]
    body = service_body("serviceException", "SVC0003", "%1 … %10", variables)
    assert error_from_response(response(400, body)).message == "v1 … v10"


def test_policy_exception_on_403_is_a_bad_request():
    body = service_body("policyException", "POL0001", "A policy error occurred. Error code is %1", ["x"])
    err = error_from_response(response(403, body))
    assert isinstance(err, OrangeSMSBadRequestError)
    assert err.code == "POL0001"


@pytest.mark.parametrize(
    ("status", "code", "cls"),
    [
        (401, 42, OrangeSMSAuthError),
        (403, 50, OrangeSMSAuthError),
        (404, 60, OrangeSMSNotFoundError),
        (429, 53, OrangeSMSRateLimitError),
        (500, 1, OrangeSMSServerError),
        (503, 5, OrangeSMSServerError),
    ],
)
def test_gateway_errors(status, code, cls):
    body = {"code": code, "message": "Something", "description": "Longer text"}
    err = error_from_response(response(status, body))
    assert type(err) is cls
    assert isinstance(err, OrangeSMSError)
    assert (err.status_code, err.code, err.message, err.description) == (
        status,
        code,
        "Something",
        "Longer text",
    )
    assert str(err) == f"Orange SMS API {status} {code}: Something (Longer text)"


def test_retry_after_header_is_read():
    err = error_from_response(
        response(429, {"code": 53, "message": "Too many requests"}, {"Retry-After": "2"})
    )
    assert isinstance(err, OrangeSMSRateLimitError)
    assert err.retry_after == 2.0


def test_oauth_error():
    err = error_from_response(
        response(401, {"error": "invalid_client", "error_description": "Client authentication failed"})
    )
    assert isinstance(err, OrangeSMSAuthError)
    assert str(err) == "Orange SMS API 401 invalid_client: Client authentication failed"


def test_non_json_body_keeps_some_text():
    err = error_from_response(response(502, b"<html>Bad gateway</html>"))
    assert isinstance(err, OrangeSMSServerError)
    assert "Bad gateway" in str(err)


def test_errors_survive_pickling_with_their_fields():
    err = OrangeSMSBadRequestError(400, "SVC0004", "No valid addresses", variables=["address"])
    copy = pickle.loads(pickle.dumps(err))
    assert type(copy) is OrangeSMSBadRequestError
    assert (copy.status_code, copy.code, copy.variables, str(copy)) == (400, "SVC0004", ["address"], str(err))


def test_gateway_code_sent_as_a_string_is_read_as_a_number():
    err = error_from_response(response(401, {"code": "42", "message": "Expired credentials"}))
    assert isinstance(err, OrangeSMSAuthError)
    assert err.code == 42
    assert str(err).startswith("Orange SMS API 401 42: Expired credentials")
