"""The sandbox's HTTP answers: Orange's error formats and the gateway's canned errors."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

GATEWAY_ERRORS = {
    401: (
        42,
        "Expired credentials",
        "The requested service needs credentials, and the ones provided were out-of-date.",
    ),
    403: (50, "Access denied", "The application is not subscribed to the SMS API."),
    429: (
        53,
        "Too many requests",
        "The application has made too many calls and has exceeded the rate limit.",
    ),
    500: (1, "Internal error", "An internal error occurred while processing the request."),
    502: (1, "Internal error", "The gateway got an invalid answer from the backend."),
    503: (5, "The service is temporarily unavailable", "Try again later."),
    504: (1, "Internal error", "The gateway timed out waiting for the backend."),
}

#: Orange's gateway codes, whatever the status they come with (a fault may pair them freely: Orange's
#: older SDK lists "too many requests, 53" under 403).
GATEWAY_CODES = {
    1: ("Internal error", "An internal error occurred while processing the request."),
    5: ("The service is temporarily unavailable", "Try again later."),
    40: ("Missing credentials", "The requested service needs credentials, but none were provided."),
    41: (
        "Invalid credentials",
        "The requested service needs credentials, but the ones provided were invalid.",
    ),
    42: (
        "Expired credentials",
        "The requested service needs credentials, and the ones provided were out-of-date.",
    ),
    50: ("Access denied", "The application is not subscribed to the SMS API."),
    53: ("Too many requests", "The application has made too many calls and has exceeded the rate limit."),
    60: ("Resource not found", "The requested URI or resource does not exist."),
}


@dataclass
class Answer:
    """An answer the handler writes (or, for a ``drop_after`` fault, throws away)."""

    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    #: Bytes sent as they are instead of ``body`` as JSON (with ``content_type``), for odd answers.
    raw: bytes | None = None
    content_type: str = "application/json"


def gateway_error(status: int, code: int, message: str, description: str = "") -> Answer:
    """Orange's gateway error format: ``{"code", "message", "description"}``."""
    return Answer(status, {"code": code, "message": message, "description": description})


def service_error(message_id: str, text: str, variables: list[str], *, status: int | None = None) -> Answer:
    """
    Orange's service/policy error format: ``{"requestError": {"serviceException": …}}``.

    Service errors (``SVC…``) are 400, policy errors (``POL…``) 403 unless ``status`` says otherwise
    (Orange's page answers an unlisted sender name with "400 requestError").

    :param message_id: ``SVC0004``, ``POL0001``…
    :param text: Orange's text with ``%1``-style placeholders.
    :param variables: The values of the placeholders.
    :param status: HTTP status, when not the default of the error's kind.
    """
    is_policy = message_id.startswith("POL")
    kind = "policyException" if is_policy else "serviceException"
    if status is None:
        status = 403 if is_policy else 400
    return Answer(
        status, {"requestError": {kind: {"messageId": message_id, "text": text, "variables": variables}}}
    )


def invalid_input(part: str) -> Answer:
    """SVC0002 naming the message part that is wrong."""
    return service_error("SVC0002", "Invalid input value for message part %1", [part])


class StopProcessing(Exception):
    """Raised while handling a request: send ``answer`` at once."""

    def __init__(self, answer: Answer) -> None:
        super().__init__(answer.status)
        self.answer = answer
