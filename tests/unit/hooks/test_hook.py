"""OrangeSMSHook: connection to client, provider registration, connection form, test_connection."""

from __future__ import annotations

import base64
import json
import logging

import pytest

from airflow_provider_orange_sms.client import OrangeSMSClient
from airflow_provider_orange_sms.exceptions import OrangeSMSAuthError
from airflow_provider_orange_sms.get_provider_info import get_provider_info
from airflow_provider_orange_sms.hooks.orange_sms import OrangeSMSHook, VariableTokenCache
from airflow_provider_orange_sms.token.token_cache import FileTokenCache
from tests.support.sandbox import connection_json


def use_connection(monkeypatch, value, conn_id="orange_sms_default"):
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", value)


def test_hook_speaks_every_method_through_the_connection(orange_conn, sandbox):
    hook = OrangeSMSHook()
    assert hook.orange_sms_conn_id == "orange_sms_default"
    resource_id = hook.send_sms("tel:+2250700000001", "Bonjour")
    assert [m.resource_id for m in sandbox.state.messages] == [resource_id]
    assert hook.get_available_units("CIV") == sandbox.state.config.balances["CIV"] - 1
    assert "partnerContracts" in hook.get_contracts()
    assert "partnerStatistics" in hook.get_statistics(country="CIV", app_id=sandbox.client_id)
    assert "purchaseOrders" in hook.get_purchase_orders("SEN")
    subscription_id = hook.create_delivery_receipt_subscription("https://example.invalid/dr")
    assert hook.get_delivery_receipt_subscription(subscription_id)["deliveryReceiptSubscription"]
    hook.delete_delivery_receipt_subscription(subscription_id)
    assert sandbox.state.subscriptions == {}
    assert hook.get_conn() is hook.client
    assert sandbox.state.token_requests == 1


def test_connection_extras_reach_the_client(sandbox, cache_dir, monkeypatch):
    use_connection(
        monkeypatch,
        connection_json(
            sandbox,
            sender_address="tel:+2210000",
            sender_name="Airflow",
            country="sen",
            token_path="/oauth/v2/token",
            rate_limit_per_second="2",
            connect_timeout="3",
            read_timeout="7",
            max_attempts="2",
            retry_backoff="0.5",
        ),
    )
    client = OrangeSMSHook().client
    assert (client.retry.max_attempts, client.retry.backoff_initial) == (2, 0.5)
    assert (client.sender_address, client.sender_name, client.country) == ("2210000", "Airflow", "SEN")
    assert client.token_url == f"{sandbox.url}/oauth/v2/token"
    assert client.limiter is not None
    assert client.limiter.rate_per_second == 2
    assert client.timeout == (3.0, 7.0)
    assert isinstance(client._token_cache, FileTokenCache)
    assert client._token_cache.directory == cache_dir
    OrangeSMSHook().send_sms("+221770000001", "hi")
    assert sandbox.state.messages[0].sender_name == "Airflow"


def test_defaults_for_an_almost_empty_connection(monkeypatch, cache_dir):
    use_connection(monkeypatch, json.dumps({"conn_type": "orange_sms", "login": "id", "password": "secret"}))
    client = OrangeSMSHook().client
    assert client.base_url == "https://api.orange.com"
    assert client.token_url == "https://api.orange.com/oauth/v3/token"
    assert client.limiter is not None
    assert client.limiter.rate_per_second == 5


def test_host_without_scheme_and_port(monkeypatch, cache_dir):
    use_connection(
        monkeypatch,
        json.dumps(
            {"conn_type": "orange_sms", "host": "localhost", "port": 8089, "login": "i", "password": "s"}
        ),
    )
    assert OrangeSMSHook().client.base_url == "https://localhost:8089"


def test_zero_in_an_extra_is_kept_not_replaced_by_the_default(sandbox, cache_dir, monkeypatch):
    use_connection(monkeypatch, connection_json(sandbox, retry_backoff=0, rate_limit_per_second="0"))
    client = OrangeSMSHook().client
    assert client.retry.backoff_initial == 0
    assert client.limiter is None  # 0 lifts the limit


@pytest.mark.parametrize(
    ("extra", "value"),
    [("read_timeout", "soon"), ("max_attempts", 0), ("rate_limit_per_second", -5), ("retry_backoff", "nan")],
)
def test_bad_number_in_an_extra_is_named(sandbox, cache_dir, monkeypatch, extra, value):
    use_connection(monkeypatch, connection_json(sandbox, **{extra: value}))
    with pytest.raises(ValueError, match=f"Invalid connection extra {extra}={value!r}"):
        OrangeSMSHook().send_sms("+2250700000001", "hi")
    assert sandbox.state.requests == []


