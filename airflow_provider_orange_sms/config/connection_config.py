"""The settings of an Orange SMS connection, read and validated in one place, each default defined once.

:class:`OrangeSMSConfig` holds everything a connection says; :func:`config_from_connection` builds
it, validating every field and naming the bad one. Each extra is a field of the config whose
metadata (:class:`Extra`) says how it is read and how the connection form shows it, so adding an
extra is adding one field here: the hook reads it, the form offers it with the same default
(:mod:`.connection_form`). How each extra's value is read is in :mod:`.extra_readers`.

Cheap to import (standard library and the package's own cheap modules): ``get_provider_info``
builds the form from it.
"""

from __future__ import annotations

import warnings
from dataclasses import Field, dataclass, field, fields
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit, urlunsplit

from airflow_provider_orange_sms.config import extra_readers as readers
from airflow_provider_orange_sms.recipients import DEFAULT_MAX_MESSAGE_LENGTH

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_MAX_ATTEMPTS",
    "DEFAULT_MAX_MESSAGE_LENGTH",
    "DEFAULT_RATE_LIMIT_BACKEND",
    "DEFAULT_RATE_LIMIT_PER_SECOND",
    "DEFAULT_READ_TIMEOUT",
    "DEFAULT_REDIS_CONN_ID",
    "DEFAULT_RETRY_BACKOFF",
    "DEFAULT_RETRY_BACKOFF_MAX",
    "DEFAULT_TOKEN_CACHE",
    "DEFAULT_TOKEN_FAILURE_TTL",
    "DEFAULT_TOKEN_PATH",
    "RATE_LIMIT_BACKEND_CHOICES",
    "TOKEN_CACHE_CHOICES",
    "ConnectionLike",
    "Extra",
    "OrangeSMSConfig",
    "base_url_of",
    "config_from_connection",
    "extra_fields",
    "normalize_base_url",
]

DEFAULT_BASE_URL = "https://api.orange.com"
DEFAULT_TOKEN_PATH = "/oauth/v3/token"
#: Orange's per-account limit.
DEFAULT_RATE_LIMIT_PER_SECOND = 5.0
DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_READ_TIMEOUT = 30.0
DEFAULT_MAX_ATTEMPTS = 5
DEFAULT_RETRY_BACKOFF = 1.0
DEFAULT_RETRY_BACKOFF_MAX = 30.0
# Long enough that a burst of tasks started together sees the first one's failure, short enough
# that a fixed endpoint or corrected secret is picked up by the next task retry.
DEFAULT_TOKEN_FAILURE_TTL = 30.0
#: Where tokens are shared: ``file`` (the processes of one machine), ``redis`` (one token for every
#: machine, in Redis), ``variable`` (an Airflow Variable: every machine), ``none`` (one task only).
TOKEN_CACHE_CHOICES = ("file", "redis", "variable", "none")
DEFAULT_TOKEN_CACHE = "file"
#: Where the rate limit is shared: ``file`` (the processes of one machine), ``redis`` (every machine).
RATE_LIMIT_BACKEND_CHOICES = ("file", "redis")
DEFAULT_RATE_LIMIT_BACKEND = "file"
#: The Airflow connection (type ``redis``) of the Redis back ends.
DEFAULT_REDIS_CONN_ID = "redis_default"
#: Extras read under an older name for now: new name to old name. Airflow masks the value of any
#: extra whose name holds "token" in task logs: ``token_cache: redis`` turned every "redis" into ***.
_DEPRECATED_EXTRA_NAMES = {"auth_cache": "token_cache"}


class ConnectionLike(Protocol):
    """What :func:`config_from_connection` reads from an Airflow connection."""

    login: str | None
    password: str | None
    host: str | None
    port: int | None

    @property
    def extra_dejson(self) -> dict[str, Any]:
        """The extras as a dict."""


_TEXT: dict[str, Any] = {"type": ["string", "null"]}


@dataclass(frozen=True)
class Extra:
    """
    How one connection extra is read and shown in the connection form (a config field's metadata).

    :param label: The form's label.
    :param description: The form's help text.
    :param read: Validates a non-empty value (``None`` and ``""`` mean the field's default).
    :param schema: The form's JSON schema, without the default (taken from the field).
    :param placeholder: The form's placeholder; the default by default.
    """

    label: str
    description: str
    read: Callable[[str, object], Any] = readers.as_text
    schema: Mapping[str, Any] = field(default_factory=lambda: _TEXT)
    placeholder: str | None = None


