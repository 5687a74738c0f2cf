"""
The callback receiver: a FastAPI app the plugin mounts on the API server at ``/orange-sms``.

``POST /orange-sms/delivery-receipts/{secret}`` accepts one Orange delivery receipt (or a OneAPI
``deliveryInfo`` list of several) and stores each as an event of
:data:`~airflow_provider_orange_sms.receipts.DELIVERY_RECEIPTS`;
``POST /orange-sms/inbound-messages/{secret}`` accepts one SMS a subscriber sent to the account's
number and stores it as an event of :data:`~airflow_provider_orange_sms.receipts.INBOUND_MESSAGES`.
Both routes share every check below (:func:`admit`) and the error contract.

Airflow applies no authentication to plugin apps, so this app is its own guard, in this order:

1. no ``[orange_sms] delivery_receipts_secret`` configured → 404 for everything;
2. the client address not in ``delivery_receipts_allowed_ips`` (when set) → 403;
3. a wrong secret (compared in constant time) → 404, the same answer as an unknown path;
4. not ``application/json`` → 415; a body over :data:`MAX_BODY_BYTES` → 413 (the body is read in
   chunks and abandoned once over the limit);
5. not JSON → 400; JSON of the wrong shape, types or status → 422.

Then the receipt is stored (a repeat is acknowledged without a second event) and answered 200; a
database failure answers 503 so that Orange, or any retrying sender, comes back later. So does a
receipt that found no turn to store within a few seconds: each API server process stores only
``[orange_sms] delivery_receipts_max_concurrent_stores`` at once (:mod:`.admission`), so that a
flood of receipts leaves the server's threads to the tasks it also serves. Bad input
never produces a 5xx or an event.

The secret is part of the URL path. The app never logs it; the plugin's root middleware
(:mod:`~airflow_provider_orange_sms.receipts.access_log`) masks it in every request's path before
the API server's access log prints it, whatever path variant was requested.

**Client address.** By default the TCP peer. Behind a reverse proxy, list the proxy in
``delivery_receipts_trusted_proxies``: when the peer is one of them, the address is taken from
``X-Forwarded-For`` (all its header lines, in order), the right-most entry that is not itself a
trusted proxy, as uvicorn's ``ProxyHeadersMiddleware`` walks it
(:mod:`~airflow_provider_orange_sms.receipts.proxies`). (The API server's own ``--proxy-headers``
runs that middleware for the peer, trusting ``FORWARDED_ALLOW_IPS``.)
"""

from __future__ import annotations