def test_authorization_header_extra(sandbox, monkeypatch, cache_dir):
    header = "Basic " + base64.b64encode(f"{sandbox.client_id}:{sandbox.client_secret}".encode()).decode()
    use_connection(
        monkeypatch,
        json.dumps(
            {"conn_type": "orange_sms", "host": sandbox.url, "extra": {"authorization_header": header}}
        ),
    )
    ok, message = OrangeSMSHook().test_connection()
    assert ok, message


@pytest.mark.parametrize(("choice", "cls"), [("file", FileTokenCache), ("variable", VariableTokenCache)])
def test_auth_cache_setting(sandbox, monkeypatch, cache_dir, choice, cls):
    use_connection(monkeypatch, connection_json(sandbox, auth_cache=choice))
    assert isinstance(OrangeSMSHook().client._token_cache, cls)


def test_auth_cache_none_fetches_per_client(sandbox, monkeypatch, cache_dir):
    use_connection(monkeypatch, connection_json(sandbox, auth_cache="none"))
    OrangeSMSHook().get_available_units()
    OrangeSMSHook().get_available_units()
    assert sandbox.state.token_requests == 2
    assert not list(cache_dir.glob("token-*.json"))


def test_bad_auth_cache_setting(sandbox, monkeypatch, cache_dir):
    use_connection(monkeypatch, connection_json(sandbox, auth_cache="memcached"))
    with pytest.raises(ValueError, match="'memcached'"):
        _ = OrangeSMSHook().client


def test_missing_credentials(monkeypatch, cache_dir):
    use_connection(monkeypatch, json.dumps({"conn_type": "orange_sms"}))
    with pytest.raises(ValueError, match="credentials missing"):
        _ = OrangeSMSHook().client


def test_test_connection_success(orange_conn, sandbox):
    ok, message = OrangeSMSHook().test_connection()
    assert ok
    assert sandbox.url in message
    assert str(sum(sandbox.state.config.balances.values())) in message
    assert sandbox.state.messages == []  # a cheap call: nothing sent


def test_test_connection_wrong_secret_says_why_without_the_secret(sandbox, monkeypatch, cache_dir, caplog):
    caplog.set_level(logging.DEBUG)
    conn = json.loads(connection_json(sandbox))
    conn["password"] = "a-wrong-secret-42"
    use_connection(monkeypatch, json.dumps(conn))
    ok, message = OrangeSMSHook().test_connection()
    assert not ok
    assert "rejected" in message
    assert "OrangeSMSAuthError" in message
    assert "a-wrong-secret-42" not in message
    assert "a-wrong-secret-42" not in caplog.text


def test_test_connection_asks_again_on_every_press(sandbox, monkeypatch, cache_dir):
    """The second press said "a token request failed moments ago": a person pressing Test wants an answer."""
    conn = json.loads(connection_json(sandbox))
    conn["password"] = "a-wrong-secret-42"
    use_connection(monkeypatch, json.dumps(conn))
    messages = [OrangeSMSHook().test_connection()[1] for _ in range(2)]
    token_requests = [r for r in sandbox.state.requests if r["path"].startswith("/oauth")]
    assert len(token_requests) == 2
    assert all("rejected" in message and "moments ago" not in message for message in messages)
    # A send still meets the remembered failure instead of asking the token endpoint a third time.
    with pytest.raises(OrangeSMSAuthError, match="moments ago"):
        OrangeSMSHook().get_conn().get_available_units()
    assert len([r for r in sandbox.state.requests if r["path"].startswith("/oauth")]) == 2


def test_test_connection_unreachable(monkeypatch, cache_dir):
    use_connection(
        monkeypatch,
        json.dumps(
            {
                "conn_type": "orange_sms",
                "host": "http://127.0.0.1:9",
                "login": "i",
                "password": "s",
                "extra": {"max_attempts": 1},
            }
        ),
    )
    ok, message = OrangeSMSHook().test_connection()
    assert not ok
    assert "OrangeSMSConnectionError" in message


def test_test_connection_to_a_wrong_host_says_why_in_one_short_line(monkeypatch, cache_dir):
    """A wrong host showed urllib3's ~300-character message, the cause at its far end."""
    import socket

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    conn = {"conn_type": "orange_sms", "host": f"http://127.0.0.1:{port}", "login": "i", "password": "s"}
    use_connection(monkeypatch, json.dumps({**conn, "extra": {"retry_backoff": 0.01}}))
    ok, message = OrangeSMSHook().test_connection()
    assert not ok
    assert f"cannot connect to http://127.0.0.1:{port} (connection refused)" in message
    assert "HTTPConnectionPool" not in message
    assert len(message) < 150


def test_test_connection_tries_twice_not_max_attempts(sandbox, monkeypatch, cache_dir):
    """The UI's Test waited through a task's five tries and their backoff (about 16 s)."""
    use_connection(monkeypatch, connection_json(sandbox, max_attempts=5, retry_backoff=0.01))
    sandbox.state.add_fault(kind="status", status=503, path="/oauth/v3/token", count=10)
    ok, message = OrangeSMSHook().test_connection()
    assert not ok
    assert "503" in message
    token_requests = [r for r in sandbox.state.requests if r["path"].startswith("/oauth/v3/token")]
    assert len(token_requests) == 2