def _extra(
    label: str, description: str, *, choices: tuple[str, ...] | None = None, **kwargs: Any
) -> dict[str, Extra]:
    if choices is not None:  # a select; no null in the enum, or the select shows "null"
        kwargs.update(read=readers.as_choice(choices), schema={**_TEXT, "enum": list(choices)})
    return {"extra": Extra(label, description, **kwargs)}


def _number_schema(minimum: float = 0, kind: str = "number") -> dict[str, Any]:
    return {"type": [kind, "null"], "minimum": minimum}


@dataclass(frozen=True)
class OrangeSMSConfig:
    """
    Everything an Orange SMS connection says, validated. Secrets are left out of ``repr``.

    Fields with :class:`Extra` metadata are the connection's extras (same names); the others come
    from its standard fields: login, password, host and port.

    :param client_id: OAuth2 client id (login).
    :param client_secret: OAuth2 client secret (password).
    :param base_url: API root (host, with the port field when the host has none).
    """

    client_id: str | None = None
    client_secret: str | None = field(default=None, repr=False)
    base_url: str = DEFAULT_BASE_URL
    # Extras, in the connection form's order.
    authorization_header: str | None = field(
        default=None,
        repr=False,
        metadata=_extra(
            "Authorization Header",
            "Optional. The app's 'Authorization header' from the Orange Developer portal (Basic …), "
            "instead of Client ID and Client Secret.",
            schema={**_TEXT, "format": "password"},
            placeholder="Basic NktSSGZ4...",
        ),
    )
    sender_address: str | None = field(
        default=None,
        metadata=_extra(
            "Sender Address",
            "Your sender number with country code: 2250000 (Côte d'Ivoire), 2210000 (Senegal), "
            "200000 (Egypt)…; +2250000 and tel:+2250000 work too.",
            read=readers.as_sender,
            # Examples: a datalist of Orange's sender numbers (the form has no placeholder).
            schema={**_TEXT, "examples": ["2250000", "2210000", "2370000", "200000", "2160000"]},
            placeholder="2250000",
        ),
    )
    sender_name: str | None = field(
        default=None,
        metadata=_extra(
            "Sender Name",
            "Optional. A sender name Orange whitelisted for your account.",
            placeholder="MyCompany",
        ),
    )
    country: str | None = field(
        default=None,
        metadata=_extra(
            "Country",
            "Optional. ISO 3166 alpha-3 code (CIV, SEN, EGY…; alpha-2 accepted): default filter for "
            "balance, statistics and orders; picks the sender if none is set; numbers without a "
            "country code (0700000001) are read as national numbers of this country (without it "
            "they are refused).",
            read=readers.as_country,
            schema={**_TEXT, "examples": ["CIV", "SEN", "CMR", "EGY", "JOR", "TUN"]},
            placeholder="CIV",
        ),
    )
    token_path: str = field(
        default=DEFAULT_TOKEN_PATH,
        metadata=_extra(
            "Token Path",
            f"Optional. OAuth2 token endpoint path; empty means {DEFAULT_TOKEN_PATH} (/oauth/v2/token "
            "also works).",
        ),
    )
    rate_limit_per_second: float = field(
        default=DEFAULT_RATE_LIMIT_PER_SECOND,
        metadata=_extra(
            "Rate Limit (SMS per second)",
            "Sends per second, shared by every process on a machine (by every machine with Rate Limit "
            f"Shared Through 'redis'); {DEFAULT_RATE_LIMIT_PER_SECOND:g} is Orange's limit.",
            read=readers.as_rate,
            schema=_number_schema(),
        ),
    )
    auth_cache: str = field(
        default=DEFAULT_TOKEN_CACHE,
        metadata=_extra(
            "Auth Cache (OAuth2 token)",
            f"Optional. Where the access token is kept; empty means '{DEFAULT_TOKEN_CACHE}'. 'file': "
            "shared by the processes of one machine; 'redis': one token for every machine, in the "
            "Redis of Redis Connection Id; 'variable': an Airflow Variable, shared by all machines; "
            "'none': one task only.",
            choices=TOKEN_CACHE_CHOICES,
        ),
    )
    rate_limit_backend: str = field(
        default=DEFAULT_RATE_LIMIT_BACKEND,
        metadata=_extra(
            "Rate Limit Shared Through",
            f"Optional. Empty means '{DEFAULT_RATE_LIMIT_BACKEND}': the rate limit is shared by the "
            "processes of one machine. 'redis': by every machine, through the Redis of Redis "
            "Connection Id (pip install 'airflow-provider-orange-sms[redis]').",
            choices=RATE_LIMIT_BACKEND_CHOICES,
        ),
    )
    redis_conn_id: str = field(
        default=DEFAULT_REDIS_CONN_ID,
        metadata=_extra(
            "Redis Connection Id",
            "The Airflow connection (type redis) used when Auth Cache or Rate Limit Shared Through "
            f"is 'redis'; empty means {DEFAULT_REDIS_CONN_ID}.",
        ),
    )
    connect_timeout: float = field(
        default=DEFAULT_CONNECT_TIMEOUT,
        metadata=_extra(
            "Connect Timeout (seconds)",
            "Seconds to wait for a connection.",
            read=readers.as_number(minimum=0.001),
            schema=_number_schema(),
        ),
    )
    read_timeout: float = field(
        default=DEFAULT_READ_TIMEOUT,
        metadata=_extra(
            "Read Timeout (seconds)",
            "Seconds to wait for Orange's answer.",
            read=readers.as_number(minimum=0.001),
            schema=_number_schema(),
        ),
    )
    max_attempts: int = field(
        default=DEFAULT_MAX_ATTEMPTS,
        metadata=_extra(
            "Max Attempts",
            "Tries per API call, the first included, for failures that are safe to retry (429, 503, "
            "connection refused…).",
            read=readers.as_whole_number(minimum=1, truncate=True),
            schema=_number_schema(minimum=1, kind="integer"),
        ),
    )
    retry_backoff: float = field(
        default=DEFAULT_RETRY_BACKOFF,
        metadata=_extra(
            "Retry Backoff (seconds)",
            f"First wait between tries, doubled on each retry (at most {DEFAULT_RETRY_BACKOFF_MAX:g} s).",
            read=readers.as_number(),
            schema=_number_schema(),
        ),
    )
    max_message_length: int = field(
        default=DEFAULT_MAX_MESSAGE_LENGTH,
        metadata=_extra(
            "Max Message Length (characters)",
            f"Longest SMS text accepted before sending; default {DEFAULT_MAX_MESSAGE_LENGTH} (10 "
            "concatenated GSM-7 segments). Orange does not document its true maximum; it may refuse "
            "shorter texts (SVC0280), e.g. non-GSM ones (670 characters in 10 UCS-2 segments).",
            read=readers.as_whole_number(minimum=1),
            schema=_number_schema(minimum=1, kind="integer"),
        ),
    )
    sender_addresses: dict[str, str] | None = field(
        default=None,
        metadata=_extra(
            "Sender Addresses per Country",
            'Optional. JSON object of country to sender number, e.g. {"CIV": "2250000", "SEN": '
            '"2210000"}: each SMS goes out from the sender of its recipient\'s country; a recipient '
            "of another country is refused before sending.",
            read=readers.as_sender_map,
        ),
    )

    @property
    def token_cache(self) -> str:
        """Deprecated name of :attr:`auth_cache`."""
        return self.auth_cache


