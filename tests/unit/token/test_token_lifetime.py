"""The token endpoint's ``expires_in`` is checked before a token is believed or shared.

The sandbox issues a real token but answers ``expires_in`` as a gateway rewrote it
(``SandboxConfig.token_expires_in``). What the sandbox received (token requests, reads) is counted.
"""

from __future__ import annotations

import time

import pytest

from airflow_provider_orange_sms.client import OrangeSMSClient
from airflow_provider_orange_sms.exceptions import TRANSIENT_ERRORS, OrangeSMSError
from airflow_provider_orange_sms.sandbox import SandboxConfig, SandboxServer
from airflow_provider_orange_sms.token.access_token import MAX_TOKEN_LIFETIME, token_lifetime
from tests.support.sandbox import FAST_RETRY

CONTRACTS = "/sms/admin/v1/contracts"


def _client(server: SandboxServer, cache_dir: str) -> OrangeSMSClient:
    return OrangeSMSClient.with_file_cache(
        cache_dir,
        base_url=server.url,
        client_id=server.client_id,
        client_secret=server.client_secret,
        retry=FAST_RETRY,
    )


def _reads(server: SandboxServer) -> int:
    return sum(r["path"] == CONTRACTS for r in server.state.requests)


@pytest.mark.parametrize(
    "expires_in",
    ["inf", "Infinity", 1e12, 10**400, "1e400"],
    ids=["inf-text", "Infinity-text", "1e12", "int-of-401-digits", "1e400-text"],
)
def test_a_huge_or_infinite_lifetime_is_capped_and_the_token_still_shared(expires_in, tmp_path):
    """``inf`` made the token never refresh in this process and, written to the file cache as
    ``Infinity``, unreadable by every other one (each fetched its own)."""
    with SandboxServer(config=SandboxConfig(dr_delay=None, token_expires_in=expires_in)) as server:
        first, second = _client(server, str(tmp_path)), _client(server, str(tmp_path))
        try:
            first.get_available_units()
            assert first._token is not None
            assert first._token.expires_at <= time.time() + MAX_TOKEN_LIFETIME
            second.get_available_units()  # another process on the machine: reuses the stored token
        finally:
            first.close()
            second.close()
        assert server.state.token_requests == 1
        assert _reads(server) == 2


@pytest.mark.parametrize("expires_in", [-5, 0, "0", 0.5, "nan", "soon", "", True, [3600], {"s": 3600}])
def test_a_lifetime_that_is_not_one_is_refused_naming_it(expires_in, tmp_path):
    """A negative or zero lifetime made every call fetch a new token (Orange allows ~50 a minute);
    text raised 'answered without an access_token', which it had not."""
    with SandboxServer(config=SandboxConfig(dr_delay=None, token_expires_in=expires_in)) as server:
        client = _client(server, str(tmp_path))
        try:
            with pytest.raises(OrangeSMSError) as err:
                client.get_available_units()
        finally:
            client.close()
        text = str(err.value)
        assert f"answered expires_in={repr(expires_in)[:40]}: not a token lifetime" in text
        assert server.url in text
        assert not isinstance(err.value, TRANSIENT_ERRORS)
        assert server.state.token_requests == 1  # not retried
        assert _reads(server) == 0  # nothing called with a token believed already expired
        assert not any(token in text for token in server.state.tokens)


@pytest.mark.parametrize("expires_in", ["3600", 3600, 120.5])
def test_a_normal_lifetime_is_kept(expires_in, tmp_path):
    # The control case: Orange's "3600" (a string) or a number.
    with SandboxServer(config=SandboxConfig(dr_delay=None, token_expires_in=expires_in)) as server:
        client = _client(server, str(tmp_path))
        try:
            before = time.time()
            client.get_available_units()
            client.get_available_units()
            assert client._token is not None
            lifetime = float(expires_in)
            assert before + lifetime <= client._token.expires_at <= time.time() + lifetime
        finally:
            client.close()
        assert server.state.token_requests == 1
        assert _reads(server) == 2


def test_no_lifetime_at_all_means_an_hour():
    # OAuth2 makes expires_in optional; the sandbox always sends one, so this is the function alone.
    assert token_lifetime(None, "http://127.0.0.1:1/oauth/v3/token") == 3600.0
