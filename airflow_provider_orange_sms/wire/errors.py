"""Reading what Orange answered: its three error formats, the id in a 201, a safe description.

Orange answers errors in three formats: gateway errors (``code``/``message``/``description``),
service and policy exceptions (``requestError``) and OAuth2 errors (``error``/``error_description``).
:func:`error_from_response` turns each into the matching
:class:`~airflow_provider_orange_sms.exceptions.OrangeSMSError` subclass.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Mapping
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from airflow_provider_orange_sms.exceptions import (
    OrangeSMSAuthError,
    OrangeSMSBadRequestError,
    OrangeSMSError,
    OrangeSMSNotFoundError,
    OrangeSMSRateLimitError,
    OrangeSMSServerError,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    import requests

__all__ = [
    "created_id",
    "describe_network_failure",
    "describe_response",
    "error_from_response",
    "error_object_in",
    "is_name_resolution_failure",
    "json_object",
    "request_error_in",
]

#: The status each gateway ``code`` comes with (Orange's table): a 2xx carrying one is the same error.
_GATEWAY_CODE_STATUS = {40: 401, 41: 401, 42: 401, 50: 403, 53: 429, 60: 404, 1: 500, 5: 503}
#: Too many requests: Orange's older SDK answers it with 403, today's pages with 429.
_RATE_LIMIT_CODE = 53
#: The same for the OAuth2 ``error`` names.
_OAUTH_ERROR_STATUS = {
    "invalid_client": 401,
    "invalid_grant": 401,
    "invalid_token": 401,
    "unauthorized_client": 401,
    "access_denied": 403,
    "server_error": 500,
    "temporarily_unavailable": 503,
}


def _fill_placeholders(text: str, variables: list[str]) -> str:
    # Replace %10 before %1 so the shorter placeholder does not eat the longer one.
    for index in range(len(variables), 0, -1):
        text = text.replace(f"%{index}", variables[index - 1])
    return text


def _retry_after_seconds(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def error_from_response(response: requests.Response, endpoint: str | None = None) -> OrangeSMSError:
    """
    Turn an error response from Orange into the matching :class:`OrangeSMSError` subclass.

    Understands the three formats Orange uses: gateway errors (``code``/``message``/
    ``description``), service and policy exceptions (``requestError``) and OAuth2 errors
    (``error``/``error_description``).

    :param response: A response with a status of 400 or more, or a 2xx whose body is one of
        Orange's errors: a ``requestError`` gives an :class:`OrangeSMSBadRequestError`, a gateway
        ``code`` or OAuth2 ``error`` the class of the status it comes with (``42``: 401, an
        :class:`OrangeSMSAuthError`); ``status_code`` stays the 2xx. Gateway code ``53`` (too many
        requests) is an :class:`OrangeSMSRateLimitError` whatever the status (Orange's older SDK
        answers it with 403).
    :param endpoint: What was called (``GET /sms/admin/v1/contracts``), named in the message of a
        2xx error.
    """
    status = response.status_code
    code: int | str | None = None
    message = response.reason or ""
    description: str | None = None
    variables: list[str] = []
    is_service_error = False
    try:
        body: Any = response.json()
    except ValueError:
        body = None
    if isinstance(body, Mapping):
        if isinstance(body.get("requestError"), Mapping):
            request_error = body["requestError"]
            exc = request_error.get("serviceException") or request_error.get("policyException") or {}
            is_service_error = True
            raw_vars = exc.get("variables") or []
            variables = [str(raw_vars)] if isinstance(raw_vars, str) else [str(v) for v in raw_vars]
            code = exc.get("messageId")
            message = _fill_placeholders(str(exc.get("text", "")), variables)
        elif "error" in body:
            code = str(body["error"])
            message = str(body.get("error_description") or body["error"])
        elif "code" in body:
            code = body["code"]
            if isinstance(code, str) and code.strip().isdigit():
                code = int(code)  # some gateways send "42"
            message = str(body.get("message") or message)
            description = body.get("description")
    elif response.text:
        description = response.text[:200]

    # The status that decides the class: a 2xx carrying an error is the error its code comes with.
    kind = status
    if status < 400:
        if isinstance(code, int):
            kind = _GATEWAY_CODE_STATUS.get(code, status)
        elif isinstance(code, str):
            kind = _OAUTH_ERROR_STATUS.get(code, status)
        if endpoint:
            message = f"{endpoint} answered HTTP {status} with Orange's error: {message}"
    if code == _RATE_LIMIT_CODE and not is_service_error:
        kind = 429  # "wait and retry" whatever the status: Orange's older SDK answers it with 403
    if (kind in (400, 403) or kind < 400) and is_service_error:
        return OrangeSMSBadRequestError(status, code, message, description, variables=variables)
    if kind in (401, 403):
        return OrangeSMSAuthError(status, code, message, description)
    if kind == 404:
        return OrangeSMSNotFoundError(status, code, message, description)
    if kind == 429:
        retry_after = _retry_after_seconds(response.headers.get("Retry-After"))
        return OrangeSMSRateLimitError(status, code, message, description, retry_after=retry_after)
    if kind >= 500:
        return OrangeSMSServerError(status, code, message, description)
    if kind == 400:
        return OrangeSMSBadRequestError(status, code, message, description, variables=variables)
    return OrangeSMSError(status, code, message, description)


def describe_response(response: requests.Response, secrets: tuple[str, ...] = ()) -> str:
    """
    Return a short description of what came back: status, content type and the body's start.

    :param response: The HTTP response.
    :param secrets: Values blanked out of the snippet (the access token, should a proxy echo it).
    """
    content_type = response.headers.get("Content-Type") or "no content type"
    text = response.text
    for secret in secrets:  # before cutting: a secret across the cut would leave its start
        if secret:
            text = text.replace(secret, "***")
    snippet = " ".join(text[:200].split())
    body = f"body {snippet[:120]!r}" if snippet else "an empty body"
    return f"HTTP {response.status_code} {response.reason or ''}".rstrip() + f", {content_type}, {body}"


def json_object(
    response: requests.Response,
    endpoint: str,
    describe: Callable[[requests.Response], str] = describe_response,
) -> dict[str, Any]:
    """
    The JSON object a successful read answered, or an :class:`OrangeSMSError` naming what came back.

    A proxy or captive portal may answer 200 with an HTML page: ``response.json()`` would raise a
    bare ``ValueError``. Not retried: the same proxy would answer the same.

    :param response: A 2xx response of a read endpoint.
    :param endpoint: What was called, e.g. ``GET /sms/admin/v1/contracts`` (no query: no secrets).
    :param describe: Describes the response without secrets (status, content type, a short excerpt
        of the body with the access token and credentials blanked out: :func:`describe_response`).
    :raises OrangeSMSError: When the body is not a JSON object.
    """
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        return body
    raise OrangeSMSError(
        response.status_code,
        None,
        f"{endpoint} answered something that is not Orange's JSON ({describe(response)}); "
        "a proxy or captive portal between Airflow and Orange may have answered instead",
    )


def request_error_in(response: requests.Response) -> OrangeSMSError | None:
    """The error of a 2xx answer whose JSON body is Orange's ``requestError`` (else ``None``)."""
    try:
        body = response.json()
    except ValueError:
        return None
    if isinstance(body, Mapping) and isinstance(body.get("requestError"), Mapping):
        return error_from_response(response)
    return None


