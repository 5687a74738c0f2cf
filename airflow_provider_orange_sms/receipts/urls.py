"""
The parts of a delivery-receipt URL (a subscription's ``notify_url``) that must not be shown.

The provider's receiver takes its secret as the path segment after ``delivery-receipts``
(``https://host/orange-sms/delivery-receipts/<secret>``); any URL may also carry a password
(``https://user:password@host/…``) or a token in its query. Pure: no Airflow.
"""

from __future__ import annotations

import itertools
from urllib.parse import parse_qsl, unquote, urlsplit

#: The path segment the receiver's secret follows.
RECEIVER_SEGMENT = "delivery-receipts"
#: Every path segment a receiver secret follows (receipts, replies).
RECEIVER_SEGMENTS = (RECEIVER_SEGMENT, "inbound-messages")


def url_secrets(url: str) -> list[str]:
    """
    The values in ``url`` to hide: the segment after ``delivery-receipts`` (as written and decoded),
    the userinfo password and the query values.

    :param url: A notify URL.
    """
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:  # e.g. an unclosed IPv6 bracket: still look at the path
        parts, password = urlsplit(url.replace("[", "").replace("]", "")), None
    found = [password] if password else []
    segments = [s for s in parts.path.split("/") if s]
    for before, segment in itertools.pairwise(segments):
        if unquote(before).lower() == RECEIVER_SEGMENT:
            found += [segment, unquote(segment)]
    found += [value for _, value in parse_qsl(parts.query, keep_blank_values=False)]
    # As written too: parse_qsl decodes (%2B, +), and the URL is hidden by replacing its text.
    found += [raw for _, _, raw in (pair.partition("=") for pair in parts.query.split("&")) if raw]
    return list(dict.fromkeys(found))


def shown_url(url: str) -> str:
    """
    ``url`` with its secrets (:func:`url_secrets`) replaced by ``***``: what may be shown or stored.

    :param url: A notify URL.
    """
    for secret in sorted(url_secrets(url), key=len, reverse=True):
        if secret:
            url = url.replace(secret, "***")
    return url


def url_origin(url: str) -> str:
    """
    ``scheme://host[:port]`` of ``url``, safe to log (no path, query or userinfo).

    :param url: A URL.
    """
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "(an unparsable URL)"
    return f"{parts.scheme}://{host}{port}" if parts.scheme else host or "(no host)"
