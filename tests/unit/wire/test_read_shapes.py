"""A read endpoint's 2xx counts only when it holds the endpoint's answer.

The sandbox answers the read with a 2xx of its choosing (a ``reply`` fault: a gateway or proxy in
between, or Orange misbehaving), over HTTP. JSON of the wrong shape raises an
:class:`OrangeSMSError` naming the endpoint and where the answer is wrong (never a bare
``KeyError``/``TypeError``/``ValueError``, never a made-up balance); one of Orange's error objects
raises the error the same body raises with its usual status.
"""

from __future__ import annotations

import json

import pytest

from airflow_provider_orange_sms.exceptions import (
    TRANSIENT_ERRORS,
    OrangeSMSAuthError,
    OrangeSMSBadRequestError,
    OrangeSMSError,
    OrangeSMSNotFoundError,
    OrangeSMSRateLimitError,
    OrangeSMSServerError,
)

CONTRACTS = "/sms/admin/v1/contracts"
STATISTICS = "/sms/admin/v1/statistics"
ORDERS = "/sms/admin/v1/purchaseorders"
SUBSCRIPTION = "/smsmessaging/v1/outbound/subscriptions/sub-1"
TOKEN = "@token@"  # replaced by the client's access token in the body


def requests_to(sandbox, path):
    return [r for r in sandbox.state.requests if r["path"] == path]


def contracts(*service_contracts, **partner):
    return {
        "partnerContracts": {
            "partnerId": "p",
            "contracts": [{"service": "SMS_OCB", "serviceContracts": list(service_contracts)}],
            **partner,
        }
    }


def answer(client, sandbox, path, body, status=200):
    """Queue ``body`` (JSON, with the token put in) as the next answer of ``path``; return the token."""
    token = client.get_token()
    text = body if isinstance(body, str) else json.dumps(body)
    sandbox.state.add_fault(kind="reply", status=status, body=text.replace(TOKEN, token), path=path)
    return token


WRONG_BALANCES = [
    pytest.param({"x": 1}, "partnerContracts is missing", id="no-partner-contracts"),
    pytest.param({"partnerContracts": []}, "partnerContracts is a list, not an object", id="partner-list"),
    pytest.param(
        {"partnerContracts": {"contracts": {"CIV": 3}}},
        "partnerContracts.contracts is an object, not a list",
        id="contracts-object",
    ),
    pytest.param(
        {"partnerContracts": {"contracts": [1]}},
        "partnerContracts.contracts[0] is the int 1, not an object",
        id="contract-number",
    ),
    pytest.param(
        contracts({"country": "CIV", "availableUnits": 5}, {"country": "CIV", "availableUnits": "lots"}),
        "partnerContracts.contracts[0].serviceContracts[1].availableUnits is the string 'lots', "
        "not a whole number",
        id="units-not-a-number",
    ),
    pytest.param(
        contracts({"country": "CIV", "availableUnits": None}),
        "serviceContracts[0].availableUnits is null, not a whole number",
        id="units-null",
    ),
    pytest.param(
        contracts({"country": "CIV", "availableUnits": True}),
        "serviceContracts[0].availableUnits is the boolean true, not a whole number",
        id="units-boolean",
    ),
    pytest.param(
        contracts({"country": "CIV", "availableUnits": 2.5}),
        "serviceContracts[0].availableUnits is the float 2.5, not a whole number",
        id="units-fraction",
    ),
    pytest.param(
        contracts({"country": "CIV"}), "serviceContracts[0].availableUnits is missing", id="units-missing"
    ),
    pytest.param(
        contracts({"country": "CIV", "availableUnits": f"x{TOKEN}"}),
        "availableUnits is the string 'x***', not a whole number",
        id="units-echo-the-token",
    ),
]


@pytest.mark.parametrize(("body", "named"), WRONG_BALANCES)
@pytest.mark.parametrize(
    "read", [lambda c: c.get_available_units("CIV"), lambda c: c.get_contracts()], ids=["units", "contracts"]
)
def test_a_balance_of_the_wrong_shape_is_an_orange_error_naming_where(client, sandbox, read, body, named):
    """``get_available_units`` raised a bare KeyError/TypeError/ValueError here, or returned 0."""
    token = answer(client, sandbox, CONTRACTS, body)
    with pytest.raises(OrangeSMSError) as err:
        read(client)
    text = str(err.value)
    assert type(err.value) is OrangeSMSError  # not transient, not a credentials or request problem
    assert f"GET {CONTRACTS} answered JSON that is not its partnerContracts answer: " in text
    assert named in text
    assert "HTTP 200" in text
    assert token not in text
    assert err.value.status_code == 200
    assert len(requests_to(sandbox, CONTRACTS)) == 1  # not retried: the same answer would come back


