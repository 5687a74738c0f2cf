"""The receiver's parts in-process: payload parsing, settings, client address, and answers that need
a configuration or a failure the shared API server cannot have (no secret, a broken allowlist, the
database down)."""

from __future__ import annotations

import ipaddress
import json

import pytest
from fastapi.testclient import TestClient

from airflow_provider_orange_sms.receipts import access_log, store
from airflow_provider_orange_sms.receipts import app as receiver
from airflow_provider_orange_sms.receipts.payload import ReceiptError, parse_receipt
from tests.support.receipts_server import receipt

SECRET = "a-long-random-secret-for-tests"


def body(
    resource_id: str = "r-1", status: str = "DeliveredToTerminal", address: str = "tel:+2250700000001"
) -> bytes:
    return json.dumps(receipt(resource_id, status, address)).encode()


def test_parse_a_receipt():
    parsed = parse_receipt(body("2b3c-9f", "MessageWaiting"))
    assert (parsed.resource_id, parsed.recipient, parsed.status, parsed.is_final) == (
        "2b3c-9f",
        "tel:+2250700000001",
        "MessageWaiting",
        False,
    )
    assert parsed.to_extra("2026-01-01T00:00:00+00:00") == {
        "resource_id": "2b3c-9f",
        "recipient": "tel:+2250700000001",
        "status": "MessageWaiting",
        "received_at": "2026-01-01T00:00:00+00:00",
    }


@pytest.mark.parametrize("callback_data", ["", None, "missing"])
def test_an_empty_callback_data_is_accepted(callback_data):
    document = receipt("x")
    if callback_data == "missing":
        del document["deliveryInfoNotification"]["callbackData"]
    else:
        document["deliveryInfoNotification"]["callbackData"] = callback_data
    assert parse_receipt(json.dumps(document).encode()).resource_id == ""


@pytest.mark.parametrize(
    ("raw", "status", "names"),
    [
        (b"{", 400, "not JSON"),
        (b"[]", 422, "list"),
        (json.dumps({"deliveryInfoNotification": []}).encode(), 422, "deliveryInfoNotification"),
        (body(status="Delivered"), 422, "'Delivered'"),
        (body(address="0700000001"), 422, "'0700000001'"),  # national: never a recipient sent to
        (body(address="tel:+2٢٥٠٧٠٠٠٠٠٠٠١"), 422, "'tel:+2٢٥٠٧٠٠٠٠٠٠٠١'"),  # Arabic-Indic digits  # noqa: RUF001
        (body(address="tel:+225०७००००००००१"), 422, "'tel:+225०७००००००००१'"),  # Devanagari digits  # noqa: RUF001
        (body(resource_id="a\x00b"), 422, "'a\\x00b'"),
        (body(resource_id="x" * 200), 422, "callbackData"),
    ],
)
def test_bad_bodies_are_refused_naming_the_value(raw, status, names):
    with pytest.raises(ReceiptError) as info:
        parse_receipt(raw)
    assert info.value.status_code == status
    assert names in info.value.message


@pytest.mark.parametrize(
    "address",
    ["tel:+2250700000001", "tel:2250700000001", "+2250700000001", "2250700000001", "TEL:+2250700000001"],
)
def test_every_address_form_is_stored_as_tel_plus_digits(client, address):
    response = client.post(
        f"/delivery-receipts/{SECRET}",
        content=body(address=address),
        headers={"Content-Type": "application/json"},
    )
    assert (response.status_code, response.json()) == (200, {"status": "stored"})
    [stored] = client.calls
    assert stored.to_extra("t")["recipient"] == "tel:+2250700000001"


