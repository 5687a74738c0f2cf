"""The wire client against the sandbox over real HTTP: endpoints, tokens, retries, errors."""

from __future__ import annotations

import itertools
import json
import logging
import socket
from collections import Counter

import pytest

from airflow_provider_orange_sms.client import OrangeSMSClient, RetryPolicy
from airflow_provider_orange_sms.exceptions import (
    OrangeSMSAuthError,
    OrangeSMSBadRequestError,
    OrangeSMSConnectionError,
    OrangeSMSError,
    OrangeSMSNotFoundError,
    OrangeSMSRateLimitError,
    OrangeSMSSendUncertainError,
    OrangeSMSServerError,
)
from airflow_provider_orange_sms.limit.file_limiter import LATE_WAKE_UP
from airflow_provider_orange_sms.sandbox import SandboxConfig, SandboxServer
from airflow_provider_orange_sms.token.token_cache import MemoryTokenCache
from tests.support.rate import judge_rate_at_release, tag_sends_with_their_slot
from tests.support.sandbox import FAST_RETRY

SEND_PATH = "/smsmessaging/v1/outbound/tel%3A%2B2250000/requests"


def api_requests(sandbox, path_part=""):
    return [r for r in sandbox.state.requests if path_part in r["path"]]


# -- sending -------------------------------------------------------------------------------------


def test_send_returns_the_resource_id_orange_stored(client, sandbox):
    resource_id = client.send_sms("+225 07-00-00-00-01", "Hello from Airflow")
    [message] = sandbox.state.messages
    assert message.resource_id == resource_id
    assert (message.address, message.sender_address, message.message) == (
        "tel:+2250700000001",
        "2250000",
        "Hello from Airflow",
    )
    # The sender is URL-encoded in the path (the sandbox refuses anything else).
    assert [r["path"] for r in api_requests(sandbox, "/smsmessaging")] == [SEND_PATH]


@pytest.mark.parametrize("text", ["Ça marche ✓ — مرحبا — 你好 👋🏾", "a" * 1530])
def test_text_arrives_intact(client, sandbox, text):
    client.send_sms("+2250700000001", text)
    assert sandbox.state.messages[0].message == text


@pytest.mark.parametrize("sender", ["2210000", "+2210000", "tel:+2210000"])
def test_sender_override_and_name(client, sandbox, sender):
    client.send_sms("tel:+221770000001", "hi", sender_address=sender, sender_name="Airflow")
    [message] = sandbox.state.messages
    assert (message.sender_address, message.sender_name, message.country) == ("2210000", "Airflow", "SEN")


def test_sender_from_country_when_none_configured(make_client, sandbox):
    client = make_client(sender_address=None, country="sen")
    client.send_sms("+221770000001", "hi")
    assert sandbox.state.messages[0].sender_address == "2210000"


@pytest.mark.parametrize(
    ("recipient", "message", "match"),
    [
        ("+22507000000a1", "hi", "'\\+22507000000a1'"),
        ("+2250700", "hi", "8 to 15 digits"),
        ("+2250700000000012", "hi", "8 to 15 digits"),
        ("+2250700000001", "", "empty"),
        ("+2250700000001", "   ", "empty"),
    ],
)
def test_bad_input_fails_before_any_request(client, sandbox, recipient, message, match):
    with pytest.raises(ValueError, match=match):
        client.send_sms(recipient, message)
    assert sandbox.state.requests == []  # not even a token request
    assert sandbox.state.token_requests == 0


def test_missing_sender_is_a_clear_error(make_client, sandbox):
    client = make_client(sender_address=None)
    with pytest.raises(ValueError, match="sender_address"):
        client.send_sms("+2250700000001", "hi")
    assert sandbox.state.requests == []


def test_unlisted_sender_name_is_a_policy_error_not_retried(client, sandbox):
    with pytest.raises(OrangeSMSBadRequestError) as err:
        client.send_sms("+2250700000001", "hi", sender_name="NotWhitelisted")
    assert err.value.status_code == 400  # Orange's page: "400 requestError"
    assert err.value.message_id == "POL0001"
    assert "NotWhitelisted" in str(err.value)
    assert len(api_requests(sandbox, SEND_PATH)) == 1
    assert sandbox.state.messages == []


