"""The receiver's parts in-process: payload parsing, settings, client address, and answers that need
a configuration or a failure the shared API server cannot have (no secret, a broken allowlist, the
database down)."""

from __future__ import annotations

import ipaddress
import json

import pytest
from fastapi.testclient import TestClient

from airflow_provider_orange_sms.receipts import app as receiver
from airflow_provider_orange_sms.receipts import store
from airflow_provider_orange_sms.receipts.payload import ReceiptError, parse_receipt
from tests.receipts_server import receipt

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
        (body(address="0700000001"), 422, "'0700000001'"),
        (body(resource_id="a b"), 422, "'a b'"),
        (body(resource_id="x" * 200), 422, "callbackData"),
    ],
)
def test_bad_bodies_are_refused_naming_the_value(raw, status, names):
    with pytest.raises(ReceiptError) as info:
        parse_receipt(raw)
    assert info.value.status_code == status
    assert names in info.value.message


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


def test_the_secret_is_masked_in_the_scope_path():
    scope = {
        "path": f"/orange-sms/delivery-receipts/{SECRET}",
        "raw_path": f"/orange-sms/delivery-receipts/{SECRET}".encode(),
    }
    receiver.mask_secret_in_path(scope)
    assert scope == {
        "path": "/orange-sms/delivery-receipts/***",
        "raw_path": b"/orange-sms/delivery-receipts/***",
    }