def extra_fields() -> list[tuple[Field[Any], Extra]]:
    """Return the config's fields that are connection extras, in form order, with their metadata."""
    return [(f, f.metadata["extra"]) for f in fields(OrangeSMSConfig) if "extra" in f.metadata]


def config_from_connection(
    conn: ConnectionLike, *, on_secret: Callable[[str], None] | None = None
) -> OrangeSMSConfig:
    """
    Read and validate a whole connection, so a bad one fails before any request, naming the field.

    An extra under its old name (``token_cache``) is read as the new one, with an
    ``AirflowProviderDeprecationWarning`` naming the new one.

    :param conn: The Airflow connection.
    :param on_secret: Called with each secret as soon as it is read (a log masker).
    :raises ValueError: Naming the first bad field and its value (never a secret's value), or an
        extra given under its old name and its new one with different values.
    """
    extra: object = conn.extra_dejson or {}
    if not isinstance(extra, dict):
        raise ValueError(f"Invalid connection extra {extra!r}: expected a JSON object")
    if on_secret is not None and conn.password:
        on_secret(conn.password)
    values: dict[str, Any] = {}
    for f, spec in extra_fields():
        value = _read_extra(extra, f.name, spec)
        old_name = _DEPRECATED_EXTRA_NAMES.get(f.name)
        old_value = _read_extra(extra, old_name, spec) if old_name is not None else None
        if old_value is not None:
            from airflow_provider_orange_sms.version_compat import AirflowProviderDeprecationWarning

            warnings.warn(
                f"The connection extra {old_name!r} is deprecated: name it {f.name!r} instead (Airflow "
                f"hides the value of an extra named {old_name!r} in task logs)",
                AirflowProviderDeprecationWarning,
                stacklevel=2,
            )
            if value is not None and value != old_value:
                raise ValueError(
                    f"Connection extras {f.name}={value!r} and {old_name}={old_value!r} disagree: keep "
                    f"{f.name} only"
                )
            value = old_value
        if value is None:
            continue  # empty: the default
        if not f.repr and on_secret is not None:  # a secret: masked before anything else is read
            on_secret(value)
        values[f.name] = value
    return OrangeSMSConfig(
        client_id=conn.login or None,
        client_secret=conn.password or None,
        base_url=base_url_of(conn.host, conn.port),
        **values,
    )