def test_refused_number_is_a_bad_request_with_orange_text(client, sandbox):
    sandbox.state.rejected_recipients["tel:+2250700000666"] = "unknown subscriber"
    with pytest.raises(OrangeSMSBadRequestError, match="^Orange SMS API 400 SVC0004: No valid addresses"):
        client.send_sms("+2250700000666", "hi")
    assert len(api_requests(sandbox, SEND_PATH)) == 1


def test_no_units_left_is_a_policy_error(client, sandbox):
    sandbox.state.balances["CIV"] = 0
    with pytest.raises(OrangeSMSBadRequestError) as err:
        client.send_sms("+2250700000001", "hi")
    assert err.value.status_code == 403
    assert "no SMS units left for CIV" in str(err.value)


def test_message_too_long(make_client, sandbox):
    # The client's own limit lifted, so that Orange's refusal is what is tested.
    client = make_client(max_message_length=None)
    with pytest.raises(OrangeSMSBadRequestError, match="SVC0280"):
        client.send_sms("+2250700000001", "x" * 2000)


# -- administration ------------------------------------------------------------------------------


def test_balance_for_one_country_and_all_decreases_with_sends(client, sandbox):
    before_all = client.get_available_units()
    assert before_all == sum(sandbox.state.config.balances.values())
    assert client.get_available_units("CIV") == sandbox.state.config.balances["CIV"]
    client.send_sms("+2250700000001", "hi")
    client.send_sms("+2250700000002", "hi")
    assert client.get_available_units("civ") == sandbox.state.config.balances["CIV"] - 2
    assert client.get_available_units(" Civ ") == sandbox.state.config.balances["CIV"] - 2
    assert client.get_available_units() == before_all - 2
    contracts = client.get_contracts("CIV")
    [service_contract] = contracts["partnerContracts"]["contracts"][0]["serviceContracts"]
    assert service_contract["country"] == "CIV"
    assert api_requests(sandbox, "/sms/admin/v1/contracts")[-1]["path"] == "/sms/admin/v1/contracts"


def test_country_default_comes_from_the_client(make_client, sandbox):
    client = make_client(country="SEN")
    assert client.get_available_units() == sandbox.state.config.balances["SEN"]


def test_statistics_count_sends_per_country_and_app(client, sandbox):
    client.send_sms("+2250700000001", "hi")
    client.send_sms("+221770000001", "hi", sender_address="2210000")
    stats = client.get_statistics()
    per_country = {
        s["country"]: s["countryStatistics"]
        for s in stats["partnerStatistics"]["statistics"][0]["serviceStatistics"]
    }
    assert per_country == {
        "CIV": [{"applicationId": sandbox.client_id, "usage": 1}],
        "SEN": [{"applicationId": sandbox.client_id, "usage": 1}],
    }
    only_sen = client.get_statistics(country="SEN", app_id=sandbox.client_id)
    assert [s["country"] for s in only_sen["partnerStatistics"]["statistics"][0]["serviceStatistics"]] == [
        "SEN"
    ]
    assert (
        client.get_statistics(app_id="someone-else")["partnerStatistics"]["statistics"][0][
            "serviceStatistics"
        ]
        == []
    )


def test_purchase_orders(client, sandbox):
    all_orders = client.get_purchase_orders()["purchaseOrders"]
    assert {o["orderExecutioninformation"]["country"] for o in all_orders} == set(
        sandbox.state.config.balances
    )
    civ = client.get_purchase_orders("CIV")["purchaseOrders"]
    assert [o["orderExecutioninformation"]["country"] for o in civ] == ["CIV"]


def test_bad_country_fails_before_any_request(client, sandbox):
    with pytest.raises(ValueError, match="'Ivory Coast'"):
        client.get_contracts("Ivory Coast")
    assert sandbox.state.requests == []


# -- delivery receipt subscriptions --------------------------------------------------------------


