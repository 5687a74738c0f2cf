"""The UI plugin's middleware: rewrites Orange SMS connection requests only, as the module says."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from airflow_provider_orange_sms.plugins.connection_form_plugin import (
    OrangeSMSConnectionMiddleware,
    OrangeSMSUIPlugin,
    rewrite_body,
)


def body(**fields: Any) -> bytes:
    return json.dumps(fields).encode()


def test_test_request_loses_port_zero_for_orange_sms_only():
    fixed = rewrite_body("POST", "/api/v2/connections/test", body(conn_type="orange_sms", port=0, host="h"))
    assert fixed is not None
    assert json.loads(fixed) == {"conn_type": "orange_sms", "host": "h"}
    for unchanged in (
        body(conn_type="http", port=0),  # Airflow's own types: not ours to change
        body(conn_type="orange_sms", port=8089),  # a real port is compared as Airflow does
        body(conn_type="orange_sms"),
        b"not json",
    ):
        assert rewrite_body("POST", "/api/v2/connections/test", unchanged) is None


def test_saving_drops_empty_extras_only():
    extra = {"sender_address": "2250000", "sender_name": None, "country": "", "max_attempts": 0}
    for method, path in (("POST", "/api/v2/connections"), ("PATCH", "/api/v2/connections/my_conn")):
        fixed = rewrite_body(method, path, body(conn_type="orange_sms", port=0, extra=json.dumps(extra)))
        assert fixed is not None
        data = json.loads(fixed)
        assert json.loads(data["extra"]) == {"sender_address": "2250000", "max_attempts": 0}
        assert data["port"] == 0  # only a test request loses its port
    assert rewrite_body("POST", "/api/v2/connections", body(conn_type="fs", extra='{"a": null}')) is None
    assert rewrite_body("GET", "/api/v2/connections", body(conn_type="orange_sms", extra="{}")) is None


def run_middleware(method: str, path: str, chunks: list[bytes]) -> tuple[dict[str, Any], bytes]:
    """Send a request through the middleware in chunks; return the scope and body the app saw."""
    seen: dict[str, Any] = {}

    async def app(scope: Any, receive: Any, send: Any) -> None:
        parts = []
        while True:
            message = await receive()
            parts.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        seen["scope"], seen["body"] = scope, b"".join(parts)

    messages = [
        {"type": "http.request", "body": chunk, "more_body": i < len(chunks) - 1}
        for i, chunk in enumerate(chunks)
    ]

    async def receive() -> dict[str, Any]:
        return messages.pop(0)

    async def send(message: Any) -> None:
        pass

    scope = {"type": "http", "method": method, "path": path, "headers": [(b"content-length", b"1")]}
    asyncio.run(OrangeSMSConnectionMiddleware(app)(scope, receive, send))
    return seen["scope"], seen["body"]


@pytest.mark.parametrize("split", [1, 7, 1000])
def test_middleware_rewrites_a_chunked_body_and_its_length(split):
    raw = body(conn_type="orange_sms", connection_id="c", port=0, password="***")
    chunks = [raw[i : i + split] for i in range(0, len(raw), split)]
    scope, seen = run_middleware("POST", "/api/v2/connections/test", chunks)
    assert json.loads(seen) == {"conn_type": "orange_sms", "connection_id": "c", "password": "***"}
    assert dict(scope["headers"])[b"content-length"] == str(len(seen)).encode()


def test_middleware_passes_other_requests_through_unchanged():
    raw = body(conn_type="http", port=0)
    scope, seen = run_middleware("POST", "/api/v2/connections/test", [raw[:5], raw[5:]])
    assert seen == raw
    assert scope["headers"] == [(b"content-length", b"1")]


def test_plugin_declares_the_middleware():
    [entry] = OrangeSMSUIPlugin.fastapi_root_middlewares
    assert entry["middleware"] is OrangeSMSConnectionMiddleware
