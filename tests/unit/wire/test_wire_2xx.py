"""Only a 201 with a resource id counts as sent; any other 2xx is an error.

The sandbox answers the send with an odd 2xx, either instead of processing it (``reply``: a proxy
or captive portal) or after recording the SMS (``reply_after``: Orange took it, the answer got
mangled). What the sandbox received is counted per recipient.
"""

from __future__ import annotations

import json
from collections import Counter

import pytest

from airflow_provider_orange_sms.exceptions import (
    TRANSIENT_ERRORS,
    OrangeSMSBadRequestError,
    OrangeSMSConnectionError,
    OrangeSMSError,
    OrangeSMSSendUncertainError,
)

SEND_PATH = "/smsmessaging/v1/outbound/tel%3A%2B2250000/requests"
SUBSCRIBE_PATH = "/smsmessaging/v1/outbound/tel%3A%2B2250000/subscriptions"
RECIPIENT = "tel:+2250700000001"
HTML = "<html><head><title>Wi-Fi login</title></head><body>Please sign in</body></html>"
REQUEST_ERROR = json.dumps(
    {
        "requestError": {
            "serviceException": {
                "messageId": "SVC0004",
                "text": "No valid addresses provided in message part %1",
                "variables": ["address"],
            }
        }
    }
)


def received(sandbox):
    return Counter(m.address for m in sandbox.state.messages)


def sends(sandbox):
    return [r for r in sandbox.state.requests if r["path"] == SEND_PATH]


ODD_2XX = [
    pytest.param(
        200, HTML, "text/html; charset=utf-8", {}, ("200", "text/html", "Wi-Fi login"), id="html-200"
    ),
    pytest.param(200, "{}", "application/json", {}, ("200", "application/json", "{}"), id="json-200-no-id"),
    pytest.param(202, "", "", {}, ("202", "empty body"), id="202-empty"),
    pytest.param(204, "", "", {}, ("204", "empty body"), id="204"),
    pytest.param(201, "", "", {}, ("201", "empty body"), id="201-empty"),
    pytest.param(
        201,
        json.dumps({"outboundSMSMessageRequest": {"resourceURL": ""}}),
        "application/json",
        {},
        ("201",),
        id="201-empty-resource-url",
    ),
    pytest.param(
        201,
        json.dumps({"outboundSMSMessageRequest": {"address": RECIPIENT}}),
        "application/json",
        {"Location": "http://proxy.invalid/"},
        ("201",),
        id="201-no-id-anywhere",
    ),
    pytest.param(
        200,
        json.dumps({"outboundSMSMessageRequest": {"resourceURL": "http://x/requests/abc"}}),
        "application/json",
        {},
        ("200",),
        id="200-with-id",  # only a 201 creates: a 200 is not Orange's answer to a send
    ),
]


@pytest.mark.parametrize("kind", ["reply", "reply_after"])
@pytest.mark.parametrize(("status", "body", "content_type", "headers", "named"), ODD_2XX)
def test_odd_2xx_on_a_send_is_uncertain_not_sent(
    client, sandbox, kind, status, body, content_type, headers, named
):
    sandbox.state.add_fault(
        kind=kind, status=status, body=body, content_type=content_type, headers=headers, path=SEND_PATH
    )
    with pytest.raises(OrangeSMSSendUncertainError) as err:
        client.send_sms("+2250700000001", "hi")
    for part in named:
        assert part in str(err.value)
    assert err.value.status_code == status
    # Sent once, never retried: the sandbox got one request and (for reply_after) kept one SMS.
    assert len(sends(sandbox)) == 1
    assert received(sandbox) == ({RECIPIENT: 1} if kind == "reply_after" else {})
    assert not isinstance(err.value, OrangeSMSConnectionError)
    assert not isinstance(err.value, TRANSIENT_ERRORS)


@pytest.mark.parametrize("status", [200, 201, 202])
def test_request_error_in_a_2xx_is_the_bad_request_it_carries(client, sandbox, status):
    sandbox.state.add_fault(kind="reply", status=status, body=REQUEST_ERROR, path=SEND_PATH)
    with pytest.raises(OrangeSMSBadRequestError) as err:
        client.send_sms("+2250700000001", "hi")
    assert err.value.message_id == "SVC0004"
    assert "No valid addresses provided in message part address" in str(err.value)
    assert len(sends(sandbox)) == 1
    assert received(sandbox) == {}


def test_the_token_never_appears_in_the_error(client, sandbox):
    token = client.get_token()
    sandbox.state.add_fault(
        kind="reply",
        status=200,
        body=f"<html>Bearer {token} rejected</html>",
        content_type="text/html",
        path=SEND_PATH,
    )
    with pytest.raises(OrangeSMSSendUncertainError) as err:
        client.send_sms("+2250700000001", "hi")
    assert token not in str(err.value)
    assert "***" in str(err.value)