def test_subscription_lifecycle(client, sandbox):
    first = client.create_delivery_receipt_subscription("https://example.invalid/dr")
    second = client.create_delivery_receipt_subscription("https://example.invalid/dr2")
    assert first != second
    # One URL per account: the second replaced the first.
    with pytest.raises(OrangeSMSNotFoundError):
        client.get_delivery_receipt_subscription(first)
    body = client.get_delivery_receipt_subscription(second)
    assert (
        body["deliveryReceiptSubscription"]["callbackReference"]["notifyURL"] == "https://example.invalid/dr2"
    )
    assert body["deliveryReceiptSubscription"]["resourceURL"].endswith(f"/subscriptions/{second}")
    client.delete_delivery_receipt_subscription(second)
    assert sandbox.state.subscriptions == {}
    with pytest.raises(OrangeSMSNotFoundError):
        client.delete_delivery_receipt_subscription(second)
    paths = [r["path"] for r in api_requests(sandbox, "/subscriptions")]
    assert "/smsmessaging/v1/outbound/tel%3A%2B2250000/subscriptions" in paths
    assert f"/smsmessaging/v1/outbound/tel%3A%2B2250000/subscriptions/{second}" in paths


def test_delete_retried_after_a_lost_answer_is_not_an_error(client, sandbox):
    """The first DELETE is processed but its answer lost; the retry's 404 means it is gone."""
    subscription_id = client.create_delivery_receipt_subscription("https://example.invalid/dr")
    sandbox.state.add_fault(kind="drop_after", path="/subscriptions/", method="DELETE")
    client.delete_delivery_receipt_subscription(subscription_id)
    statuses = [r["status"] for r in api_requests(sandbox, "/subscriptions/") if r["method"] == "DELETE"]
    assert statuses == ["204 then reset", 404]
    assert sandbox.state.subscriptions == {}


def test_delete_of_an_unknown_id_after_a_503_is_still_not_found(client, sandbox):
    """A 503 means Orange did nothing: the retry's 404 is the real answer, not 'already deleted'."""
    client.get_token()
    sandbox.state.add_fault(kind="status", status=503, path="/subscriptions/", method="DELETE")
    with pytest.raises(OrangeSMSNotFoundError):
        client.delete_delivery_receipt_subscription("no-such-subscription")
    statuses = [r["status"] for r in api_requests(sandbox, "/subscriptions/") if r["method"] == "DELETE"]
    assert statuses == [503, 404]


@pytest.mark.parametrize("url", ["", "not a url", "ftp://x/y", None])
def test_bad_notify_url(client, sandbox, url):
    with pytest.raises(ValueError, match="notify_url"):
        client.create_delivery_receipt_subscription(url)
    assert sandbox.state.requests == []


# -- tokens --------------------------------------------------------------------------------------


def test_one_token_for_many_calls_and_clients(make_client, sandbox):
    first, second = make_client(), make_client()
    first.get_available_units()
    second.get_available_units()
    first.send_sms("+2250700000001", "hi")
    assert sandbox.state.token_requests == 1


def test_token_request_format(make_client, sandbox):
    client = make_client(token_path="/oauth/v2/token")
    client.get_available_units()
    assert [r["path"] for r in api_requests(sandbox, "/oauth")] == ["/oauth/v2/token"]


def test_authorization_header_instead_of_id_and_secret(make_client, sandbox):
    import base64

    header = "Basic " + base64.b64encode(f"{sandbox.client_id}:{sandbox.client_secret}".encode()).decode()
    client = make_client(client_id=None, client_secret=None, authorization_header=header)
    assert client.client_id == sandbox.client_id
    client.send_sms("+2250700000001", "hi")
    assert len(sandbox.state.messages) == 1


def test_wrong_secret_fails_at_once_and_never_leaks(make_client, sandbox, caplog):
    caplog.set_level(logging.DEBUG)
    client = make_client(client_secret="wrong-secret-value")
    with pytest.raises(OrangeSMSAuthError, match="client id/secret") as err:
        client.get_available_units()
    assert sandbox.state.token_requests == 0  # the sandbox counts only tokens it issued
    assert len(api_requests(sandbox, "/oauth")) == 1  # not retried
    assert "wrong-secret-value" not in str(err.value)
    assert "wrong-secret-value" not in repr(client)
    assert "wrong-secret-value" not in caplog.text


def test_wrong_secret_in_oauth_shape_fails_at_once_too(make_client, sandbox):
    """Orange documents 401 code 41 (the default); the OAuth invalid_client shape is also seen."""
    sandbox.state.add_fault(kind="status", status=401, code="invalid_client", path="/oauth")
    with pytest.raises(OrangeSMSAuthError, match="client id/secret"):
        make_client(client_secret="wrong-secret-value").get_available_units()
    assert len(api_requests(sandbox, "/oauth")) == 1