@pytest.mark.parametrize(
    ("read", "path", "body", "named"),
    [
        pytest.param(
            lambda c: c.get_statistics(), STATISTICS, {"x": 1}, "partnerStatistics is missing", id="usage"
        ),
        pytest.param(
            lambda c: c.get_statistics(),
            STATISTICS,
            {"partnerStatistics": {"statistics": "none"}},
            "partnerStatistics.statistics is the string 'none', not a list",
            id="usage-statistics-string",
        ),
        pytest.param(
            lambda c: c.get_statistics(),
            STATISTICS,
            {
                "partnerStatistics": {
                    "statistics": [
                        {"serviceStatistics": [{"country": "CIV", "countryStatistics": [{"usage": "many"}]}]}
                    ]
                }
            },
            "partnerStatistics.statistics[0].serviceStatistics[0].countryStatistics[0].usage is the "
            "string 'many', not a whole number",
            id="usage-count-not-a-number",
        ),
        pytest.param(
            lambda c: c.get_purchase_orders(), ORDERS, {"x": 1}, "purchaseOrders is missing", id="orders"
        ),
        pytest.param(
            lambda c: c.get_purchase_orders(),
            ORDERS,
            {"purchaseOrders": {"id": 1}},
            "purchaseOrders is an object, not a list",
            id="orders-object",
        ),
        pytest.param(
            lambda c: c.get_delivery_receipt_subscription("sub-1"),
            SUBSCRIPTION,
            {"x": 1},
            "deliveryReceiptSubscription is missing",
            id="subscription",
        ),
        pytest.param(
            lambda c: c.get_delivery_receipt_subscription("sub-1"),
            SUBSCRIPTION,
            {"deliveryReceiptSubscription": [TOKEN]},
            "deliveryReceiptSubscription is a list, not an object",
            id="subscription-list",
        ),
    ],
)
def test_other_reads_of_the_wrong_shape_are_orange_errors_naming_where(
    client, sandbox, read, path, body, named
):
    """These reads returned any JSON object as their answer."""
    token = answer(client, sandbox, path, body)
    with pytest.raises(OrangeSMSError) as err:
        read(client)
    text = str(err.value)
    assert type(err.value) is OrangeSMSError
    assert f"GET {path} answered JSON that is not its " in text
    assert named in text
    assert token not in text
    assert len(requests_to(sandbox, path)) == 1


def test_a_token_across_the_excerpt_s_cut_is_blanked_whole(client, sandbox):
    """The excerpt was cut at 200 characters before the token was blanked (and its whitespace
    squeezed): after 190 blank lines, the token's first 10 characters showed."""
    token = answer(client, sandbox, CONTRACTS, "\n" * 190 + TOKEN, status=200)
    with pytest.raises(OrangeSMSError) as err:
        client.get_contracts()
    assert token[:8] not in str(err.value)


def test_a_balance_of_the_right_shape_is_summed(client, sandbox):
    # The control case: numbers as Orange may spell them, other countries left out.
    body = contracts(
        {"country": "CIV", "availableUnits": 5},
        {"country": "civ", "availableUnits": "7"},
        {"country": "CIV", "availableUnits": 3.0},
        {"country": "SEN", "availableUnits": 100},
    )
    answer(client, sandbox, CONTRACTS, body)
    assert client.get_available_units("CIV") == 15
    answer(client, sandbox, CONTRACTS, {"partnerContracts": {"contracts": []}})
    assert client.get_available_units("CIV") == 0
    # An account without a bundle yet: no contracts listed, or none for the service: 0 units.
    for no_contract in (
        {"partnerContracts": {"partnerId": "p"}},
        {"partnerContracts": {"contracts": None}},
        {"partnerContracts": {"contracts": [{"service": "SMS_OCB"}]}},
        {"partnerContracts": {"contracts": [{"service": "SMS_OCB", "serviceContracts": None}]}},
    ):
        answer(client, sandbox, CONTRACTS, no_contract)
        assert client.get_available_units("CIV") == 0, no_contract
    assert client.get_available_units("CIV") == sandbox.state.balances["CIV"]  # the sandbox's own answer
    assert client.get_statistics()["partnerStatistics"]["statistics"] is not None
    answer(client, sandbox, STATISTICS, {"partnerStatistics": {"partnerId": "p"}})
    assert client.get_statistics() == {"partnerStatistics": {"partnerId": "p"}}  # no traffic yet


# -- Orange's errors in a 2xx -------------------------------------------------------------------