def error_object_in(response: requests.Response, endpoint: str) -> OrangeSMSError | None:
    """
    The error of a 2xx answer whose JSON body is one of Orange's error objects (else ``None``):
    ``requestError``, a gateway ``code`` with its ``message``, or an OAuth2 ``error``.

    :param response: A 2xx response.
    :param endpoint: What was called, named in the error's message.
    """
    try:
        body = response.json()
    except ValueError:
        return None
    if not isinstance(body, Mapping):
        return None
    if (
        isinstance(body.get("requestError"), Mapping)
        or ("code" in body and "message" in body)
        or isinstance(body.get("error"), str)
    ):
        return error_from_response(response, endpoint)
    return None


def created_id(response: requests.Response, envelope: str, marker: str) -> str:
    """
    The id of a created resource: the path segment after ``marker`` in the body's ``resourceURL``
    (inside ``envelope``), or in the ``Location`` header when the body has none. ``""`` if neither.
    """
    url = ""
    with contextlib.suppress(ValueError, KeyError, TypeError):
        url = str(response.json()[envelope]["resourceURL"] or "")
    return _id_in(url, marker) or _id_in(response.headers.get("Location", ""), marker)


def _id_in(url: str, marker: str) -> str:
    path = urlsplit(url).path if "://" in url else url
    if marker not in path:
        return ""
    return path.rsplit(marker, 1)[1].strip("/").split("/")[0].strip()


#: The root causes worth naming, most specific first: (exception type name, words).
_NETWORK_CAUSES = (
    ("ConnectionRefusedError", "connection refused"),
    ("gaierror", "host name not found"),
    ("ConnectTimeoutError", "no answer while connecting"),
    ("ConnectTimeout", "no answer while connecting"),
    ("ReadTimeoutError", "no answer within the read timeout"),
    ("ReadTimeout", "no answer within the read timeout"),
    ("ConnectionResetError", "connection reset"),
    ("SSLError", "TLS handshake failed"),
    ("RemoteDisconnected", "the server closed the connection without answering"),
)

_CONNECT_CAUSES = {"connection refused", "host name not found", "no answer while connecting"}


def _causes(exc: BaseException) -> list[str]:
    """The type names of ``exc`` and of everything it wraps (causes, contexts, urllib3 reasons)."""
    seen: list[str] = []
    todo: list[object] = [exc]
    while todo and len(seen) < 20:
        current = todo.pop()
        if not isinstance(current, BaseException):
            continue
        seen.append(type(current).__name__)
        todo.extend([current.__cause__, current.__context__, getattr(current, "reason", None)])
        todo.extend(arg for arg in current.args if isinstance(arg, BaseException))
    return seen


def is_name_resolution_failure(exc: BaseException) -> bool:
    """
    Whether a request failed because its host name did not resolve (``socket.gaierror``).

    :param exc: The ``requests`` exception (urllib3's ``NameResolutionError`` wraps the cause).
    """
    seen = _causes(exc)
    return "gaierror" in seen or "NameResolutionError" in seen


def describe_network_failure(exc: BaseException, url: str) -> str:
    """
    Say in one short line why a request to ``url`` failed on the network.

    ``requests`` wraps urllib3's ~300-character message around the real cause; this names the
    origin and the cause (``cannot connect to http://127.0.0.1:8099 (connection refused)``).

    :param exc: The ``requests`` exception.
    :param url: The request's URL (only its scheme, host and port are shown).
    """
    parts = urlsplit(url)
    origin = f"{parts.scheme}://{parts.netloc}"
    seen = _causes(exc)
    cause = next((words for name, words in _NETWORK_CAUSES if name in seen), type(exc).__name__)
    if cause == "host name not found":
        return f"cannot connect to {origin} (host name {parts.hostname!r} not found)"
    if cause in _CONNECT_CAUSES:
        return f"cannot connect to {origin} ({cause})"
    return f"request to {origin} failed ({cause})"