@pytest.mark.parametrize("sandbox_config", [SandboxConfig(dr_delay=None, accept_json_everywhere=True)])
def test_every_call_sends_accept_json(client, sandbox):
    """Orange answers 406 without Accept: application/json; this sandbox checks it on every endpoint."""
    client.send_sms("+2250700000001", "hi")
    client.get_contracts()
    client.get_statistics()
    client.get_purchase_orders()
    subscription_id = client.create_delivery_receipt_subscription("https://example.com/receipts")
    client.get_delivery_receipt_subscription(subscription_id)
    client.delete_delivery_receipt_subscription(subscription_id)
    statuses = [r["status"] for r in sandbox.state.requests]
    assert 406 not in statuses
    assert len(statuses) == 8  # the token, then each call once


@pytest.mark.parametrize("sandbox_config", [SandboxConfig(dr_delay=None, accept_json_everywhere=True)])
def test_a_call_without_accept_json_is_refused_406(client, sandbox):
    client.session.headers.pop("Accept")
    with pytest.raises(OrangeSMSError, match="406"):
        client.get_contracts()
    assert [r["status"] for r in sandbox.state.requests] == [406]


@pytest.mark.parametrize("sandbox_config", [SandboxConfig(dr_delay=None, token_rate_limit=1)])
def test_token_cap_is_a_rate_limit_waited_as_orange_says(sandbox, cache_dir):
    def own_token_client():  # no shared cache: each asks the token endpoint
        return OrangeSMSClient(
            base_url=sandbox.url,
            client_id=sandbox.client_id,
            client_secret=sandbox.client_secret,
            token_cache=MemoryTokenCache(),
            state_dir=str(cache_dir),
            retry=FAST_RETRY,
        )

    own_token_client().get_token()
    second = own_token_client()
    waits = []
    second.sleep = waits.append
    with pytest.raises(OrangeSMSRateLimitError, match="429 53"):
        second.get_token()
    assert [r["status"] for r in api_requests(sandbox, "/oauth")] == [200] + [429] * FAST_RETRY.max_attempts
    assert all(0 < wait <= 60 for wait in waits)
    assert len(waits) == FAST_RETRY.max_attempts - 1


def test_changed_secret_never_reuses_the_old_token(make_client, sandbox):
    sandbox.state.config.clients["second-app"] = "second-secret"
    make_client().get_available_units()
    make_client(client_id="second-app", client_secret="second-secret").get_available_units()
    assert sandbox.state.token_requests == 2


@pytest.mark.parametrize(("expire", "code"), [("expire_tokens", 42), ("revoke_tokens", 41)])
def test_stale_token_is_replaced_and_the_call_retried_once(client, sandbox, expire, code):
    client.get_available_units()
    getattr(sandbox.state, expire)()
    client.send_sms("+2250700000001", "hi")
    assert sandbox.state.token_requests == 2
    statuses = [r["status"] for r in api_requests(sandbox, SEND_PATH)]
    assert statuses == [401, 201]
    assert len(sandbox.state.messages) == 1


def test_a_second_401_is_not_looped(client, sandbox):
    client.get_available_units()
    sandbox.state.add_fault(kind="status", status=401, path="/sms/admin", count=2)
    with pytest.raises(OrangeSMSAuthError):
        client.get_available_units()
    assert len(api_requests(sandbox, "/sms/admin")) == 3  # first call, then one retry after a new token


# -- limiter ------------------------------------------------------------------------------------


def test_sends_are_spaced_by_the_limiter_and_never_refused(client, sandbox, monkeypatch):
    """Orange's one-second window, judged at the instants the limiter released the sends."""
    released = judge_rate_at_release(sandbox, monkeypatch)
    tag_sends_with_their_slot(client)
    recipients = [f"+22507000000{i:02d}" for i in range(11)]
    for recipient in recipients:
        client.send_sms(recipient, "hi")
    assert sandbox.state.rate_limited == 0
    assert Counter(m.address for m in sandbox.state.messages) == Counter(f"tel:{r}" for r in recipients)
    assert len(released) == 11  # no 429, so no retry
    # a late wake-up within LATE_WAKE_UP keeps its turn without pushing the next slot back
    assert all(
        b - a >= client.limiter.interval - LATE_WAKE_UP - 1e-6 for a, b in itertools.pairwise(released)
    )


