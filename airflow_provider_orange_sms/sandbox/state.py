"""What the sandbox remembers: accounts, tokens, balances, sent messages, subscriptions, faults."""

from __future__ import annotations

import bisect
import random
import secrets
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_provider_orange_sms.recipients import SENDER_ADDRESSES, contract_country

if TYPE_CHECKING:
    from collections.abc import Callable

DEFAULT_CLIENT_ID = "sandbox-client-id"
DEFAULT_CLIENT_SECRET = "sandbox-client-secret"
DEFAULT_BALANCES = {"CIV": 1000, "SEN": 500, "CMR": 250}
DEFAULT_SENDER_NAMES = ("Airflow", "OrangeSMS")
COUNTRY_OF_SENDER = {sender: country for country, sender in SENDER_ADDRESSES.items()}
FAULT_KINDS = ("status", "drop_before", "drop_after", "delay", "reply", "reply_after")


@dataclass
class Fault:
    """
    A failure the sandbox injects into the next matching request(s).

    :param kind: ``status`` (answer ``status`` with Orange's error body), ``drop_before`` (reset the
        connection without processing), ``drop_after`` (process the request, then reset instead of
        answering), ``delay`` (wait ``delay`` seconds, then process and answer), ``reply`` (answer
        ``status`` with ``body`` without processing, like a proxy or captive portal) or
        ``reply_after`` (process the request, then answer ``status`` with ``body`` instead of
        Orange's answer: an SMS sent whose answer came back odd).
    :param status: HTTP status for ``status``, ``reply`` and ``reply_after`` faults (429, 500, 200,
        202, 204 …).
    :param code: The error of a ``status`` fault, when not the status's usual one: a gateway code
        (``53`` with status 403: a rate limit as Orange's older SDK lists it) or an OAuth2 ``error``
        (``"invalid_client"``: the token endpoint's other answer to wrong credentials).
    :param path: Only requests whose path contains this string ("" = any API request).
    :param method: Only requests with this method (``None`` = any).
    :param count: How many matching requests get the fault.
    :param retry_after: ``Retry-After`` header value for a 429.
    :param delay: Seconds to wait for ``delay`` faults.
    :param body: Body of ``reply``/``reply_after`` faults, sent as is ("" for none).
    :param content_type: ``Content-Type`` of that body (none when empty).
    :param headers: Extra response headers of ``reply``/``reply_after`` faults (e.g. ``Location``).
    """

    kind: str = "status"
    status: int = 500
    code: int | str | None = None
    path: str = ""
    method: str | None = None
    count: int = 1
    retry_after: float | None = None
    delay: float = 0.0
    body: str = ""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"Invalid fault kind {self.kind!r}: expected one of {FAULT_KINDS}")
        # Checked here, not when a request meets the fault (then it would drop that request).
        wrong = [
            name
            for name, ok in (
                ("status", isinstance(self.status, int) and 100 <= self.status <= 599),
                ("count", isinstance(self.count, int)),
                ("delay", isinstance(self.delay, (int, float))),
                ("retry_after", self.retry_after is None or isinstance(self.retry_after, (int, float))),
                ("code", self.code is None or isinstance(self.code, (int, str))),
                ("path", isinstance(self.path, str)),
                ("method", self.method is None or isinstance(self.method, str)),
                ("body", isinstance(self.body, str)),
                ("content_type", isinstance(self.content_type, str)),
                ("headers", isinstance(self.headers, dict)),
            )
            if not ok or isinstance(getattr(self, name), bool)
        ]
        if wrong:
            raise ValueError(f"Invalid fault {', '.join(f'{n}={getattr(self, n)!r}' for n in wrong)}")

    def matches(self, method: str, path: str) -> bool:
        """Whether this fault applies to a request."""
        return self.count > 0 and self.path in path and (self.method is None or self.method == method)


@dataclass
class Message:
    """One SMS the sandbox accepted."""

    resource_id: str
    client_id: str
    address: str
    sender_address: str
    sender_name: str | None
    message: str
    country: str
    received_at: float


@dataclass
class Subscription:
    """A delivery-receipt subscription (one per account, the latest wins)."""

    subscription_id: str
    client_id: str
    notify_url: str
    sender_address: str