def _read_extra(extra: dict[str, Any], name: str, spec: Extra) -> Any:
    raw = extra.get(name)
    if raw is None or (isinstance(raw, (str, dict, list)) and not raw):
        return None
    return spec.read(name, raw)


# -- the base URL ------------------------------------------------------------------------------------


def normalize_base_url(base_url: str) -> str:
    """
    Return ``base_url`` without a trailing slash, with ``https://`` added when it has no scheme.

    :param base_url: ``https://api.orange.com``, ``api.orange.com``, ``http://127.0.0.1:8089``…
    :raises ValueError: When it is not an http(s) URL or has a query string or fragment, naming it.
    """
    base = (base_url or DEFAULT_BASE_URL).strip().rstrip("/")
    if "://" not in base:
        base = "https://" + base
    parts = urlsplit(base)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"Invalid base URL {base_url!r}: expected e.g. 'https://api.orange.com'")
    if parts.query or parts.fragment:
        # Paths are appended to the base: a query would end up before them (the token POST went to /).
        raise ValueError(f"Invalid base URL {base_url!r}: a query string or fragment is not allowed")
    return base


def base_url_of(host: str | None, port: int | None) -> str:
    """
    Return a connection's host as a base URL; the port field goes into the network location
    (before any path) when the host has no port of its own.

    :param host: The connection's host (``DEFAULT_BASE_URL`` when empty).
    :param port: The connection's port field.
    :raises ValueError: Naming the host or port.
    """
    raw = (host or "").strip() or DEFAULT_BASE_URL
    parts = urlsplit(raw if "://" in raw else "https://" + raw)
    if parts.query or parts.fragment:
        extra = "?" + parts.query if parts.query else "#" + parts.fragment
        raise ValueError(
            f"Invalid connection host {host!r}: a query string or fragment ({extra!r}) is not "
            "allowed in the base URL; put the API root only, e.g. 'https://api.orange.com'"
        )
    try:
        own_port = parts.port
    except ValueError:
        raise ValueError(f"Invalid connection host {host!r}: bad port") from None
    netloc = parts.netloc
    if port and own_port is None:
        if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
            raise ValueError(f"Invalid connection port {port!r}: expected 1 to 65535")
        netloc = f"{netloc}:{port}"
    try:
        return normalize_base_url(urlunsplit((parts.scheme, netloc, parts.path, "", "")))
    except ValueError:
        raise ValueError(
            f"Invalid connection host {host!r}: expected e.g. 'https://api.orange.com'"
        ) from None