def test_sandbox_answers_429_when_the_limit_is_lifted(make_client, sandbox):
    sandbox.state.clock = lambda: 1000.0  # every send in the same instant: the window is exact
    client = make_client(rate_limit_per_second=None, retry=RetryPolicy(max_attempts=1))
    with pytest.raises(OrangeSMSRateLimitError) as err:
        for i in range(10):
            client.send_sms(f"+22507000000{i:02d}", "hi")
    assert err.value.retry_after == 1.0
    assert len(sandbox.state.messages) == 5


# -- retries -------------------------------------------------------------------------------------


def test_429_waits_and_retries(client, sandbox):
    sandbox.state.add_fault(kind="status", status=429, path=SEND_PATH, count=2, retry_after=0)
    client.send_sms("+2250700000001", "hi")
    assert [r["status"] for r in api_requests(sandbox, SEND_PATH)] == [429, 429, 201]
    assert len(sandbox.state.messages) == 1


def test_429_waits_what_retry_after_says(client, sandbox):
    waits = []
    client.sleep = waits.append
    sandbox.state.add_fault(kind="status", status=429, path=SEND_PATH, count=2, retry_after=7)
    client.send_sms("+2250700000001", "hi")
    assert waits == [7.0, 7.0]
    assert len(sandbox.state.messages) == 1


def test_5xx_backoff_doubles_up_to_the_cap(make_client, sandbox):
    client = make_client(retry=RetryPolicy(max_attempts=6, backoff_initial=1.0, backoff_max=4.0))
    client.get_token()
    waits = []
    client.sleep = waits.append
    sandbox.state.add_fault(kind="status", status=503, path="/sms/admin", count=5)
    client.get_contracts()
    assert len(waits) == 5
    # Exponential from 1 s, capped at 4 s, each with up to 0.5 s of jitter.
    for wait, base in zip(waits, [1.0, 2.0, 4.0, 4.0, 4.0], strict=True):
        assert base <= wait <= min(base + 0.5, 4.0)


def test_429_gives_up_after_max_attempts(client, sandbox):
    sandbox.state.add_fault(kind="status", status=429, path="/sms/admin", count=10, retry_after=0)
    with pytest.raises(OrangeSMSRateLimitError):
        client.get_contracts()
    assert len(api_requests(sandbox, "/sms/admin")) == FAST_RETRY.max_attempts


def test_too_long_retry_after_fails_instead_of_sleeping(client, sandbox):
    sandbox.state.add_fault(kind="status", status=429, path="/sms/admin", retry_after=3600)
    with pytest.raises(OrangeSMSRateLimitError):
        client.get_contracts()
    assert len(api_requests(sandbox, "/sms/admin")) == 1


@pytest.mark.parametrize("status", [429, 503])
def test_send_retried_when_orange_says_it_did_not_take_it(client, sandbox, status):
    sandbox.state.add_fault(kind="status", status=status, path=SEND_PATH, count=2)
    client.send_sms("+2250700000001", "hi")
    assert [r["status"] for r in api_requests(sandbox, SEND_PATH)] == [status, status, 201]
    assert len(sandbox.state.messages) == 1


@pytest.mark.parametrize("status", [500, 502, 504])
def test_server_or_gateway_error_on_send_is_uncertain_and_not_retried(client, sandbox, status):
    sandbox.state.add_fault(kind="status", status=status, path=SEND_PATH)
    with pytest.raises(OrangeSMSSendUncertainError) as err:
        client.send_sms("+2250700000001", "hi")
    assert err.value.status_code == status
    assert len(api_requests(sandbox, SEND_PATH)) == 1


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_reads_retried_on_5xx(client, sandbox, status):
    sandbox.state.add_fault(kind="status", status=status, path="/sms/admin", count=2)
    assert client.get_available_units() > 0
    assert [r["status"] for r in api_requests(sandbox, "/sms/admin")] == [status, status, 200]


def test_5xx_gives_up_after_max_attempts(client, sandbox):
    sandbox.state.add_fault(kind="status", status=503, path="/sms/admin", count=10)
    with pytest.raises(OrangeSMSServerError, match="503 5"):
        client.get_purchase_orders()
    assert len(api_requests(sandbox, "/sms/admin")) == FAST_RETRY.max_attempts