@dataclass
class SandboxConfig:
    """
    How the sandbox behaves.

    :param clients: Accepted ``client_id -> client_secret`` pairs.
    :param token_lifetime: Seconds a token lives (``expires_in``).
    :param token_expires_in: When not ``None``, the token endpoint answers this as ``expires_in``, as
        is (``"inf"``, ``-5``, ``"soon"``, ``1e12``: a gateway that rewrote it), while the token still
        lives ``token_lifetime`` seconds.
    :param rate_limit: Sends per account allowed in any ``rate_window`` before 429.
    :param rate_window: Length of that window in seconds: 1.0 as Orange. Tests that check a client
        stays under the limit over real HTTP on a loaded machine may shorten it a little, to tolerate
        scheduling jitter between the client's clock and the server's arrival times.
    :param arrival_jitter_ms: Each send request reaches the rate window a random 0 to this many
        milliseconds after the sandbox received it (the handler holds it that long first), as network
        jitter between a client and Orange would delay it: a client must leave that much margin or
        get 429s. 0 for none.
    :param arrival_jitter_seed: Seed of those delays (``None``: a different draw each run).
    :param balances: Initial SMS units per country.
    :param sender_names: Whitelisted sender names; any other is refused with 400 ``POL0001``. Empty:
        the account has no whitelist, and any sender name is replaced by the default one (as
        Orange's page says), recorded as ``None``.
    :param sender_addresses: The account's own sender numbers (bare digits), accepted besides the
        country numbers of Orange's table (``2250000``…). Empty (the default): any well-formed number
        (6 to 15 digits, a known country code) is accepted, as a developer sends from their own. A
        malformed sender is always refused with SVC0002. Sends are billed to the sender's country.
    :param token_rate_limit: Token requests per client id allowed in any ``token_rate_window``
        seconds before 429 code 53, as Orange caps them (50 a minute); 0 for no cap.
    :param token_rate_window: Length of that window in seconds.
    :param accept_json_everywhere: Answer 406 on every endpoint to a request whose ``Accept`` does
        not name ``application/json``; Orange's reference documents it for the token endpoint, which
        always checks it.
    :param max_message_length: Longest text accepted (longer gives SVC0280).
    :param dr_delay: Seconds after a send before the delivery receipt is posted to the subscribed
        URL, and between the receipts of ``dr_statuses``; ``None`` posts none.
    :param dr_statuses: The receipts posted for each SMS, in order, e.g.
        ``("MessageWaiting", "DeliveredToTerminal")``. ``delivery_statuses[address]`` replaces the
        last one for that recipient (``"none"``: no receipt at all for it).
    :param dr_impossible_every: Every Nth SMS accepted (1-based) ends in ``DeliveryImpossible``
        instead; 0 for none.
    :param dr_retries: Times a receipt is posted again when posting it failed (no answer within 10 s,
        a connection error, a 5xx), ``dr_retry_delay`` seconds apart: Orange's receipts "may be
        repeated", and the receiver stores a repeat once. 0 (the default): each is posted once.
    :param dr_retry_delay: Seconds between those posts.
    :param dr_callback_data: Put the resource id in ``callbackData``; False sends ``""``, as some
        accounts were reported to receive.
    :param https_callbacks_only: Refuse non-HTTPS notify URLs, as Orange does.
    :param path_prefix: Serve the API under this path (``/base``), as behind a reverse proxy;
        requests outside it get a 404.
    :param inbound_url: Where ``POST /_sandbox/inbound`` posts subscribers' SMS (Orange takes it
        through a request form); ``PUT /_sandbox/inbound-url`` changes it.
    """

    clients: dict[str, str] = field(default_factory=lambda: {DEFAULT_CLIENT_ID: DEFAULT_CLIENT_SECRET})
    token_lifetime: int = 3600
    token_expires_in: object = None
    rate_limit: int = 5
    rate_window: float = 1.0
    arrival_jitter_ms: float = 0.0
    arrival_jitter_seed: int | None = None
    balances: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_BALANCES))
    sender_names: tuple[str, ...] = DEFAULT_SENDER_NAMES
    sender_addresses: tuple[str, ...] = ()
    token_rate_limit: int = 50
    token_rate_window: float = 60.0
    accept_json_everywhere: bool = False
    max_message_length: int = 1530
    dr_delay: float | None = 0.2
    dr_statuses: tuple[str, ...] = ("DeliveredToTerminal",)
    dr_impossible_every: int = 0
    dr_retries: int = 0
    dr_retry_delay: float = 2.0
    dr_callback_data: bool = True
    https_callbacks_only: bool = False
    path_prefix: str = ""
    inbound_url: str | None = None


