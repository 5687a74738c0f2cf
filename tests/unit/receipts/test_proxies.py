"""The client address behind reverse proxies: uvicorn's walk gives the hand-written walk's answers."""

from __future__ import annotations

import ipaddress

import pytest

from airflow_provider_orange_sms.receipts import proxies
from airflow_provider_orange_sms.receipts.app import parse_networks

PROXIES = parse_networks("10.0.0.0/8, 127.0.0.1, 2001:db8:1::/48", "delivery_receipts_trusted_proxies")


def hand_written_walk(peer, forwarded_for, trusted):
    """The receiver's walk before uvicorn's middleware replaced it, kept to compare answers."""
    try:
        address = ipaddress.ip_address(peer or "")
    except ValueError:
        return None
    if not forwarded_for or not proxies.in_networks(address, trusted):
        return address
    for hop in reversed([h.strip() for h in forwarded_for.split(",")]):
        try:
            address = ipaddress.ip_address(hop)
        except ValueError:
            return None
        if not proxies.in_networks(address, trusted):
            return address
    return address


# (peer, X-Forwarded-For, the client address; None: refused)
CASES = [
    # No proxy in the way, or an untrusted peer: the peer, whatever the header says (it could be forged).
    ("80.12.13.2", None, "80.12.13.2"),
    ("80.12.13.2", "198.51.100.7", "80.12.13.2"),
    ("192.0.2.1", "80.12.13.2, 10.0.0.7", "192.0.2.1"),
    ("10.0.0.5", None, "10.0.0.5"),
    ("10.0.0.5", "", "10.0.0.5"),
    # From a trusted proxy: the right-most hop that is not a trusted proxy.
    ("10.0.0.5", "80.12.13.2", "80.12.13.2"),
    ("10.0.0.5", "198.51.100.7, 80.12.13.2", "80.12.13.2"),
    ("10.0.0.5", "198.51.100.7, 80.12.13.2, 10.0.0.7", "80.12.13.2"),
    ("10.0.0.5", "1.2.3.4,80.12.13.2 ,  10.1.1.1,127.0.0.1", "80.12.13.2"),
    ("127.0.0.1", "1.2.3.4, 80.12.13.2, 10.1.1.1", "80.12.13.2"),
    # Every hop a trusted proxy: the left-most.
    ("10.0.0.5", "10.0.0.9, 10.0.0.7", "10.0.0.9"),
    ("10.0.0.5", "10.0.0.5", "10.0.0.5"),
    # A malformed hop on the way: refused; one beyond the first untrusted hop is never read.
    ("10.0.0.5", "garbage", None),
    ("10.0.0.5", "80.12.13.2, garbage", None),
    ("10.0.0.5", "garbage, 80.12.13.2", "80.12.13.2"),
    ("10.0.0.5", "80.12.13.2, garbage, 10.0.0.7", None),
    ("10.0.0.5", "80.12.13.2, ", None),
    ("10.0.0.5", ", ", None),
    ("10.0.0.5", ", 10.0.0.7", None),
    ("10.0.0.5", "80.12.13.2:443", None),
    ("10.0.0.5", "[2001:db8::7]:443", None),
    ("10.0.0.5", "example.com", None),
    ("10.0.0.5", "80.12.13.\u0663", None),
    # An unreadable peer: refused.
    ("testclient", "80.12.13.2", None),
    ("", None, None),
    (None, None, None),
    # IPv6, and IPv4 peers or hops written IPv4-mapped (a dual-stack socket): trusted as their IPv4 form.
    ("2001:db8:1::5", "2001:db8:2::9", "2001:db8:2::9"),
    ("2001:db8:1::5", "80.12.13.2, 2001:db8:1::7", "80.12.13.2"),
    ("::ffff:10.0.0.5", "80.12.13.2", "80.12.13.2"),
    ("::ffff:10.0.0.5", "80.12.13.2, ::ffff:10.0.0.7", "80.12.13.2"),
    ("::ffff:192.0.2.1", "80.12.13.2", "::ffff:192.0.2.1"),
    ("10.0.0.5", "::ffff:80.12.13.2", "::ffff:80.12.13.2"),
]


@pytest.mark.parametrize(("peer", "forwarded_for", "expected"), CASES)
def test_uvicorns_walk_gives_the_hand_written_answers(peer, forwarded_for, expected):
    answer = proxies.client_address(peer, forwarded_for, PROXIES)
    assert answer == (ipaddress.ip_address(expected) if expected else None)
    assert answer == hand_written_walk(peer, forwarded_for, PROXIES)


@pytest.mark.parametrize(
    "trusted",
    ["", "::/0", "::ffff:10.0.0.5", "::ffff:0:0/96", "0.0.0.0/0", "10.0.0.5, ::/0", "2001:db8::/32"],
)
@pytest.mark.parametrize(
    ("peer", "forwarded_for"),
    [
        ("10.0.0.5", "80.12.13.2"),
        ("::ffff:10.0.0.5", "80.12.13.2"),
        ("::ffff:10.0.0.5", "2001:db8::9, ::ffff:10.0.0.6"),
        ("2001:db8::5", "80.12.13.2, ::ffff:10.0.0.6"),
        ("2001:db8::5", "2001:db8::9, 10.0.0.6"),
    ],
)
def test_ipv6_networks_that_cover_ipv4_mapped_addresses_answer_as_before(trusted, peer, forwarded_for):
    # The hand-written walk tried a mapped address as its IPv4 form only: "::/0" never trusted an IPv4 peer.
    networks = parse_networks(trusted, "delivery_receipts_trusted_proxies")
    answer = proxies.client_address(peer, forwarded_for, networks)
    assert answer is not None
    assert answer == hand_written_walk(peer, forwarded_for, networks)