def test_201_with_the_id_only_in_location_counts_as_sent(client, sandbox):
    # The control case next to the odd ones above: a body-less 201 with Location is a real send.
    location = f"{sandbox.url}/smsmessaging/v1/outbound/tel:+2250000/requests/abc-123"
    sandbox.state.add_fault(
        kind="reply_after", status=201, body="", headers={"Location": location}, path=SEND_PATH
    )
    assert client.send_sms("+2250700000001", "hi") == "abc-123"
    assert received(sandbox) == {RECIPIENT: 1}
    sandbox.state.add_fault(
        kind="reply_after", status=202, body="", headers={"Location": location}, path=SEND_PATH
    )
    with pytest.raises(OrangeSMSSendUncertainError, match="202"):
        client.send_sms("+2250700000002", "hi")
    assert received(sandbox) == {RECIPIENT: 1, "tel:+2250700000002": 1}


@pytest.mark.parametrize(
    ("status", "body", "content_type"),
    [(200, HTML, "text/html"), (204, "", ""), (201, "", "")],
)
def test_subscription_without_an_id_is_an_error_naming_the_answer(
    client, sandbox, status, body, content_type
):
    sandbox.state.add_fault(
        kind="reply", status=status, body=body, content_type=content_type, path=SUBSCRIBE_PATH
    )
    with pytest.raises(OrangeSMSError, match=f"HTTP {status}") as err:
        client.create_delivery_receipt_subscription("https://example.invalid/dr")
    assert not isinstance(err.value, TRANSIENT_ERRORS)
    assert len([r for r in sandbox.state.requests if r["path"] == SUBSCRIBE_PATH]) == 1


def test_subscription_request_error_in_a_2xx_is_a_bad_request(client, sandbox):
    sandbox.state.add_fault(kind="reply", status=200, body=REQUEST_ERROR, path=SUBSCRIBE_PATH)
    with pytest.raises(OrangeSMSBadRequestError, match="SVC0004"):
        client.create_delivery_receipt_subscription("https://example.invalid/dr")
    assert sandbox.state.subscriptions == {}


READS = [
    pytest.param(lambda c: c.get_contracts(), "/sms/admin/v1/contracts", id="contracts"),
    pytest.param(lambda c: c.get_available_units("CIV"), "/sms/admin/v1/contracts", id="balance"),
    pytest.param(lambda c: c.get_statistics(country="CIV"), "/sms/admin/v1/statistics", id="usage"),
    pytest.param(lambda c: c.get_purchase_orders(), "/sms/admin/v1/purchaseorders", id="orders"),
    pytest.param(
        lambda c: c.get_delivery_receipt_subscription("sub-1"),
        "/smsmessaging/v1/outbound/subscriptions/sub-1",
        id="subscription",
    ),
]
NOT_AN_OBJECT = [
    pytest.param(200, HTML, "text/html; charset=utf-8", "text/html", id="html-200"),
    pytest.param(200, "[1, 2]", "application/json", "application/json", id="json-list-200"),
    pytest.param(204, "", "", "no content type", id="204-empty"),
]


@pytest.mark.parametrize(("status", "body", "content_type", "named_type"), NOT_AN_OBJECT)
@pytest.mark.parametrize(("read", "path"), READS)
def test_a_read_answered_by_something_else_is_an_orange_error_naming_it(
    client, sandbox, read, path, status, body, content_type, named_type
):
    """A proxy's HTML 200 on a balance read raised a bare ValueError from ``response.json()``."""
    token = client.get_token()
    sandbox.state.add_fault(
        kind="reply",
        status=status,
        body=body.replace("Wi-Fi", f"Wi-Fi {token}"),
        content_type=content_type,
        path=path,
    )
    with pytest.raises(OrangeSMSError) as err:
        read(client)
    text = str(err.value)
    assert f"GET {path} answered something that is not Orange's JSON" in text
    assert f"HTTP {status}" in text
    assert named_type in text
    assert token not in text  # the excerpt is cleaned of the access token
    assert err.value.status_code == status
    assert not isinstance(err.value, TRANSIENT_ERRORS)
    assert len([r for r in sandbox.state.requests if r["path"] == path]) == 1  # not retried


def test_a_read_after_the_proxy_is_gone_returns_orange_s_json(client, sandbox):
    # The control case: the same reads without the fault return the sandbox's JSON objects.
    assert client.get_available_units("CIV") == sandbox.state.balances["CIV"]
    assert "partnerStatistics" in client.get_statistics()
    assert "purchaseOrders" in client.get_purchase_orders()