SERVICE_ERROR = {
    "requestError": {
        "serviceException": {
            "messageId": "SVC0002",
            "text": "Invalid input value for message part %1",
            "variables": ["country"],
        }
    }
}
POLICY_ERROR = {
    "requestError": {
        "policyException": {"messageId": "POL0001", "text": "Policy error: %1", "variables": "quota"}
    }
}
ORANGE_ERRORS = [
    pytest.param(
        {"code": 42, "message": "Expired credentials", "description": "Out of date."},
        401,
        OrangeSMSAuthError,
        id="42",
    ),
    pytest.param(
        {"code": 40, "message": "Missing credentials", "description": ""}, 401, OrangeSMSAuthError, id="40"
    ),
    pytest.param(
        {"code": 50, "message": "Access denied", "description": "Not subscribed."},
        403,
        OrangeSMSAuthError,
        id="50",
    ),
    pytest.param(
        {"code": 60, "message": "Resource not found", "description": "No such id."},
        404,
        OrangeSMSNotFoundError,
        id="60",
    ),
    pytest.param(
        {"code": "53", "message": "Too many requests", "description": ""},
        429,
        OrangeSMSRateLimitError,
        id="53",
    ),
    pytest.param(
        {"code": 1, "message": "Internal error", "description": ""}, 500, OrangeSMSServerError, id="1"
    ),
    pytest.param(
        {"code": 5, "message": "The service is temporarily unavailable"}, 503, OrangeSMSServerError, id="5"
    ),
    pytest.param(
        {"error": "invalid_token", "error_description": "The access token expired"},
        401,
        OrangeSMSAuthError,
        id="oauth-invalid_token",
    ),
    pytest.param(SERVICE_ERROR, 400, OrangeSMSBadRequestError, id="SVC0002"),
    pytest.param(POLICY_ERROR, 403, OrangeSMSBadRequestError, id="POL0001"),
]
READS = [
    pytest.param(lambda c: c.get_available_units("CIV"), CONTRACTS, id="balance"),
    pytest.param(lambda c: c.get_statistics(), STATISTICS, id="usage"),
    pytest.param(lambda c: c.get_purchase_orders(), ORDERS, id="orders"),
    pytest.param(lambda c: c.get_delivery_receipt_subscription("sub-1"), SUBSCRIPTION, id="subscription"),
]


@pytest.mark.parametrize(("body", "usual_status", "error_class"), ORANGE_ERRORS)
@pytest.mark.parametrize(("read", "path"), READS)
@pytest.mark.parametrize("status", [200, 202])
def test_orange_s_error_in_a_2xx_read_is_the_error_its_usual_status_gives(
    client, sandbox, read, path, body, usual_status, error_class, status
):
    """These reads returned Orange's error object as if it were their answer."""
    sandbox.state.add_fault(kind="reply", status=usual_status, body=json.dumps(body), path=path, count=10)
    with pytest.raises(OrangeSMSError) as usual:
        read(client)
    sandbox.state.faults.clear()
    answer(client, sandbox, path, body, status=status)
    with pytest.raises(OrangeSMSError) as odd:
        read(client)

    assert type(usual.value) is error_class
    assert type(odd.value) is error_class
    assert odd.value.code == usual.value.code
    assert odd.value.status_code == status  # what came back, said as it was
    assert usual.value.message in str(odd.value)
    assert f"GET {path} answered HTTP {status} with Orange's error: " in str(odd.value)
    assert isinstance(odd.value, TRANSIENT_ERRORS) == isinstance(usual.value, TRANSIENT_ERRORS)
    if error_class is OrangeSMSBadRequestError:
        assert odd.value.variables == usual.value.variables


def test_an_expired_token_in_a_2xx_is_dropped_so_the_next_read_gets_another(client, sandbox):
    first = answer(client, sandbox, CONTRACTS, {"code": 42, "message": "Expired credentials"})
    tokens_before = sandbox.state.token_requests
    with pytest.raises(OrangeSMSAuthError, match="42"):
        client.get_available_units("CIV")
    assert client.get_available_units("CIV") == sandbox.state.balances["CIV"]
    assert sandbox.state.token_requests == tokens_before + 1
    assert client.get_token() != first


def test_a_2xx_answer_with_both_the_answer_and_a_code_is_the_answer(client, sandbox):
    # Only a body without the endpoint's answer is read as an error: a "code" beside it is data.
    body = {"code": 5, "message": "ok", **contracts({"country": "CIV", "availableUnits": 4})}
    answer(client, sandbox, CONTRACTS, body)
    assert client.get_available_units("CIV") == 4