import functools
import hmac
import ipaddress
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, TypeVar

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from airflow_provider_orange_sms.receipts.admission import (
    AdmissionSettingError,
    ReceiverBusyError,
    store_admitted,
)
from airflow_provider_orange_sms.receipts.payload import ReceiptError, parse_receipts
from airflow_provider_orange_sms.receipts.proxies import Network, client_address, forwarded_for, in_networks
from airflow_provider_orange_sms.receipts.quiet_log import RepeatLimiter
from airflow_provider_orange_sms.receipts.reply_payload import parse_reply
from airflow_provider_orange_sms.settings import (
    DELIVERY_RECEIPTS_ALLOWED_IPS,
    DELIVERY_RECEIPTS_TRUSTED_PROXIES,
    SECTION,
    configured_secret,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from airflow_provider_orange_sms.receipts.payload import Receipt
    from airflow_provider_orange_sms.receipts.reply_payload import SMSReply
    from airflow_provider_orange_sms.receipts.reply_store import ReplyOutcome

P = TypeVar("P")
R = TypeVar("R")
log = logging.getLogger(__name__)

#: Largest accepted body; a receipt is about 200 bytes.
MAX_BODY_BYTES = 64 * 1024
#: Seconds a sender is asked to wait after a 503.
RETRY_AFTER_SECONDS = 30
_UNSTORED = RepeatLimiter(60.0)
_REFUSED = RepeatLimiter(60.0)


class SettingsError(ValueError):
    """An ``[orange_sms]`` receiver setting that cannot be used (the receiver then refuses all)."""


@dataclass(frozen=True)
class ReceiverSettings:
    """
    The receiver's configuration.

    :param secret: The URL secret; ``""`` refuses every request.
    :param allowed: Networks receipts may come from; ``None`` for any source.
    :param trusted_proxies: Peers whose ``X-Forwarded-For`` is believed.
    """

    secret: str
    allowed: tuple[Network, ...] | None
    trusted_proxies: tuple[Network, ...]

    def __repr__(self) -> str:
        return f"ReceiverSettings(secret={'***' if self.secret else ''!r}, allowed={self.allowed!r})"


def parse_networks(value: str, option: str) -> tuple[Network, ...]:
    """
    Parse a comma-separated list of addresses and CIDR blocks.

    :param value: E.g. ``"80.12.13.2, 10.0.0.0/8"``.
    :param option: The option's name, for the error message.
    """
    networks = []
    for item in value.replace(";", ",").replace("\n", ",").split(","):
        item = item.strip()
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise SettingsError(
                f"Invalid [{SECTION}] {option} entry {item!r}: expected an IP address or a CIDR block "
                "such as 80.12.13.2 or 10.0.0.0/8"
            ) from None
    return tuple(networks)


@functools.lru_cache(maxsize=8)
def _settings_from(secret: str, allowed_ips: str, trusted_proxies: str) -> ReceiverSettings:
    allowed = parse_networks(allowed_ips, "delivery_receipts_allowed_ips")
    return ReceiverSettings(
        secret=secret.strip(),
        allowed=allowed or None,
        trusted_proxies=parse_networks(trusted_proxies, "delivery_receipts_trusted_proxies"),
    )


def load_settings() -> ReceiverSettings:
    """Read ``[orange_sms]`` from Airflow's configuration (cheap; called for each request)."""
    from airflow.configuration import conf

    return _settings_from(
        configured_secret(),
        conf.get(SECTION, DELIVERY_RECEIPTS_ALLOWED_IPS, fallback="") or "",
        conf.get(SECTION, DELIVERY_RECEIPTS_TRUSTED_PROXIES, fallback="") or "",
    )


def _refused(problem: str, message: str, *args: object) -> None:
    """
    Log a refused request once a minute per problem (with a count), not once per request: a
    misconfigured sender or a scanner would otherwise write a line for each of its requests.
    """
    skipped = _REFUSED.allow(problem)
    if skipped is not None:
        suffix = f" ({skipped} more refused for this reason in the last minute)" if skipped else ""
        log.warning(message + "%s", *args, suffix)


def _error(status_code: int, detail: str, **headers: str) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status_code, headers=headers or None)


_NOT_FOUND = "Not Found"  # what Starlette answers for an unknown path: a wrong secret looks the same