def test_hook_repr_hides_secrets(orange_conn, sandbox):
    hook = OrangeSMSHook()
    hook.get_available_units()
    text = repr(hook) + repr(hook.client) + repr(hook.client._token)
    assert sandbox.client_secret not in text
    assert all(token not in text for token in sandbox.state.tokens)


def test_secrets_the_client_derives_are_masked_in_logs(orange_conn, sandbox):
    """The Basic credentials and every access token go to Airflow's log masker, not only the password."""
    try:
        from airflow.sdk.log import _secrets_masker
    except ImportError:  # Airflow < 3.3
        from airflow.sdk.execution_time.secrets_masker import _secrets_masker

    hook = OrangeSMSHook()
    hook.get_available_units()
    basic = hook.client._authorization.split(" ", 1)[1]
    [token] = sandbox.state.tokens
    line = f"Authorization: Basic {basic} Bearer {token} secret {sandbox.client_secret}"
    redacted = _secrets_masker().redact(line)
    assert basic not in redacted
    assert token not in redacted
    assert sandbox.client_secret not in redacted


def test_expired_token_through_the_hook(orange_conn, sandbox):
    hook = OrangeSMSHook()
    hook.get_available_units()
    sandbox.state.expire_tokens()
    sandbox.state.config.clients.clear()  # the refresh will now be refused
    with pytest.raises(OrangeSMSAuthError, match="rejected"):
        hook.send_sms("+2250700000001", "hi")
    assert sandbox.state.messages == []


# -- registration and connection form ------------------------------------------------------------


def test_provider_info_is_registered_with_airflow():
    from airflow.providers_manager import ProvidersManager

    manager = ProvidersManager()
    assert "airflow-provider-orange-sms" in manager.providers
    try:
        from airflow.sdk.providers_manager_runtime import ProvidersManagerTaskRuntime
    except ImportError:  # Airflow < 3.2
        hook_info = manager.hooks["orange_sms"]
    else:
        hook_info = ProvidersManagerTaskRuntime().hooks["orange_sms"]
    assert hook_info is not None
    assert hook_info.hook_class_name == "airflow_provider_orange_sms.hooks.orange_sms.OrangeSMSHook"
    assert hook_info.connection_id_attribute_name == "orange_sms_conn_id"
    import airflow
    from packaging.version import Version

    if Version(airflow.__version__) < Version("3.2"):
        pytest.skip("Airflow < 3.2 ignores provider-info conn-fields/ui-field-behaviour")
    behaviour = manager.field_behaviours["orange_sms"]
    assert behaviour["relabeling"] == {"login": "Client ID", "password": "Client Secret", "host": "Base URL"}
    assert {"schema", "port"} <= set(behaviour["hidden_fields"])
    assert behaviour["placeholders"]["extra__orange_sms__sender_address"] == "2250000"
    widgets = manager.connection_form_widgets
    for field in (
        "authorization_header",
        "sender_address",
        "sender_name",
        "country",
        "token_path",
        "rate_limit_per_second",
        "auth_cache",
        "connect_timeout",
        "read_timeout",
        "max_attempts",
        "retry_backoff",
    ):
        assert f"extra__orange_sms__{field}" in widgets, field
    assert "extra__orange_sms__token_cache" not in widgets  # still read, no longer offered
    assert widgets["extra__orange_sms__authorization_header"].is_sensitive
    assert widgets["extra__orange_sms__sender_address"].field["schema"]["title"] == "Sender Address"


def test_connection_get_hook_builds_our_hook(orange_conn):
    from airflow_provider_orange_sms.version_compat import BaseHook

    conn = BaseHook.get_connection("orange_sms_default")
    hook = conn.get_hook()
    assert isinstance(hook, OrangeSMSHook)


def test_provider_info_matches_the_hook():
    [conn_type] = get_provider_info()["connection-types"]
    assert conn_type["connection-type"] == OrangeSMSHook.conn_type
    assert conn_type["hook-name"] == OrangeSMSHook.hook_name
    module, _, name = conn_type["hook-class-name"].rpartition(".")
    assert (module, name) == (OrangeSMSHook.__module__, OrangeSMSHook.__name__)


def test_the_hook_closes_at_the_end_of_a_with_block_and_opens_again_on_use(orange_conn, sandbox, monkeypatch):
    closed = []
    close = OrangeSMSClient.close
    monkeypatch.setattr(OrangeSMSClient, "close", lambda client: (closed.append(client), close(client)))
    with OrangeSMSHook() as hook:
        units = hook.get_available_units("CIV")
    assert len(closed) == 1
    assert hook.get_available_units("CIV") == units  # a new client
    hook.close()
    assert len(closed) == 2
    assert closed[0] is not closed[1]
