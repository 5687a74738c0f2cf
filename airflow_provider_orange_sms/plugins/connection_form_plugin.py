"""
An Airflow plugin that makes the UI's connection form and Test icon work for Orange SMS connections.

It adds one small ASGI middleware to the API server. It only touches JSON bodies of connection
requests whose ``conn_type`` is ``orange_sms``, and only in ways
:class:`~airflow_provider_orange_sms.hooks.orange_sms.OrangeSMSHook` cannot tell apart, so it never
changes what a connection does:

* ``POST /api/v2/connections/test``: Airflow 3.3.2's UI posts ``"port": Number(connection.port)``,
  and ``Number(null)`` is ``0``; the API server compares that 0 with the stored ``NULL`` port,
  decides the caller wants to test another destination and answers 400 "The host or port to test
  differs from the stored connection" (for every connection type without a port, Airflow's own
  included; fixed upstream by apache/airflow#73298). An Orange SMS connection keeps its port in the
  Base URL, so its Port field is hidden and empty. The middleware drops ``"port": 0`` from such a
  request: the hook ignores a port of 0 exactly as it ignores a missing one.
* ``POST /api/v2/connections`` and ``PATCH /api/v2/connections/{id}``: the form sends every extra
  field, ``null`` for the ones left empty. The middleware drops ``null`` and ``""`` extras, so the
  connection stores what the user set (the hook treats a missing extra and an empty one alike).

Airflow loads the plugin through the ``airflow.plugins`` entry point; plugin root middlewares
exist from Airflow 3.1 (on 3.0 the plugin registers and does nothing).

Fenced Airflow internals: the connections REST API's paths and body (``ConnectionBody``: ``conn_type``,
``port``, ``extra`` as JSON text) and the Test endpoint's port comparison are used here only.
``tests/unit/test_airflow_internals.py`` (the paths, the body, the port comparison) fails loudly when
Airflow changes them.

When to remove it:

* the port-0 drop: once the oldest Airflow this package supports contains apache/airflow#73298
  (the Test endpoint then treats port 0 as no port). It was merged on 2026-09-17, after 3.3.2 was
  cut: 3.3.2 still refuses port 0, so the first release with it is a later one (3.3.3 or 3.4.0;
  check its release notes for #73298). The guard test fails as soon as the installed Airflow has it.
* the empty-extras drop: stays as long as the form sends ``null`` for every empty extra field.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from airflow.plugins_manager import AirflowPlugin

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

CONN_TYPE = "orange_sms"
_TEST = re.compile(r"/api/v2/connections/test/?$")
_CREATE = re.compile(r"/api/v2/connections/?$")
_UPDATE = re.compile(r"/api/v2/connections/[^/]+/?$")
#: Larger bodies are passed on untouched (a connection is a few hundred bytes).
MAX_BODY = 1_000_000


def rewrite_body(method: str, path: str, body: bytes) -> bytes | None:
    """
    Return the rewritten body of a connection request for ``orange_sms``, or ``None`` to keep it.

    :param method: HTTP method.
    :param path: Request path.
    :param body: Raw JSON body.
    """
    is_test = method == "POST" and bool(_TEST.search(path))
    is_save = not is_test and (
        (method == "POST" and bool(_CREATE.search(path)))
        or (method == "PATCH" and bool(_UPDATE.search(path)))
    )
    if not (is_test or is_save):
        return None
    try:
        data = json.loads(body)
    except ValueError:
        return None
    if not isinstance(data, dict) or data.get("conn_type") != CONN_TYPE:
        return None
    changed = False
    if is_test and "port" in data and data["port"] is not True and data["port"] in (0, "0"):
        del data["port"]
        changed = True
    if is_save and isinstance(data.get("extra"), str):
        try:
            extra = json.loads(data["extra"])
        except ValueError:
            extra = None
        if isinstance(extra, dict):
            kept = {key: value for key, value in extra.items() if value is not None and value != ""}
            if kept != extra:
                data["extra"] = json.dumps(kept)
                changed = True
    return json.dumps(data).encode() if changed else None


class OrangeSMSConnectionMiddleware:
    """
    ASGI middleware applying :func:`rewrite_body` to connection requests (see the module doc).

    :param app: The wrapped ASGI application (Airflow's API server).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        method = scope.get("method")
        path = str(scope.get("path", ""))
        if (
            scope.get("type") != "http"
            or method not in ("POST", "PATCH")
            or "/api/v2/connections" not in path
        ):
            await self.app(scope, receive, send)
            return
        messages: list[Message] = []
        chunks: list[bytes] = []
        size = 0
        complete = False
        while not complete and size <= MAX_BODY:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":  # the client went away: let the app see it
                break
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            complete = not message.get("more_body", False)
        fixed = rewrite_body(str(method), path, b"".join(chunks)) if complete else None
        if fixed is None:
            await self.app(scope, _replay(messages, receive), send)
            return
        headers = [(k, v) for k, v in scope.get("headers", []) if k.lower() != b"content-length"]
        headers.append((b"content-length", str(len(fixed)).encode()))
        new_scope = {**scope, "headers": headers}
        await self.app(new_scope, _replay([{"type": "http.request", "body": fixed}], receive), send)


def _replay(messages: list[Message], receive: Receive) -> Receive:
    """A ``receive`` that first hands out ``messages``, then defers to the real one."""
    pending = list(messages)

    async def replay() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replay


class OrangeSMSUIPlugin(AirflowPlugin):
    """Airflow plugin installing :class:`OrangeSMSConnectionMiddleware` in the API server."""

    name = "orange_sms_ui"
    fastapi_root_middlewares = [
        {
            "middleware": OrangeSMSConnectionMiddleware,
            "args": [],
            "kwargs": {},
            "name": "Orange SMS connection form and Test icon",
        }
    ]