# How much later than its arrival a send may be judged (a busy thread, a slow body, a delay fault).
_JUDGED_LATE_AT_MOST = 120.0


class SandboxState:
    """
    Everything the sandbox knows, guarded by one lock (the server is multi-threaded).

    :param config: Behaviour settings.
    """

    def __init__(self, config: SandboxConfig | None = None) -> None:
        self.config = config or SandboxConfig()
        self.lock = threading.RLock()
        #: Clock of the rate-limit window; tests may freeze it to make the window deterministic.
        self.clock: Callable[[], float] = time.monotonic
        self._jitter = random.Random(self.config.arrival_jitter_seed)
        self.reset()

    def reset(self) -> None:
        """Forget everything but the configuration."""
        with self.lock:
            self.tokens: dict[str, dict[str, Any]] = {}
            self.token_requests = 0
            self.balances = dict(self.config.balances)
            self.messages: list[Message] = []
            self.subscriptions: dict[str, Subscription] = {}
            self.faults: list[Fault] = []
            self.requests: list[dict[str, Any]] = []
            self.rejected_recipients: dict[str, str] = {}
            self.delivery_statuses: dict[str, str] = {}
            self.callbacks: list[dict[str, Any]] = []
            self.inbound_url = self.config.inbound_url
            self.rate_limited = 0
            self._send_times: dict[str, list[float]] = {}
            self._token_times: dict[str, list[float]] = {}
            #: Per send, seconds between reading the request and the rate window's look, beyond the
            #: arrival jitter asked for: the sandbox's own delay (a loaded machine makes it large).
            #: Reported only: the window judges each send at its arrival, whatever this delay.
            self.arrival_noise: list[float] = []

    # -- tokens ----------------------------------------------------------------------------------

    def issue_token(self, client_id: str) -> dict[str, object]:
        """Create a token for ``client_id`` and return the token endpoint's answer."""
        with self.lock:
            self.token_requests += 1
            token = secrets.token_urlsafe(24)
            lifetime = self.config.token_lifetime
            self.tokens[token] = {
                "client_id": client_id,
                "expires_at": time.time() + lifetime,
                "revoked": False,
            }
            expires_in = self.config.token_expires_in
            return {
                "token_type": "Bearer",
                "access_token": token,
                "expires_in": str(lifetime) if expires_in is None else expires_in,
            }

    def token_wait(self, client_id: str) -> float | None:
        """
        Record a token request of ``client_id``; return the seconds to wait when it is over the cap.

        :param client_id: The client id the request presented (counted whether or not it is known).
        """
        limit, span = self.config.token_rate_limit, self.config.token_rate_window
        if limit <= 0:
            return None
        now = self.clock()
        with self.lock:
            times = [t for t in self._token_times.get(client_id, []) if t > now - span]
            if len(times) >= limit:
                self._token_times[client_id] = times
                return max(times[-limit] + span - now, 0.001)
            times.append(now)
            self._token_times[client_id] = times
            return None

    def expire_tokens(self) -> None:
        """Make every issued token expired (next calls answer 401 code 42)."""
        with self.lock:
            for info in self.tokens.values():
                info["expires_at"] = time.time() - 1

    def revoke_tokens(self) -> None:
        """Make every issued token invalid (next calls answer 401 code 41)."""
        with self.lock:
            for info in self.tokens.values():
                info["revoked"] = True

    # -- faults ----------------------------------------------------------------------------------

    def add_fault(self, fault: Fault | None = None, **kwargs: Any) -> Fault:
        """
        Queue a fault; faults are used in the order they were added.

        :param fault: The fault, or build one from ``kwargs`` (see :class:`Fault`).
        """
        fault = fault or Fault(**kwargs)
        with self.lock:
            self.faults.append(fault)
        return fault

    def take_fault(self, method: str, path: str) -> Fault | None:
        """Return (and use up one count of) the first fault matching this request."""
        with self.lock:
            for fault in self.faults:
                if fault.matches(method, path):
                    fault.count -= 1
                    return fault
            return None

    # -- sending ---------------------------------------------------------------------------------

    def sender_country(self, sender: str) -> str | None:
        """
        The country a send from ``sender`` is billed to, or ``None`` when the account may not use it.

        :param sender: The sender number, bare digits.
        """
        if sender in COUNTRY_OF_SENDER:
            return COUNTRY_OF_SENDER[sender]
        own = self.config.sender_addresses
        if (own and sender not in own) or not (sender.isdigit() and 6 <= len(sender) <= 15):
            return None
        return contract_country(sender)

    def arrival_delay(self) -> float:
        """Seconds a send request is held before the rate window sees it (``arrival_jitter_ms``)."""
        if self.config.arrival_jitter_ms <= 0:
            return 0.0
        with self.lock:
            return self._jitter.uniform(0.0, self.config.arrival_jitter_ms / 1000)

    def record_arrival_noise(self, seconds: float) -> None:
        """Remember how late (beyond its arrival jitter) a send reached the rate window."""
        with self.lock:
            self.arrival_noise.append(seconds)

    def over_rate_limit(self, client_id: str, arrived_at: float | None = None) -> bool:
        """
        Record a send attempt; return True when it is over the limit (the sandbox answers 429).

        A send is judged at the instant it reached the gateway, not when this thread got to look
        at it: on a loaded machine the two differ by tens of milliseconds, and a 429 must mean the
        client sent too close, not that the sandbox was slow. Attempts may therefore be judged out
        of order; an accepted one is refused when it would put more than ``rate_limit`` accepted
        sends in any ``rate_window`` around it, earlier or later.

        :param client_id: The account sending.
        :param arrived_at: When it reached the gateway on :attr:`clock` (default: now).
        """
        at = self.clock() if arrived_at is None else arrived_at
        limit, span = self.config.rate_limit, self.config.rate_window
        with self.lock:
            accepted = self._send_times.setdefault(client_id, [])
            stale = bisect.bisect_left(accepted, at - span - _JUDGED_LATE_AT_MOST)
            del accepted[:stale]
            where = bisect.bisect_right(accepted, at)

            def nth(index: int) -> float:  # the accepted sends with this one inserted at ``where``
                return accepted[index] if index < where else at if index == where else accepted[index - 1]

            for first in range(max(where - limit, 0), where + 1):
                last = first + limit
                if last <= len(accepted) and nth(last) - nth(first) < span:
                    self.rate_limited += 1
                    return True
            accepted.insert(where, at)
            return False

    def record_message(self, **fields: Any) -> Message:
        """Store an accepted SMS and take one unit from its country's balance."""
        with self.lock:
            message = Message(resource_id=str(uuid.uuid4()), received_at=time.time(), **fields)
            self.messages.append(message)
            self.balances[message.country] = self.balances.get(message.country, 0) - 1
            return message

    def receipt_statuses(self, address: str) -> list[str]:
        """
        The delivery statuses to post, in order, for the SMS to ``address`` just recorded.

        :param address: The recipient (``tel:+…``).
        """
        with self.lock:
            statuses = list(self.config.dr_statuses) or ["DeliveredToTerminal"]
            every = self.config.dr_impossible_every
            if every > 0 and len(self.messages) % every == 0:
                statuses[-1] = "DeliveryImpossible"
            override = self.delivery_statuses.get(address)
            if override is not None:
                if override.lower() == "none":
                    return []
                statuses[-1] = override
            return statuses

    def snapshot(self) -> dict[str, Any]:
        """Return a JSON-friendly view of the state (for the control endpoint and the demo)."""
        with self.lock:
            return {
                "token_requests": self.token_requests,
                "rate_limited": self.rate_limited,
                "arrival_noise_max_ms": 1000 * max(self.arrival_noise, default=0.0),
                "balances": dict(self.balances),
                "messages": [asdict(m) for m in self.messages],
                "subscriptions": [asdict(s) for s in self.subscriptions.values()],
                "callbacks": list(self.callbacks),
                "inbound_url_registered": bool(self.inbound_url),
                "pending_faults": [asdict(f) for f in self.faults if f.count > 0],
            }