@pytest.mark.parametrize(
    ("callback_data", "resource_id"),
    [(123456, "123456"), ("12/34 ab", "12/34 ab"), (" 2b3c 9f ", "2b3c 9f"), (1.5, "1.5"), (7.0, "7")],
)
def test_callback_data_as_a_number_or_any_printable_text_is_the_resource_id(
    client, callback_data, resource_id
):
    document = receipt("x")
    document["deliveryInfoNotification"]["callbackData"] = callback_data
    response = client.post(
        f"/delivery-receipts/{SECRET}",
        content=json.dumps(document),
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 200, response.text
    assert [r.resource_id for r in client.calls] == [resource_id]


@pytest.mark.parametrize("callback_data", [True, float("nan"), 10**200, "a\tb"])
def test_callback_data_that_is_no_id_is_refused_naming_it(callback_data):
    document = receipt("x")
    document["deliveryInfoNotification"]["callbackData"] = callback_data
    with pytest.raises(ReceiptError) as info:
        parse_receipt(json.dumps(document).encode())
    assert (info.value.status_code, "Invalid callbackData" in info.value.message) == (422, True)


def test_delivery_notification_not_supported_is_a_final_status(client):
    raw = body(status="DeliveryNotificationNotSupported")
    assert parse_receipt(raw).is_final is True
    response = client.post(
        f"/delivery-receipts/{SECRET}", content=raw, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 200
    assert [r.status for r in client.calls] == ["DeliveryNotificationNotSupported"]


def _listed(*infos: dict) -> bytes:
    return json.dumps(
        {"deliveryInfoNotification": {"callbackData": "r-9", "deliveryInfo": list(infos)}}
    ).encode()


def test_a_delivery_info_list_stores_each_receipt(client):
    one = {"address": "tel:+2250700000001", "deliveryStatus": "DeliveredToTerminal"}
    two = {"address": "2250700000002", "deliveryStatus": "DeliveryImpossible"}
    json_type = {"Content-Type": "application/json"}
    # OneAPI's sample: a list of one.
    assert (
        client.post(f"/delivery-receipts/{SECRET}", content=_listed(one), headers=json_type).status_code
        == 200
    )
    assert [(r.resource_id, r.recipient, r.status) for r in client.calls] == [
        ("r-9", "tel:+2250700000001", "DeliveredToTerminal")
    ]
    client.calls.clear()
    # Several: one event each (dropping any would leave its sensor waiting for a receipt it got).
    assert (
        client.post(f"/delivery-receipts/{SECRET}", content=_listed(one, two), headers=json_type).status_code
        == 200
    )
    assert [(r.recipient, r.status) for r in client.calls] == [
        ("tel:+2250700000001", "DeliveredToTerminal"),
        ("tel:+2250700000002", "DeliveryImpossible"),
    ]


@pytest.mark.parametrize(
    ("raw", "names"),
    [
        (_listed(), "empty list"),
        (
            _listed(
                {"address": "tel:+2250700000001", "deliveryStatus": "DeliveredToTerminal"}, {"address": "x"}
            ),
            "deliveryInfo[1].address 'x'",
        ),
        (_listed("tel:+2250700000001"), "deliveryInfo[0]"),
    ],
)
def test_a_bad_delivery_info_list_is_refused_whole(client, raw, names):
    response = client.post(
        f"/delivery-receipts/{SECRET}", content=raw, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422
    assert names in response.json()["detail"]
    assert client.calls == []


def test_networks_and_client_address():
    proxies = receiver.parse_networks("10.0.0.0/8, 127.0.0.1", "x")
    address = receiver.client_address
    assert address("127.0.0.1", None, proxies) == ipaddress.ip_address("127.0.0.1")
    # From a trusted proxy: the right-most hop that is not a proxy.
    assert address("127.0.0.1", "1.2.3.4, 80.12.13.2, 10.1.1.1", proxies) == ipaddress.ip_address(
        "80.12.13.2"
    )
    # From anyone else, X-Forwarded-For is ignored (it could be forged).
    assert address("192.0.2.1", "80.12.13.2", proxies) == ipaddress.ip_address("192.0.2.1")
    assert address("127.0.0.1", "garbage", proxies) is None
    with pytest.raises(receiver.SettingsError, match="'80.12.13.300'"):
        receiver.parse_networks("80.12.13.2, 80.12.13.300", "delivery_receipts_allowed_ips")


def test_settings_repr_hides_the_secret():
    settings = receiver.ReceiverSettings(secret=SECRET, allowed=None, trusted_proxies=())
    assert SECRET not in repr(settings)


@pytest.fixture
def client(monkeypatch):
    monkeypatch.setenv("AIRFLOW__ORANGE_SMS__DELIVERY_RECEIPTS_SECRET", SECRET)
    monkeypatch.setenv("AIRFLOW__ORANGE_SMS__DELIVERY_RECEIPTS_ALLOWED_IPS", "")
    calls = []

    def fake_store(parsed, **kwargs):
        calls.append(parsed)
        return len(calls) == 1

    monkeypatch.setattr(store, "store_receipt", fake_store)
    with TestClient(receiver.create_app(), client=("80.12.13.2", 1234)) as test_client:
        test_client.calls = calls  # type: ignore[attr-defined]
        yield test_client


def test_no_secret_configured_refuses_everything(client, monkeypatch):
    monkeypatch.setenv("AIRFLOW__ORANGE_SMS__DELIVERY_RECEIPTS_SECRET", "")
    for secret in ("", "x", SECRET):
        response = client.post(
            f"/delivery-receipts/{secret}", content=body(), headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 404
    assert client.calls == []


def test_a_broken_allowlist_refuses_everything(client, monkeypatch):
    monkeypatch.setenv("AIRFLOW__ORANGE_SMS__DELIVERY_RECEIPTS_ALLOWED_IPS", "80.12.13.2, nonsense")
    response = client.post(
        f"/delivery-receipts/{SECRET}", content=body(), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 403
    assert client.calls == []


def test_allowlist_on_the_tcp_peer(client, monkeypatch):
    monkeypatch.setenv("AIRFLOW__ORANGE_SMS__DELIVERY_RECEIPTS_ALLOWED_IPS", "80.12.13.0/24")
    headers = {"Content-Type": "application/json", "X-Forwarded-For": "198.51.100.1"}
    # No trusted proxy configured: the forwarded header is ignored, the peer (80.12.13.2) counts.
    assert client.post(f"/delivery-receipts/{SECRET}", content=body(), headers=headers).status_code == 200
    monkeypatch.setenv("AIRFLOW__ORANGE_SMS__DELIVERY_RECEIPTS_ALLOWED_IPS", "80.12.66.97")
    assert client.post(f"/delivery-receipts/{SECRET}", content=body(), headers=headers).status_code == 403


def test_accepted_and_duplicate(client):
    headers = {"Content-Type": "application/json; charset=utf-8"}
    first = client.post(f"/delivery-receipts/{SECRET}", content=body(), headers=headers)
    second = client.post(f"/delivery-receipts/{SECRET}", content=body(), headers=headers)
    assert [first.json(), second.json()] == [{"status": "stored"}, {"status": "duplicate"}]


def test_a_declared_oversized_body_is_refused_before_reading(client):
    headers = {"Content-Type": "application/json", "Content-Length": str(10**9)}
    response = client.post(f"/delivery-receipts/{SECRET}", content=b"{}", headers=headers)
    assert response.status_code == 413
    assert client.calls == []


def test_database_unavailable_answers_503_with_retry_after(client, monkeypatch):
    def down(parsed, **kwargs):
        raise store.StoreUnavailableError("the metadata database did not store the receipt")

    monkeypatch.setattr(store, "store_receipt", down)
    response = client.post(
        f"/delivery-receipts/{SECRET}", content=body(), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "30"


def test_a_lasting_database_failure_is_logged_once_not_per_receipt(client, monkeypatch, caplog):
    def down(parsed, **kwargs):
        raise store.StoreUnavailableError("the metadata database did not store the receipt")

    monkeypatch.setattr(store, "store_receipt", down)
    monkeypatch.setattr(receiver, "_UNSTORED", receiver.RepeatLimiter(60.0))
    with caplog.at_level("ERROR", logger=receiver.__name__):
        json_type = {"Content-Type": "application/json"}
        codes = [
            client.post(f"/delivery-receipts/{SECRET}", content=body(f"r-{n}"), headers=json_type).status_code
            for n in range(5)
        ]
    assert codes == [503] * 5
    lines = [r.getMessage() for r in caplog.records if r.name == receiver.__name__]
    assert len(lines) == 1, lines
    assert "'r-0' not stored, answered 503" in lines[0]


def test_refusals_are_logged_once_per_problem_not_per_request(client, monkeypatch, caplog):
    monkeypatch.setattr(receiver, "_REFUSED", receiver.RepeatLimiter(60.0))
    json_type = {"Content-Type": "application/json"}
    with caplog.at_level("WARNING", logger=receiver.__name__):
        codes = [client.post("/delivery-receipts/wrong", content=body(), headers=json_type).status_code]
        codes += [
            client.post(
                f"/delivery-receipts/{SECRET}", content=body(address=f"07{n}"), headers=json_type
            ).status_code
            for n in range(5)
        ]
        codes += [
            client.post("/delivery-receipts/wrong-again", content=body(), headers=json_type).status_code
        ]
    assert codes == [404] + [422] * 5 + [404]
    lines = [r.getMessage() for r in caplog.records if r.name == receiver.__name__]
    assert len(lines) == 2, lines
    assert "wrong secret in the URL" in lines[0]
    assert "'070'" in lines[1]
    assert client.calls == []


def test_the_secret_is_masked_in_the_scope_path():
    scope = {
        "path": f"/orange-sms/delivery-receipts/{SECRET}",
        "raw_path": f"/orange-sms/delivery-receipts/{SECRET}".encode(),
        "query_string": b"",
    }
    access_log.mask_secret_in_scope(scope, SECRET)
    assert scope == {
        "path": "/orange-sms/delivery-receipts/***",
        "raw_path": b"/orange-sms/delivery-receipts/***",
        "query_string": b"",
    }


ENCODED = "".join(f"%{ord(c):02X}" for c in SECRET[:6]) + SECRET[6:]


@pytest.mark.parametrize(
    ("path", "masked"),
    [
        (f"/orange-sms/Delivery-Receipts/{SECRET}", "/orange-sms/Delivery-Receipts/***"),
        (f"/api/v2/../orange-sms/delivery-receipts/{SECRET}", "/api/v2/../orange-sms/delivery-receipts/***"),
        (f"/orange-sms/delivery-receipts/{SECRET}/", "/orange-sms/delivery-receipts/***/"),
        (f"//orange-sms//delivery-receipts//{SECRET}", "//orange-sms//delivery-receipts//***"),
        (f"/orange-sms/delivery-receipts/{ENCODED}", "/orange-sms/delivery-receipts/***"),
        (f"/orange-sms/delivery%2Dreceipts/{SECRET[:-3]}", "/orange-sms/delivery%2Dreceipts/***"),
        (f"/orange-sms/delivery-receipts%2F{SECRET[:-3]}", "/orange-sms/***"),
        (f"/ORANGE-SMS/{SECRET.upper()}/x", "/ORANGE-SMS/***/x"),
        (f"/x/pre{SECRET.lower()}post", "/x/***"),
        (f"/x/{ENCODED.replace('%', '%25')}", "/x/***"),
        ("/api/v2/dags/delivery-reports/runs", "/api/v2/dags/delivery-reports/runs"),
    ],
)
def test_any_path_variant_is_masked(path, masked):
    assert access_log.mask_path(path, SECRET) == masked


def test_the_secret_is_masked_in_the_query_string():
    query = f"a=1&token={SECRET}&{SECRET.upper()}=2&b={ENCODED}".encode()
    scope = {"path": "/orange-sms/delivery-receipts", "query_string": query}
    access_log.mask_secret_in_scope(scope, SECRET)
    assert scope["query_string"] == b"a=1&token=***&***=2&b=***"
    # A short secret is only masked after delivery-receipts: searched everywhere it would mask others.
    assert access_log.mask_path("/api/v2/dags/abc", "abc") == "/api/v2/dags/abc"
    assert (
        access_log.mask_path("/orange-sms/delivery-receipts/abc", "abc")
        == "/orange-sms/delivery-receipts/***"
    )


@pytest.fixture
def proxied_client(client, monkeypatch):
    """The receiver behind a reverse proxy (10.0.0.5) that appends its own X-Forwarded-For line."""
    monkeypatch.setenv("AIRFLOW__ORANGE_SMS__DELIVERY_RECEIPTS_ALLOWED_IPS", "80.12.13.2")
    monkeypatch.setenv("AIRFLOW__ORANGE_SMS__DELIVERY_RECEIPTS_TRUSTED_PROXIES", "10.0.0.0/8")
    with TestClient(receiver.create_app(), client=("10.0.0.5", 1234)) as test_client:
        test_client.calls = client.calls  # type: ignore[attr-defined]
        yield test_client


def test_every_forwarded_for_line_is_read_in_order(proxied_client):
    def post_from(*lines: str) -> int:
        headers = [("Content-Type", "application/json"), *(("X-Forwarded-For", line) for line in lines)]
        return proxied_client.post(
            f"/delivery-receipts/{SECRET}", content=body(), headers=headers
        ).status_code

    # A client forges an allowed address; the proxy appends the real one (198.51.100.7) as a second line.
    assert post_from("80.12.13.2", "198.51.100.7") == 403
    assert post_from("80.12.13.2, 10.0.0.9", "198.51.100.7, 10.0.0.7") == 403
    assert proxied_client.calls == []
    # Orange's address appended last by the proxy(ies) is the client, whatever came before it.
    assert post_from("198.51.100.7", "80.12.13.2") == 200
    assert post_from("198.51.100.7", "80.12.13.2, 10.0.0.7") == 200
    assert len(proxied_client.calls) == 2


def _nested(depth: int) -> bytes:
    return b'{"deliveryInfoNotification": ' + b"[" * depth + b"]" * depth + b"}"


@pytest.mark.parametrize(
    ("raw", "names"),
    [
        (b"[" * 30_000 + b"]" * 30_000, "nested too deeply"),
        (_nested(30_000), "nested too deeply"),
        (b"1" * 5_000, "not JSON"),
        (b'{"deliveryInfoNotification": ' + b"7" * 5_000 + b"}", "not JSON"),
    ],
    ids=["list-30000-deep", "object-30000-deep", "5000-digit-integer", "5000-digit-value"],
)
def test_pathological_json_is_a_400(client, raw, names, caplog):
    assert len(raw) < receiver.MAX_BODY_BYTES
    with pytest.raises(ReceiptError) as info:
        parse_receipt(raw)
    assert (info.value.status_code, names in info.value.message) == (400, True)

    response = client.post(
        f"/delivery-receipts/{SECRET}", content=raw, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert names in response.json()["detail"]
    assert client.calls == []
    assert "Traceback" not in caplog.text


@pytest.mark.parametrize(
    "bad",
    [
        [[[[["x"]]]]],
        {"a": {"b": {"c": 1}}},
        10**4000,
        "y" * 10_000,
    ],
    ids=["nested-list", "nested-object", "4000-digit-integer", "long-string"],
)
@pytest.mark.parametrize("field", ["address", "deliveryStatus", "callbackData"])
def test_a_bad_value_of_any_size_is_a_short_422(field, bad):
    document = receipt("r-1")
    if field == "callbackData":
        document["deliveryInfoNotification"]["callbackData"] = bad
    else:
        document["deliveryInfoNotification"]["deliveryInfo"][field] = bad
    with pytest.raises(ReceiptError) as info:
        parse_receipt(json.dumps(document).encode())
    assert info.value.status_code == 422
    assert field in info.value.message
    assert len(info.value.message) < 400