@pytest.mark.parametrize("status", [400, 403, 404])
def test_client_errors_never_retried(client, sandbox, status):
    sandbox.state.add_fault(kind="status", status=status, path="/sms/admin")
    with pytest.raises((OrangeSMSAuthError, OrangeSMSNotFoundError, OrangeSMSBadRequestError.__base__)):
        client.get_contracts()
    assert len(api_requests(sandbox, "/sms/admin")) == 1


@pytest.mark.parametrize("path", [SEND_PATH, "/oauth"])
def test_code_53_under_403_is_a_rate_limit_retried_and_sent_once(client, sandbox, path):
    """Orange's older SDK lists "too many requests, 53" under 403: code 53 means wait and retry."""
    sandbox.state.add_fault(kind="status", status=403, code=53, path=path, retry_after=0)
    client.send_sms("+2250700000001", "hi")
    assert [r["status"] for r in api_requests(sandbox, path)] == [403, 201 if path == SEND_PATH else 200]
    assert len(sandbox.state.messages) == 1


def test_code_53_under_403_gives_up_as_a_rate_limit(client, sandbox):
    sandbox.state.add_fault(kind="status", status=403, code=53, path="/sms/admin", count=10, retry_after=0)
    with pytest.raises(OrangeSMSRateLimitError, match="403 53"):
        client.get_contracts()
    assert len(api_requests(sandbox, "/sms/admin")) == FAST_RETRY.max_attempts


def test_access_denied_is_an_auth_error(client, sandbox):
    sandbox.state.add_fault(kind="status", status=403, path="/sms/admin")
    with pytest.raises(OrangeSMSAuthError, match="403 50: Access denied"):
        client.get_contracts()


@pytest.mark.parametrize("kind", ["drop_before", "drop_after"])
def test_reset_connection_on_read_is_retried(client, sandbox, kind):
    client.get_token()
    sandbox.state.add_fault(kind=kind, path="/sms/admin")
    assert client.get_available_units() > 0
    assert len(api_requests(sandbox, "/sms/admin")) == 2


def test_reset_before_processing_a_send_is_uncertain_not_retried(client, sandbox):
    client.get_token()
    sandbox.state.add_fault(kind="drop_before", path=SEND_PATH)
    with pytest.raises(OrangeSMSSendUncertainError, match="may have"):
        client.send_sms("+2250700000001", "hi")
    assert len(api_requests(sandbox, SEND_PATH)) == 1
    assert sandbox.state.messages == []


def test_reset_after_orange_accepted_a_send_never_duplicates(client, sandbox):
    client.get_token()
    sandbox.state.add_fault(kind="drop_after", path=SEND_PATH)
    with pytest.raises(OrangeSMSSendUncertainError):
        client.send_sms("+2250700000001", "hi")
    assert len(sandbox.state.messages) == 1  # accepted once, and not sent again


def test_read_timeout_on_a_read_is_retried(make_client, sandbox):
    client = make_client(read_timeout=1.0)  # generous: the retried request must answer within it
    client.get_token()
    sandbox.state.add_fault(kind="delay", delay=3.0, path="/sms/admin")
    assert client.get_available_units() > 0
    assert len(api_requests(sandbox, "/sms/admin")) == 2


def test_read_timeout_on_a_send_is_uncertain(make_client, sandbox):
    client = make_client(read_timeout=0.3)  # the send is delayed 3 s: it always times out
    client.get_token()
    sandbox.state.add_fault(kind="delay", delay=3.0, path=SEND_PATH)
    with pytest.raises(OrangeSMSSendUncertainError, match="ReadTimeout"):
        client.send_sms("+2250700000001", "hi")
    assert len(api_requests(sandbox, SEND_PATH)) == 1


def test_token_endpoint_5xx_is_retried(client, sandbox):
    sandbox.state.add_fault(kind="status", status=503, path="/oauth")
    client.get_available_units()
    assert [r["status"] for r in api_requests(sandbox, "/oauth")] == [503, 200]


