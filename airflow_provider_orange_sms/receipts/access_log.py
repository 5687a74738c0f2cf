"""
Keep the receiver's secret out of the API server's access log, whatever path a request took.

The secret is a segment of the receipt URL's path, and the API server logs every request's path:
Airflow's access-log middleware (3.1+) reads ``scope["path"]`` when the request ends, uvicorn's
(Airflow 3.0) when the response starts. A request that misses the receiver (another case, a trailing
slash, ``//``, ``..``, percent-encoding) never reaches the receiver's app, so the plugin installs
:class:`MaskSecretPathMiddleware` on the API server's root app: it rewrites the path of every
request in place, before the response starts, replacing with ``***``

- the segment after any ``delivery-receipts`` or ``inbound-messages`` segment (whatever was sent
  there: the secret, a truncated secret, a guess), and
- any path segment or query value that contains the configured secret, compared case-insensitively
  after percent-decoding.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import unquote, unquote_plus

from airflow_provider_orange_sms.receipts.urls import RECEIVER_SEGMENTS
from airflow_provider_orange_sms.settings import configured_secret

if TYPE_CHECKING:
    from collections.abc import Callable

    from starlette.types import ASGIApp, Message, Receive, Scope, Send

MASK = "***"
# Shorter secrets are not searched for in every segment of every request (they would mask unrelated
# paths); Airflow's own secrets masker skips them likewise. The segment after delivery-receipts is
# masked whatever its length.
_MIN_SECRET_LENGTH = 5
# Percent-decoding rounds: a double-encoded secret is still the secret.
_DECODING_ROUNDS = 4


def _plain(text: str, unquote_text: Callable[[str], str] = unquote) -> str:
    """``text`` percent-decoded until it no longer changes, case-folded: what to compare."""
    for _ in range(_DECODING_ROUNDS):
        decoded = unquote_text(text)
        if decoded == text:
            break
        text = decoded
    return text.casefold()


def mask_path(path: str, secret: str) -> str:
    """
    ``path`` with every segment that holds or may hold the receiver's secret replaced by ``***``.

    :param path: A URL path, decoded or percent-encoded.
    :param secret: The configured secret (``""``: none).
    """
    folded_secret = secret.casefold() if len(secret) >= _MIN_SECRET_LENGTH else ""
    segments = path.split("/")
    after_receiver = False
    for index, segment in enumerate(segments):
        if not segment:
            continue  # "//": the next non-empty segment still follows delivery-receipts
        plain = _plain(segment)
        follows_receiver = any(f"{name}/" in plain for name in RECEIVER_SEGMENTS)
        if after_receiver or follows_receiver or (folded_secret and folded_secret in plain):
            segments[index] = MASK
        after_receiver = plain.rstrip("/").endswith(RECEIVER_SEGMENTS)
    return "/".join(segments)


def mask_query(query: str, secret: str) -> str:
    """
    ``query`` with every name or value that contains the secret replaced by ``***``.

    :param query: A URL query string (without ``?``).
    :param secret: The configured secret.
    """
    if len(secret) < _MIN_SECRET_LENGTH or not query:
        return query
    folded_secret = secret.casefold()
    pairs = []
    for pair in query.split("&"):
        parts = pair.split("=")
        pairs.append("=".join(MASK if folded_secret in _plain(p, unquote_plus) else p for p in parts))
    return "&".join(pairs)


def mask_secret_in_scope(scope: Scope, secret: str) -> None:
    """
    Mask the secret in ``scope``'s path, raw path and query string, in place (access logs read them).

    :param scope: The ASGI scope of a request.
    :param secret: The configured secret (``""``: only the segment after delivery-receipts).
    """
    if isinstance(scope.get("path"), str):
        scope["path"] = mask_path(scope["path"], secret)
    if isinstance(scope.get("raw_path"), bytes):
        scope["raw_path"] = mask_path(scope["raw_path"].decode("latin-1"), secret).encode("latin-1")
    if isinstance(scope.get("query_string"), bytes):
        scope["query_string"] = mask_query(scope["query_string"].decode("latin-1"), secret).encode("latin-1")


class MaskSecretPathMiddleware:
    """
    ASGI middleware for the API server's root app: mask the secret in every request's scope.

    Masks once the app has routed the request, just before the response starts (uvicorn logs then),
    and again when the app returns (Airflow's access log is written after). Starlette passes the
    same scope dict through its middlewares and mounts, so the loggers see the masked path.

    :param app: The wrapped ASGI app.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        def mask() -> None:
            mask_secret_in_scope(scope, configured_secret())

        async def send_masked(message: Message) -> None:
            if message["type"] == "http.response.start":
                mask()
            await send(message)

        try:
            await self.app(scope, receive, send_masked)
        finally:
            mask()
