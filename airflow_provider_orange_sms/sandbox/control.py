"""The sandbox's control API under ``/_sandbox``: state, faults, tokens, balances, replies."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from airflow_provider_orange_sms.sandbox.answers import Answer
from airflow_provider_orange_sms.sandbox.delivery_receipts import mask_url
from airflow_provider_orange_sms.sandbox.subscriber_replies import (
    DEFAULT_DESTINATION,
    ReplyRequestError,
    post_reply,
    reply_notification,
)

if TYPE_CHECKING:
    from airflow_provider_orange_sms.sandbox.state import SandboxState


def control(state: SandboxState, method: str, path: str, raw_body: bytes) -> Answer:
    """
    Answer a request to the control API (``/_sandbox/...``).

    :param state: The sandbox's state.
    :param method: HTTP method.
    :param path: Request path.
    :param raw_body: Request body (JSON, or empty).
    """
    if path == "/_sandbox/state" and method == "GET":
        return Answer(200, state.snapshot())
    if path == "/_sandbox/requests" and method == "GET":
        with state.lock:
            return Answer(200, {"requests": list(state.requests)})
    try:
        body = json.loads(raw_body or b"{}")
    except (ValueError, RecursionError):
        return Answer(400, {"error": "the body is not JSON"})
    if not isinstance(body, dict):
        return Answer(400, {"error": f"expected a JSON object, got {type(body).__name__}"})
    try:
        return _update(state, method, path, body)
    except (TypeError, ValueError, AttributeError) as exc:  # a value of the wrong type
        return Answer(400, {"error": str(exc)[:200]})


def _update(state: SandboxState, method: str, path: str, body: dict[str, Any]) -> Answer:
    """Answer a control request that changes the state (``body`` is its JSON object)."""
    if path == "/_sandbox/reset" and method == "POST":
        state.reset()
        return Answer(204)
    if path == "/_sandbox/faults" and method == "POST":
        state.add_fault(**body)
        return Answer(204)
    if path == "/_sandbox/tokens/expire" and method == "POST":
        state.expire_tokens()
        return Answer(204)
    if path == "/_sandbox/tokens/revoke" and method == "POST":
        state.revoke_tokens()
        return Answer(204)
    if path == "/_sandbox/balances" and method == "PUT":
        with state.lock:
            state.balances.update({str(k): int(v) for k, v in body.items()})
        return Answer(204)
    if path == "/_sandbox/delivery-statuses" and method == "PUT":
        with state.lock:
            state.delivery_statuses.update({str(k): str(v) for k, v in body.items()})
        return Answer(204)
    if path == "/_sandbox/rejected-recipients" and method == "PUT":
        with state.lock:
            state.rejected_recipients.update({str(k): str(v) for k, v in body.items()})
        return Answer(204)
    if path == "/_sandbox/inbound-url" and method == "PUT":
        url = body.get("url")
        if url is not None and not (isinstance(url, str) and url.startswith(("http://", "https://"))):
            return Answer(400, {"error": f"'url' must be an http(s) URL or null, got {url!r}"})
        with state.lock:
            state.inbound_url = url
        return Answer(204)
    if path == "/_sandbox/inbound" and method == "POST":
        return _post_reply(state, body)
    return Answer(404, {"error": f"no control endpoint {method} {path}"})


def _post_reply(state: SandboxState, body: dict[str, Any]) -> Answer:
    """A subscriber sends an SMS: post it to the registered reply URL, answer the outcome."""
    with state.lock:
        url = state.inbound_url
    if not url:
        return Answer(409, {"error": "no reply URL registered (PUT /_sandbox/inbound-url)"})
    try:
        notification = reply_notification(body, DEFAULT_DESTINATION)
    except ReplyRequestError as exc:
        return Answer(400, {"error": str(exc)})
    outcome = post_reply(url, notification)
    with state.lock:
        state.callbacks.append({"url": mask_url(url), "notification": notification, **outcome})
    return Answer(200, {"notification": notification, **outcome})
