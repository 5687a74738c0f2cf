"""The hook validates and normalises the whole connection when it builds the client,
naming the bad field, instead of failing (or misrouting) at the first request."""

from __future__ import annotations

import json
from collections import Counter
from urllib.parse import urlsplit

import pytest

from airflow_provider_orange_sms.get_provider_info import get_provider_info
from airflow_provider_orange_sms.hooks.orange_sms import OrangeSMSHook
from airflow_provider_orange_sms.sandbox import SandboxConfig
from tests.support.sandbox import connection_json


def use(monkeypatch, value):
    monkeypatch.setenv("AIRFLOW_CONN_ORANGE_SMS_DEFAULT", value)


def received(sandbox):
    return Counter(m.address for m in sandbox.state.messages)


def conn(sandbox, **fields):
    extra = fields.pop("extra", {})
    value = json.loads(connection_json(sandbox, **extra))
    value.update(fields)
    return json.dumps(value)


@pytest.mark.parametrize("sandbox_config", [SandboxConfig(dr_delay=None, path_prefix="/base")])
def test_port_field_goes_into_the_netloc_before_the_path(sandbox, cache_dir, monkeypatch):
    port = urlsplit(sandbox.url).port
    use(monkeypatch, conn(sandbox, host="http://127.0.0.1/base", port=port))
    hook = OrangeSMSHook()
    # Before: http://127.0.0.1/base:PORT, and the credentials went to port 80.
    assert hook.client.base_url == f"http://127.0.0.1:{port}/base"
    assert hook.client.token_url == f"http://127.0.0.1:{port}/base/oauth/v3/token"
    hook.send_sms("+2250700000001", "hi")
    assert received(sandbox) == {"tel:+2250700000001": 1}
    assert {r["path"] for r in sandbox.state.requests} == {
        "/oauth/v3/token",
        "/smsmessaging/v1/outbound/tel%3A%2B2250000/requests",
    }


@pytest.mark.parametrize("suffix", ["?tenant=1", "/?a=b", "#frag"])
def test_query_or_fragment_in_the_host_is_refused(sandbox, cache_dir, monkeypatch, suffix):
    host = sandbox.url + suffix
    use(monkeypatch, conn(sandbox, host=host))
    with pytest.raises(ValueError, match="Invalid connection host") as err:
        OrangeSMSHook().send_sms("+2250700000001", "hi")
    assert repr(host) in str(err.value)
    assert sandbox.state.requests == []


@pytest.mark.parametrize(
    ("extra", "value"),
    [
        ("read_timeout", "inf"),
        ("connect_timeout", "Infinity"),
        ("read_timeout", "1e999"),
        ("rate_limit_per_second", "inf"),
        ("rate_limit_per_second", 0.001),
        ("rate_limit_per_second", True),
        ("max_message_length", "0"),
        ("max_message_length", 10.5),
        ("max_message_length", "many"),
        ("country", 225),
        ("country", "XYZ"),
        ("sender_name", 123),
        ("sender_address", 2250000.0),
        ("sender_address", ["2250000"]),
        ("sender_address", True),
        ("sender_address", "22-abc"),
    ],
)
def test_bad_extra_is_named_when_the_client_is_built(sandbox, cache_dir, monkeypatch, extra, value):
    use(monkeypatch, conn(sandbox, extra={extra: value}))
    with pytest.raises(ValueError, match=f"Invalid connection extra {extra}=") as err:
        _ = OrangeSMSHook().client
    assert repr(value) in str(err.value)
    assert sandbox.state.requests == []


def test_sender_address_as_a_json_number_is_accepted(sandbox, cache_dir, monkeypatch):
    use(monkeypatch, conn(sandbox, extra={"sender_address": 2210000}))
    hook = OrangeSMSHook()
    assert hook.client.sender_address == "2210000"
    hook.send_sms("+221770000001", "hi")
    assert received(sandbox) == {"tel:+221770000001": 1}
    assert sandbox.state.messages[0].sender_address == "2210000"


def test_country_and_max_message_length_extras_reach_the_client(sandbox, cache_dir, monkeypatch):
    use(monkeypatch, conn(sandbox, extra={"country": "ci", "max_message_length": "10"}))
    hook = OrangeSMSHook()
    assert (hook.client.country, hook.client.max_message_length) == ("CIV", 10)
    with pytest.raises(ValueError, match="11 characters, longer than the limit of 10"):
        hook.send_sms("0700000001", "x" * 11)
    assert sandbox.state.requests == []
    hook.send_sms("0700000001", "x" * 10)  # national number read in the connection's country
    assert received(sandbox) == {"tel:+2250700000001": 1}


def test_connection_form_offers_max_message_length():
    [conn_type] = get_provider_info()["connection-types"]
    field = conn_type["conn-fields"]["max_message_length"]
    assert "1530" in field["description"]
    assert field["schema"]["type"] == ["integer", "null"]