def test_connection_refused_is_retried_a_bounded_number_of_times(cache_dir):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # Nothing listens on `port` now.
    client = OrangeSMSClient(
        base_url=f"http://127.0.0.1:{port}",
        client_id="a",
        client_secret="b",
        sender_address="2250000",
        retry=RetryPolicy(max_attempts=3, backoff_initial=0.01, backoff_max=0.02),
        state_dir=str(cache_dir),
    )
    attempts = []
    original = client.session.request

    def counting(*args, **kwargs):
        attempts.append(args[1])
        return original(*args, **kwargs)

    client.session.request = counting  # type: ignore[method-assign]
    with pytest.raises(OrangeSMSConnectionError) as err:
        client.send_sms("+2250700000001", "hi")
    assert not isinstance(err.value, OrangeSMSSendUncertainError)  # nothing was sent: safe to retry
    assert len(attempts) == 3


def test_a_host_that_does_not_resolve_fails_at_once_naming_it(cache_dir):
    """A name that does not resolve will not resolve on the next try: no retries, the host named."""
    client = OrangeSMSClient(
        base_url="https://orange-sms.invalid",  # RFC 2606: never resolves, no network needed
        client_id="a",
        client_secret="b",
        sender_address="2250000",
        retry=RetryPolicy(max_attempts=4, backoff_initial=0.01, backoff_max=0.02),
        state_dir=str(cache_dir),
    )
    attempts = []
    original = client.session.request

    def counting(*args, **kwargs):
        attempts.append(args[1])
        return original(*args, **kwargs)

    client.session.request = counting  # type: ignore[method-assign]
    with pytest.raises(OrangeSMSConnectionError) as err:
        client.send_sms("+2250700000001", "hi")
    assert attempts == ["https://orange-sms.invalid/oauth/v3/token"]
    assert "host name 'orange-sms.invalid' not found" in str(err.value)
    assert "HTTPSConnectionPool" not in str(err.value)
    client.close()


def test_connection_refused_then_server_up_succeeds(cache_dir):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = OrangeSMSClient(
        base_url=f"http://127.0.0.1:{port}",
        client_id="sandbox-client-id",
        client_secret="sandbox-client-secret",
        sender_address="2250000",
        retry=RetryPolicy(max_attempts=3, backoff_initial=0.01),
        state_dir=str(cache_dir),
    )
    original = client.session.request
    servers: list[SandboxServer] = []

    def start_server_after_first_refusal(*args, **kwargs):
        try:
            return original(*args, **kwargs)
        finally:
            if not servers:
                servers.append(SandboxServer(port=port, config=SandboxConfig(dr_delay=None)).start())

    client.session.request = start_server_after_first_refusal  # type: ignore[method-assign]
    try:
        client.send_sms("+2250700000001", "hi")
    finally:
        for server in servers:
            server.stop()
    assert len(servers[0].state.messages) == 1
    assert servers[0].state.token_requests == 1


# -- secrets -------------------------------------------------------------------------------------


def test_secret_and_token_never_in_logs_or_repr(client, sandbox, caplog):
    caplog.set_level(logging.DEBUG)
    sandbox.state.add_fault(kind="status", status=503, path="/sms/admin")
    client.get_available_units()
    sandbox.state.expire_tokens()
    client.send_sms("+2250700000001", "hi")
    tokens = list(sandbox.state.tokens)
    text = caplog.text + repr(client) + repr(client._token) + json.dumps(sandbox.state.snapshot())
    for secret in [sandbox.client_secret, *tokens]:
        assert secret not in text


class _BrokenCache:
    """A token store whose disk is gone: every operation fails."""

    def get(self, key):
        return None

    def set(self, key, token):
        raise OSError("read-only file system")

    def delete(self, key, token):
        raise OSError("read-only file system")

    def lock(self, key, timeout=None):
        raise OSError("read-only file system")

    def get_failure(self, key):
        raise OSError("read-only file system")

    def set_failure(self, key, failure):
        raise OSError("read-only file system")

    def clear_failure(self, key):
        raise OSError("read-only file system")


def test_unusable_token_cache_does_not_stop_sending(sandbox, cache_dir, caplog):
    client = OrangeSMSClient(
        base_url=sandbox.url,
        client_id=sandbox.client_id,
        client_secret=sandbox.client_secret,
        sender_address="2250000",
        token_cache=_BrokenCache(),
        state_dir=str(cache_dir),
        retry=FAST_RETRY,
    )
    client.send_sms("+2250700000001", "hi")
    client.send_sms("+2250700000002", "hi")
    assert len(sandbox.state.messages) == 2
    assert sandbox.state.token_requests == 1  # still reused within the client
    assert "token cache unavailable" in caplog.text
