"""A local emulator of the Orange SMS API, strict about requests and faithful in its answers.

Built on the standard library's threaded HTTP server rather than an ASGI framework: injecting
faults the way networks produce them (a TCP reset before or after a send is processed, a stall
longer than the client's read timeout) needs the socket, which ASGI hides.

Besides Orange's endpoints it serves a control API under ``/_sandbox`` (state, faults, tokens,
reset) for tests and the demo (:mod:`~airflow_provider_orange_sms.sandbox.control`). Here: the
server, the request handling (faults, authentication, routing) and the messaging endpoints; the admin
endpoints are in :mod:`~airflow_provider_orange_sms.sandbox.admin`, the answer formats in
:mod:`~airflow_provider_orange_sms.sandbox.answers`, the delivery receipts posted back in
:mod:`~airflow_provider_orange_sms.sandbox.delivery_receipts`. See :class:`SandboxServer`.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import math
import re
import socket
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from airflow_provider_orange_sms.recipients import E164_DIGITS
from airflow_provider_orange_sms.sandbox import admin, subscriptions
from airflow_provider_orange_sms.sandbox.answers import (
    GATEWAY_CODES,
    GATEWAY_ERRORS,
    Answer,
    StopProcessing,
    gateway_error,
    invalid_input,
    service_error,
)
from airflow_provider_orange_sms.sandbox.control import control
from airflow_provider_orange_sms.sandbox.delivery_receipts import ReceiptPoster
from airflow_provider_orange_sms.sandbox.state import (
    Fault,
    SandboxConfig,
    SandboxState,
)

log = logging.getLogger(__name__)

TOKEN_PATHS = ("/oauth/v3/token", "/oauth/v2/token")
_ALLOWED = "GET, POST, PUT, DELETE"
#: Largest request body read (Orange's are a few hundred bytes).
MAX_BODY_BYTES = 1024 * 1024
_SENDER = r"tel%3A%2B([0-9]+)"
SEND_RE = re.compile(rf"^/smsmessaging/v1/outbound/{_SENDER}/requests$", re.IGNORECASE)
SUBSCRIBE_RE = re.compile(rf"^/smsmessaging/v1/outbound/{_SENDER}/subscriptions$", re.IGNORECASE)
UNSUBSCRIBE_RE = re.compile(rf"^/smsmessaging/v1/outbound/{_SENDER}/subscriptions/([^/]+)$", re.IGNORECASE)
SUBSCRIPTION_RE = re.compile(r"^/smsmessaging/v1/outbound/subscriptions/([^/]+)$")
ANY_OUTBOUND_RE = re.compile(r"^/smsmessaging/v1/outbound/([^/]+)/(requests|subscriptions)(/.*)?$")
# [0-9], not \d: Orange takes ASCII digits only (\d matches Arabic-Indic digits too).
ADDRESS_RE = re.compile(rf"^tel:\+{E164_DIGITS}$")
COUNTRY_RE = re.compile(r"^[A-Z]{3}$")
SEND_KEYS = {
    "address",
    "senderAddress",
    "senderName",
    "outboundSMSTextMessage",
    "clientCorrelator",
    "receiptRequest",
}


class SandboxHandler(BaseHTTPRequestHandler):
    """Request handler: routes, validates, answers like Orange, applies injected faults."""

    protocol_version = "HTTP/1.1"
    # Buffer each response and send it in one segment with Nagle off: headers and body written
    # separately otherwise meet the client's delayed ACK and every request takes 40 ms.
    disable_nagle_algorithm = True
    wbufsize = 64 * 1024
    server: _Server

    # -- plumbing --------------------------------------------------------------------------------

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("sandbox: " + format, *args)

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def __getattr__(self, name: str) -> Any:
        # Any other method (PATCH, HEAD, OPTIONS, made-up ones): 405, where http.server answers 501.
        if name.startswith("do_"):
            return self._not_allowed
        raise AttributeError(name)

    def _not_allowed(self) -> None:
        self.close_connection = True
        self._write(Answer(405, {"error": f"Method {self.command} not allowed"}, {"Allow": _ALLOWED}))

    @property
    def state(self) -> SandboxState:
        return self.server.state

    def _handle(self, method: str) -> None:
        # When the request's headers were read: a send is judged by the rate window at this instant
        # plus its arrival jitter. The time from here to the window's look, beyond that jitter, is
        # the sandbox's own scheduling noise (reported in the state, not counted against the client).
        self.received = time.monotonic()
        self.held = 0.0  # seconds a delay fault held this request before it was looked at
        self.reached_gateway = self.state.clock()
        declared = self.headers.get("Content-Length") or "0"
        if not (declared.isascii() and declared.isdigit()) or int(declared) > MAX_BODY_BYTES:
            # Unread, the body cannot be told from the next request: answer, then close.
            self.close_connection = True
            too_big = declared.isascii() and declared.isdigit()
            self._write(
                Answer(413 if too_big else 400, {"error": f"Invalid Content-Length {declared[:40]!r}"})
            )
            return
        length = int(declared)
        self.raw_body = self.rfile.read(length) if length else b""
        split = urlsplit(self.path)
        self.raw_path, self.query = split.path, parse_qs(split.query)
        prefix = self.state.config.path_prefix.rstrip("/")
        if prefix and not self.raw_path.startswith("/_sandbox"):
            inside = self.raw_path.startswith(prefix + "/")
            # Outside the prefix nothing matches: the routes below answer 404.
            self.raw_path = self.raw_path[len(prefix) :] if inside else "/outside-prefix" + self.raw_path
        if self.raw_path.startswith("/_sandbox"):
            self._write(control(self.state, method, self.raw_path, self.raw_body))
            return
        entry = self._record(method)
        fault = self.state.take_fault(method, self.raw_path)
        if fault is not None and fault.kind == "drop_before":
            entry["status"] = "reset"
            self._drop()
            return
        if fault is not None and fault.kind == "delay":
            time.sleep(fault.delay)
            self.held = fault.delay
        if fault is not None and fault.kind in ("status", "reply"):
            answer = self._fault_answer(fault)
        else:
            try:
                answer = self._route(method)
            except StopProcessing as stop:
                answer = stop.answer
        if fault is not None and fault.kind == "drop_after":
            entry["status"] = f"{answer.status} then reset"
            self._drop()
            return
        if fault is not None and fault.kind == "reply_after":
            entry["processed_status"] = answer.status
            answer = self._fault_answer(fault)
        entry["status"] = answer.status
        self._write(answer)

    def _record(self, method: str) -> dict[str, Any]:
        """Log the request on arrival (``time`` = arrival); its ``status`` is filled in later."""
        entry: dict[str, Any] = {"method": method, "path": self.raw_path, "status": None, "time": time.time()}
        with self.state.lock:
            self.state.requests.append(entry)
        return entry

    def _write(self, answer: Answer) -> None:
        if answer.raw is not None:
            payload = answer.raw
        else:
            payload = b"" if answer.body is None else json.dumps(answer.body).encode()
        self.send_response(answer.status)
        for name, value in answer.headers.items():
            self.send_header(name, value)
        if payload:
            self.send_header("Content-Type", answer.content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if payload:
            self.wfile.write(payload)

    def _drop(self) -> None:
        # SO_LINGER with a zero timeout makes close() send a TCP RST: the client sees a reset.
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True
        self.connection.close()

    def _fault_answer(self, fault: Fault) -> Answer:
        if fault.kind in ("reply", "reply_after"):
            raw = fault.body.encode()
            return Answer(fault.status, None, dict(fault.headers), raw=raw, content_type=fault.content_type)
        if isinstance(fault.code, str):
            answer = Answer(fault.status, {"error": fault.code, "error_description": "Injected error"})
        elif fault.code is not None:
            message, description = GATEWAY_CODES.get(fault.code, ("Injected error", ""))
            answer = gateway_error(fault.status, fault.code, message, description)
        else:
            code, message, description = GATEWAY_ERRORS.get(fault.status, (1, "Injected error", ""))
            answer = gateway_error(fault.status, code, message, description)
        if fault.retry_after is not None:
            answer.headers["Retry-After"] = str(fault.retry_after)
        return answer

    @property
    def base_url(self) -> str:
        host = self.headers.get("Host") or "{}:{}".format(*self.server.server_address[:2])
        return f"http://{host}"

    def _json_body(self) -> dict[str, Any]:
        content_type = self.headers.get("Content-Type", "")
        if not content_type.startswith("application/json"):
            raise StopProcessing(invalid_input("Content-Type (expected application/json)"))
        try:
            body = json.loads(self.raw_body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            raise StopProcessing(
                service_error("SVC0001", "A service error occurred: %1", ["malformed JSON"])
            ) from None
        if not isinstance(body, dict):
            raise StopProcessing(invalid_input("body"))
        return body

    def _authenticate(self) -> str:
        """Return the client id behind the bearer token, or stop with Orange's 401."""
        header = self.headers.get("Authorization", "")
        if not header.startswith("Bearer "):
            raise StopProcessing(
                gateway_error(
                    401,
                    40,
                    "Missing credentials",
                    "The requested service needs credentials, but none were provided.",
                )
            )
        with self.state.lock:
            info = self.state.tokens.get(header[7:].strip())
        if info is None or info["revoked"]:
            raise StopProcessing(
                gateway_error(
                    401,
                    41,
                    "Invalid credentials",
                    "The requested service needs credentials, but the ones provided were invalid.",
                )
            )
        if info["expires_at"] <= time.time():
            raise StopProcessing(
                gateway_error(
                    401,
                    42,
                    "Expired credentials",
                    "The requested service needs credentials, and the ones provided were out-of-date.",
                )
            )
        return str(info["client_id"])

    def _country_filter(self) -> str | None:
        values = self.query.get("country")
        if not values:
            return None
        if not COUNTRY_RE.match(values[0]):
            raise StopProcessing(invalid_input("country"))
        return values[0]

    # -- routing ---------------------------------------------------------------------------------

    def _accepts_json(self) -> bool:
        ranges = self.headers.get("Accept", "").split(",")
        return any(part.split(";")[0].strip().lower() == "application/json" for part in ranges)

    def _route(self, method: str) -> Answer:
        path = self.raw_path
        if (path in TOKEN_PATHS or self.state.config.accept_json_everywhere) and not self._accepts_json():
            # Orange's reference: without Accept: application/json the token endpoint answers 406.
            # The body's shape is the gateway's (Orange documents the status, not this body).
            return gateway_error(406, 1, "Not acceptable", "The Accept header must allow application/json")
        if path in TOKEN_PATHS:
            return self._token() if method == "POST" else gateway_error(405, 1, "Method not allowed")
        routes: list[tuple[str, re.Pattern[str], Any]] = [
            ("POST", SEND_RE, self._send),
            ("POST", SUBSCRIBE_RE, self._subscribe),
            ("DELETE", UNSUBSCRIBE_RE, self._unsubscribe),
            ("GET", SUBSCRIPTION_RE, self._get_subscription),
        ]
        for route_method, pattern, handler in routes:
            match = pattern.match(path)
            if match and method == route_method:
                return handler(self._authenticate(), *match.groups())
        if path == "/sms/admin/v1/contracts" and method == "GET":
            return admin.contracts(self.state, self._authenticate(), self._country_filter())
        if path == "/sms/admin/v1/statistics" and method == "GET":
            app_id = self.query.get("appid", [""])[0]
            return admin.statistics(self.state, self._authenticate(), self._country_filter(), app_id)
        if path == "/sms/admin/v1/purchaseorders" and method == "GET":
            return admin.purchase_orders(self.state, self._authenticate(), self._country_filter())
        if ANY_OUTBOUND_RE.match(path):
            # e.g. "tel:+2250000" not URL-encoded, or a sender that is not digits.
            self._authenticate()
            return invalid_input("senderAddress in the URL (expected tel%3A%2B<digits>)")
        return gateway_error(
            404, 60, "Resource not found", f"{method} {path} is not an Orange SMS API resource"
        )

    # -- Orange endpoints ------------------------------------------------------------------------

    def _token(self) -> Answer:
        # Orange's error page: wrong client credentials are 401 code 41 (the OAuth2 invalid_client
        # shape, also seen, is a fault away: code="invalid_client").
        invalid_client = gateway_error(401, 41, *GATEWAY_CODES[41])
        header = self.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return gateway_error(401, 40, *GATEWAY_CODES[40])
        try:
            client_id, _, secret = base64.b64decode(header[6:], validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return invalid_client
        wait = self.state.token_wait(client_id)
        if wait is not None:
            answer = gateway_error(429, 53, *GATEWAY_CODES[53])
            answer.headers["Retry-After"] = str(math.ceil(wait))
            return answer
        if self.state.config.clients.get(client_id) != secret or not secret:
            return invalid_client
        if not self.headers.get("Content-Type", "").startswith("application/x-www-form-urlencoded"):
            return Answer(
                400, {"error": "invalid_request", "error_description": "Expected a form-encoded body"}
            )
        form = parse_qs(self.raw_body.decode("utf-8", "replace"))
        if form.get("grant_type") != ["client_credentials"]:
            return Answer(
                400, {"error": "unsupported_grant_type", "error_description": "Only client_credentials"}
            )
        return Answer(200, self.state.issue_token(client_id))

    def _send(self, client_id: str, sender: str) -> Answer:
        # The gateway counts every send request of the account, valid or not, before the service
        # looks at it; with arrival jitter, as late as the network would have delivered it. It is
        # judged at that instant, whatever this (possibly busy) thread's delay in getting here.
        delay = self.state.arrival_delay()
        if delay:
            time.sleep(delay)
        self.state.record_arrival_noise(time.monotonic() - self.received - self.held - delay)
        if self.state.over_rate_limit(client_id, arrived_at=self.reached_gateway + delay):
            code, text, description = GATEWAY_ERRORS[429]
            answer = gateway_error(429, code, text, description)
            answer.headers["Retry-After"] = "1"
            return answer
        body = self._json_body()
        request = body.get("outboundSMSMessageRequest")
        if not isinstance(request, dict) or set(body) != {"outboundSMSMessageRequest"}:
            return invalid_input("outboundSMSMessageRequest")
        unknown = set(request) - SEND_KEYS
        if unknown:
            return invalid_input(sorted(unknown)[0])
        address = request.get("address")
        if not isinstance(address, str) or not ADDRESS_RE.match(address):
            return service_error("SVC0004", "No valid addresses provided in message part %1", ["address"])
        if request.get("senderAddress") != f"tel:+{sender}":
            return invalid_input("senderAddress")
        country = self.state.sender_country(sender)
        if country is None:
            return invalid_input("senderAddress")
        text_part = request.get("outboundSMSTextMessage")
        message = text_part.get("message") if isinstance(text_part, dict) else None
        if not isinstance(message, str) or not message:
            return invalid_input("outboundSMSTextMessage.message")
        limit = self.state.config.max_message_length
        if len(message) > limit:
            return service_error("SVC0280", "Message too long. Maximum length is %1 characters", [str(limit)])
        sender_name = request.get("senderName")
        if sender_name is not None and not self.state.config.sender_names:
            sender_name = None  # no whitelist: "the default sender name will be used"
        if sender_name is not None and sender_name not in self.state.config.sender_names:
            # Orange's page: "if the sender name used is not on the list of provided sender names
            # on this platform, you will get an error: 400 requestError".
            return service_error(
                "POL0001",
                "A policy error occurred. Error code is %1",
                [f"senderName {sender_name} not allowed"],
                status=400,
            )
        reason = self.state.rejected_recipients.get(address)
        if reason is not None:
            return service_error(
                "SVC0004", "No valid addresses provided in message part %1", [f"address ({reason})"]
            )
        with self.state.lock:
            if self.state.balances.get(country, 0) <= 0:
                return service_error(
                    "POL0001",
                    "A policy error occurred. Error code is %1",
                    [f"no SMS units left for {country}"],
                )
            stored = self.state.record_message(
                client_id=client_id,
                address=address,
                sender_address=sender,
                sender_name=sender_name,
                message=message,
                country=country,
            )
        resource_url = f"{self.base_url}/smsmessaging/v1/outbound/tel:+{sender}/requests/{stored.resource_id}"
        self.server.schedule_receipt(stored.client_id, stored.resource_id, address)
        echo = dict(request, resourceURL=resource_url)
        return Answer(201, {"outboundSMSMessageRequest": echo}, {"Location": resource_url})

    def _subscribe(self, client_id: str, sender: str) -> Answer:
        return subscriptions.subscribe(self.state, self.base_url, client_id, sender, self._json_body())

    def _get_subscription(self, client_id: str, subscription_id: str) -> Answer:
        return subscriptions.get(self.state, self.base_url, client_id, subscription_id)

    def _unsubscribe(self, client_id: str, sender: str, subscription_id: str) -> Answer:
        return subscriptions.unsubscribe(self.state, client_id, sender, subscription_id)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128
    state: SandboxState
    schedule_receipt: Any


class SandboxServer:
    """
    The Orange SMS API emulator, runnable in a background thread (tests) or in the foreground.

    Example::

        with SandboxServer() as sandbox:
            client = OrangeSMSClient(base_url=sandbox.url, client_id=sandbox.client_id, ...)

    :param host: Interface to listen on.
    :param port: Port; ``0`` picks a free one (see :attr:`url`).
    :param config: Behaviour settings (credentials, limits, balances …).
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, config: SandboxConfig | None = None) -> None:
        self.state = SandboxState(config)
        self._server = _Server((host, port), SandboxHandler)
        self._server.state = self.state
        self._receipts = ReceiptPoster(self.state)
        self._server.schedule_receipt = self._receipts.schedule
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Base URL of the running sandbox (``http://127.0.0.1:PORT``)."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def client_id(self) -> str:
        """The first configured client id."""
        return next(iter(self.state.config.clients))

    @property
    def client_secret(self) -> str:
        """The first configured client secret."""
        return self.state.config.clients[self.client_id]

    def start(self) -> SandboxServer:
        """Serve in a daemon thread and return self."""
        # socketserver sees a shutdown request only between two waits: 5 ms makes stop() prompt
        # (a test suite stops hundreds of sandboxes) for a few hundred idle wake-ups per second.
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.005,), name="orange-sms-sandbox", daemon=True
        )
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in the current thread until interrupted."""
        self._server.serve_forever()

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._server.shutdown()
        self._server.server_close()
        self._receipts.shutdown()

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