async def _read_body(request: Request) -> bytes | None:
    """The body, or None as soon as it exceeds :data:`MAX_BODY_BYTES` (the rest is not read)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


@dataclass(frozen=True)
class Admitted:
    """
    A request that passed every check before parsing: its body and the address it came from.

    :param body: The raw body (at most :data:`MAX_BODY_BYTES`).
    :param source: The client address checked against the allowlist.
    """

    body: bytes
    source: object


async def admit(secret: str, request: Request, what: str) -> Admitted | JSONResponse:
    """
    Apply the checks every callback route shares, in the module docstring's order (1 to 4).

    Returns the admitted body, or the refusal to answer. Both routes (receipts and
    replies) use the same secret, allowlist and proxy settings.

    :param secret: The path's secret.
    :param request: The HTTP request.
    :param what: What the route receives, for log lines ("delivery receipt", "reply").
    """
    try:
        settings = load_settings()
    except SettingsError as exc:
        log.error("Refusing %ss: %s", what, exc)
        return _error(403, "The receiver's address allowlist is misconfigured")
    if not settings.secret:
        _refused(
            f"{what}: no secret",
            "Refusing a %s: [%s] delivery_receipts_secret is not set "
            "(env AIRFLOW__ORANGE_SMS__DELIVERY_RECEIPTS_SECRET)",
            what,
            SECTION,
        )
        return _error(404, _NOT_FOUND)

    peer = request.client.host if request.client else None
    source = client_address(peer, forwarded_for(request), settings.trusted_proxies)
    if settings.allowed is not None and (source is None or not in_networks(source, settings.allowed)):
        _refused(
            f"{what}: not allowed",
            "Refusing a %s from %s: not in delivery_receipts_allowed_ips",
            what,
            source or peer,
        )
        return _error(403, f"Source address {source or peer} is not allowed")

    if not hmac.compare_digest(secret.encode(), settings.secret.encode()):
        _refused(f"{what}: wrong secret", "Refusing a %s from %s: wrong secret in the URL", what, source)
        return _error(404, _NOT_FOUND)

    content_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if content_type != "application/json":
        shown = content_type or "(none)"
        return _error(415, f"Unsupported content type {shown!r}: expected application/json")

    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.strip().isdigit():
            return _error(400, f"Invalid Content-Length {declared[:40]!r}")
        if int(declared) > MAX_BODY_BYTES:
            return _error(413, f"Body of {int(declared)} bytes is over the limit of {MAX_BODY_BYTES} bytes")
    body = await _read_body(request)
    if body is None:
        return _error(413, f"Body is over the limit of {MAX_BODY_BYTES} bytes")
    return Admitted(body=body, source=source)


def unavailable(what: str, identity: str, exc: Exception) -> JSONResponse:
    """
    The 503 answered when a callback was not stored (the database failed, or no turn to store came
    in time); logged once a minute.

    :param what: "delivery receipt" or "reply".
    :param identity: What identifies it in the log line (no secret, no message text).
    :param exc: The store's error.
    """
    busy = isinstance(exc, ReceiverBusyError)  # shedding load by design: not an error
    skipped = _UNSTORED.allow((what, busy))  # one line a minute while the DB is down or the flood lasts
    if skipped is not None:
        log.log(
            logging.WARNING if busy else logging.ERROR,
            "%s %s not stored, answered 503: %s%s",
            what.capitalize(),
            identity,
            exc,
            f" ({skipped} more {what}s answered 503 in the last minute)" if skipped else "",
        )
    retry_after = {"Retry-After": str(RETRY_AFTER_SECONDS)}
    return _error(503, f"The {what} could not be stored; try again later", **retry_after)


@dataclass(frozen=True)
class Callback(Generic[P, R]):
    """
    What a callback route receives and how: the parts :func:`receive` does not share.

    :param what: For log lines ("delivery receipt", "reply").
    :param parse: Validates the body; raises :class:`ReceiptError`.
    :param store: Stores the parsed callback; raises ``StoreUnavailableError``.
    :param identity: What names the callback in a log line (no secret, no message text).
    :param answer: The 200 answer's JSON for what was parsed and stored.
    """

    what: str
    parse: Callable[[bytes], P]
    store: Callable[[P], R]
    identity: Callable[[P], str]
    answer: Callable[[P, R], dict[str, str]]


async def receive(secret: str, request: Request, callback: Callback[P, R]) -> JSONResponse:
    """
    The body every callback route shares: :func:`admit`, parsing (400/422 on bad input), then
    storing in a worker thread once a turn is free (:mod:`.admission`); 503 + ``Retry-After`` when
    no turn came in time or the database cannot store.

    Returns the answer: 200 with ``callback.answer``, or the refusal. Nothing is
    logged per accepted callback at INFO (the access log has one line per request already): a
    problem is logged, rate-limited, not each receipt.

    :param secret: The path's secret.
    :param request: The HTTP request.
    :param callback: The route's kind of callback.
    """
    from airflow_provider_orange_sms.receipts.store import StoreUnavailableError

    what = callback.what
    admitted = await admit(secret, request, what)
    if isinstance(admitted, JSONResponse):
        return admitted
    try:
        parsed = callback.parse(admitted.body)
    except ReceiptError as exc:
        _refused(
            f"{what}: {exc.status_code}",
            "Refusing %s %s from %s: %s",
            _article(what),
            what,
            admitted.source,
            exc.message,
        )
        return _error(exc.status_code, exc.message)
    try:
        outcome = await store_admitted(callback.store, parsed)
    except (StoreUnavailableError, ReceiverBusyError, AdmissionSettingError) as exc:
        return unavailable(what, callback.identity(parsed), exc)
    return JSONResponse(callback.answer(parsed, outcome), status_code=200)


def _article(what: str) -> str:
    return "an" if what[:1] in "aeiou" else "a"


def _store_receipts(receipts: list[Receipt]) -> bool:
    """Store each receipt (each a repeat-safe transaction); whether any was new."""
    from airflow_provider_orange_sms.receipts.store import store_receipt

    stored = [store_receipt(receipt) for receipt in receipts]  # a list: every one, not up to the first new
    return any(stored)


def _store_reply(message: SMSReply) -> ReplyOutcome:
    from airflow_provider_orange_sms.receipts.reply_store import store_reply

    return store_reply(message)


def _receipt_answer(receipts: list[Receipt], stored: bool) -> dict[str, str]:
    log.debug(
        "Delivery receipt %s: %s",
        "stored" if stored else "already stored (repeat)",
        "; ".join(f"resource id {r.resource_id!r}, {r.recipient}, status {r.status}" for r in receipts),
    )
    return {"status": "stored" if stored else "duplicate"}


def _reply_answer(message: SMSReply, outcome: ReplyOutcome) -> dict[str, str]:
    # A change to the opt-out list is worth a line; an ordinary reply is not (one per request).
    log.log(
        logging.INFO if outcome.opt_out else logging.DEBUG,
        "Reply %s: from %s, message id %r%s",
        "stored" if outcome.stored else "already stored (repeat)",
        message.sender,
        message.message_id,
        f", opt-out list: {outcome.opt_out}" if outcome.opt_out else "",
    )
    answer = {"status": "stored" if outcome.stored else "duplicate"}
    if outcome.opt_out:
        answer["opt_out"] = outcome.opt_out
    return answer


_RECEIPTS: Callback[list[Receipt], bool] = Callback(
    "delivery receipt",
    parse_receipts,
    _store_receipts,
    lambda receipts: f"for resource id {receipts[0].resource_id!r}",
    _receipt_answer,
)
_REPLIES: Callback[SMSReply, ReplyOutcome] = Callback(
    "reply",
    parse_reply,
    _store_reply,
    lambda message: f"from {message.sender}",
    _reply_answer,
)


async def receive_delivery_receipt(secret: str, request: Request) -> JSONResponse:
    """
    Accept one delivery receipt (see the module docstring for every answer).

    :param secret: The path's secret.
    :param request: The HTTP request.
    """
    return await receive(secret, request, _RECEIPTS)


async def receive_reply(secret: str, request: Request) -> JSONResponse:
    """
    Accept one SMS a subscriber sent to the account's number (Orange's "SMS response" service):
    the same checks and answers as receipts; an opt-out or opt-in keyword also updates the
    sender's entry on the opt-out list, in the same transaction as the event.

    :param secret: The path's secret.
    :param request: The HTTP request.
    """
    return await receive(secret, request, _REPLIES)


def create_app() -> FastAPI:
    """Build the receiver app (no docs or OpenAPI pages: it is a machine endpoint)."""
    app = FastAPI(
        title="Orange SMS delivery receipts",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.add_api_route(
        "/delivery-receipts/{secret}",
        receive_delivery_receipt,
        methods=["POST"],
        response_class=JSONResponse,
        include_in_schema=False,
    )
    app.add_api_route(
        "/inbound-messages/{secret}",
        receive_reply,
        methods=["POST"],
        response_class=JSONResponse,
        include_in_schema=False,
    )
    return app
