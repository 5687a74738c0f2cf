"""The receiver over real HTTP, on a real ``airflow api-server`` (see tests/support/receipts_server.py)."""

from __future__ import annotations

import http.client
import json
import random
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import unquote

import pytest
import requests

from tests.support.receipts_server import ReceiptsServer, hold_lock, receipt, unique_prefix
from tests.support.versions import skip_on_airflow_3_0

ORANGE_IP = "80.12.102.66"


def post(server: ReceiptsServer, body: object, **kwargs: object) -> requests.Response:
    headers = {"Content-Type": "application/json", **kwargs.pop("headers", {})}  # type: ignore[dict-item]
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    url = kwargs.pop("url", server.receipt_url)
    return requests.post(url, data=data, headers=headers, timeout=60, **kwargs)  # type: ignore[arg-type]


def test_a_receipt_becomes_an_asset_event(receipts_server):
    prefix = unique_prefix()
    response = post(receipts_server, receipt(f"{prefix}1", "DeliveryImpossible", "tel:+2250700000009"))
    assert (response.status_code, response.json()) == (200, {"status": "stored"})

    [event] = receipts_server.events(prefix)
    assert event["uri"] == "orange-sms://delivery-receipts/"
    extra = event["extra"]
    assert set(extra) == {"resource_id", "recipient", "status", "received_at"}
    assert extra["resource_id"] == f"{prefix}1"
    assert extra["recipient"] == "tel:+2250700000009"
    assert extra["status"] == "DeliveryImpossible"
    assert extra["received_at"].endswith("+00:00")


def test_repeats_are_stored_once_but_a_new_status_is_a_new_event(receipts_server):
    prefix = unique_prefix()
    for _ in range(3):
        assert post(receipts_server, receipt(f"{prefix}1", "MessageWaiting")).status_code == 200
    answers = [post(receipts_server, receipt(f"{prefix}1", "DeliveredToTerminal")).json() for _ in range(2)]
    assert answers == [{"status": "stored"}, {"status": "duplicate"}]
    # Same id and status for another recipient: a different receipt.
    assert post(
        receipts_server, receipt(f"{prefix}1", "DeliveredToTerminal", "tel:+2250700000002")
    ).json() == {"status": "stored"}

    statuses = sorted((e["extra"]["status"], e["extra"]["recipient"]) for e in receipts_server.events(prefix))
    assert statuses == [
        ("DeliveredToTerminal", "tel:+2250700000001"),
        ("DeliveredToTerminal", "tel:+2250700000002"),
        ("MessageWaiting", "tel:+2250700000001"),
    ]


def test_orange_addresses_through_the_trusted_proxy_are_accepted(receipts_server):
    prefix = unique_prefix()
    response = post(
        receipts_server, receipt(f"{prefix}1"), headers={"X-Forwarded-For": f"203.0.113.9, {ORANGE_IP}"}
    )
    assert response.status_code == 200
    assert len(receipts_server.events(prefix)) == 1


def post_with_header_lines(
    server: ReceiptsServer, body: object, header_lines: list[tuple[str, str]]
) -> tuple[int, dict[str, Any]]:
    """POST with each of ``header_lines`` sent as its own line, repeats included (requests merges them)."""
    host, port = server.url.removeprefix("http://").split(":")
    payload = json.dumps(body).encode()
    connection = http.client.HTTPConnection(host, int(port), timeout=60)
    try:
        connection.putrequest("POST", server.receipt_url.removeprefix(server.url))
        for name, value in [("Content-Type", "application/json"), *header_lines]:
            connection.putheader(name, value)
        connection.putheader("Content-Length", str(len(payload)))
        connection.endheaders(payload)
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def test_forwarded_for_sent_as_several_lines_is_read_whole(receipts_server):
    """A client forges an allowed address in its own X-Forwarded-For line; the trusted proxy (the test,
    on 127.0.0.1) appends the real client's address as a second line: the right-most address counts."""
    prefix = unique_prefix()
    forged = post_with_header_lines(
        receipts_server,
        receipt(f"{prefix}1"),
        [("X-Forwarded-For", ORANGE_IP), ("X-Forwarded-For", "198.51.100.7")],
    )
    assert forged[0] == 403, forged
    assert "198.51.100.7" in forged[1]["detail"]
    assert receipts_server.events(prefix) == []

    from_orange = post_with_header_lines(
        receipts_server,
        receipt(f"{prefix}2"),
        [("X-Forwarded-For", "198.51.100.7"), ("X-Forwarded-For", f"{ORANGE_IP}, 127.0.0.1")],
    )
    assert from_orange == (200, {"status": "stored"})
    assert [e["extra"]["resource_id"] for e in receipts_server.events(prefix)] == [f"{prefix}2"]


def _bad_requests(server: ReceiptsServer, rid: str) -> list[tuple[str, int, requests.Response]]:
    good = receipt(rid)
    wrong_types = receipt(rid)
    wrong_types["deliveryInfoNotification"]["deliveryInfo"]["deliveryStatus"] = 3
    cases = [
        ("wrong secret", 404, post(server, good, url=server.receipt_url + "x")),
        ("secret prefix", 404, post(server, good, url=server.receipt_url[:-1])),
        ("source not allowed", 403, post(server, good, headers={"X-Forwarded-For": "198.51.100.7"})),
        ("malformed forwarded address", 403, post(server, good, headers={"X-Forwarded-For": "not-an-ip"})),
        ("malformed JSON", 400, post(server, b'{"deliveryInfoNotification": {')),
        ("not UTF-8", 400, post(server, b"\xff\xfe\x00")),
        ("JSON list", 422, post(server, [good])),
        ("missing deliveryInfo", 422, post(server, {"deliveryInfoNotification": {"callbackData": rid}})),
        ("status of the wrong type", 422, post(server, wrong_types)),
        ("unknown status", 422, post(server, receipt(rid, "Delivered"))),
        ("bad address", 422, post(server, receipt(rid, address="tel:+22507abc"))),
        (
            "callbackData not a string",
            422,
            post(
                server,
                {
                    **good,
                    "deliveryInfoNotification": {
                        **good["deliveryInfoNotification"],
                        "callbackData": {"id": rid},
                    },
                },
            ),
        ),
        ("text/plain", 415, post(server, good, headers={"Content-Type": "text/plain"})),
        ("form", 415, post(server, good, headers={"Content-Type": "application/x-www-form-urlencoded"})),
        ("too big", 413, post(server, json.dumps(receipt(rid + "x" * 70_000)))),
        ("JSON nested 30,000 deep", 400, post(server, b"[" * 30_000 + b"]" * 30_000)),
        ("a 5,000-digit integer", 400, post(server, b'{"deliveryInfoNotification": ' + b"7" * 5_000 + b"}")),
    ]
    return cases


def test_each_bad_request_gets_its_4xx_and_no_event(receipts_server):
    prefix = unique_prefix()
    for name, expected, response in _bad_requests(receipts_server, f"{prefix}1"):
        assert response.status_code == expected, (name, response.status_code, response.text)
        if expected != 404:
            assert "detail" in response.json(), name
    assert receipts_server.events(prefix) == []
    # The same receipt, well formed, is then accepted: the refusals left nothing behind.
    assert post(receipts_server, receipt(f"{prefix}1")).json() == {"status": "stored"}


def test_a_wrong_secret_looks_like_an_unknown_path(receipts_server):
    wrong = post(receipts_server, receipt("x"), url=receipts_server.receipt_url + "x")
    unknown = post(receipts_server, receipt("x"), url=f"{receipts_server.url}/orange-sms/nothing-here")
    assert (
        (wrong.status_code, wrong.json())
        == (unknown.status_code, unknown.json())
        == (404, {"detail": "Not Found"})
    )


def test_an_oversized_streamed_body_is_refused_without_reading_it_all(receipts_server):
    """Chunked, no Content-Length: the receiver stops at 64 KiB and answers 413."""
    prefix = unique_prefix()
    host, port = receipts_server.url.removeprefix("http://").split(":")
    path = receipts_server.receipt_url.removeprefix(receipts_server.url)
    with socket.create_connection((host, int(port)), timeout=60) as sock:
        sock.sendall(
            f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            "Transfer-Encoding: chunked\r\n\r\n".encode()
        )
        chunk = b"[" + b" " * 8190 + b"\n"
        sent = 0
        try:
            for _ in range(1024):  # up to 8 MiB offered; the server stops reading long before
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                sent += len(chunk)
        except OSError:
            pass  # the server answered and closed: fine
        answer = sock.recv(65536).decode(errors="replace")
    assert answer.startswith("HTTP/1.1 413"), answer[:200]
    assert receipts_server.events(prefix) == []


def test_a_thousand_concurrent_receipts_are_each_stored_exactly_once(receipts_server):
    prefix = unique_prefix()
    unique = [
        receipt(f"{prefix}{n:04d}", status, f"tel:+22507{n:08d}")
        for n in range(300)
        for status in ("MessageWaiting", "DeliveredToTerminal")
    ]  # 600 distinct receipts
    rng = random.Random(8)
    bodies = unique + [rng.choice(unique) for _ in range(400)]  # 400 repeats mixed in
    rng.shuffle(bodies)
    assert len(bodies) == 1000

    session = requests.Session()
    session.mount("http://", requests.adapters.HTTPAdapter(pool_connections=64, pool_maxsize=64))

    def send(body: dict) -> list[int]:
        """Post until 200, as Orange does: a 503 (bounded waits on a loaded machine) is retried."""
        codes = [session.post(receipts_server.receipt_url, json=body, timeout=300).status_code]
        while codes[-1] == 503 and len(codes) < 20:
            time.sleep(0.5)
            codes.append(session.post(receipts_server.receipt_url, json=body, timeout=300).status_code)
        return codes

    with ThreadPoolExecutor(max_workers=64) as pool:
        answers = list(pool.map(send, bodies))

    assert [codes for codes in answers if codes[-1] != 200 or set(codes) - {200, 503}] == []
    events = receipts_server.events(prefix)
    keys = [(e["extra"]["resource_id"], e["extra"]["recipient"], e["extra"]["status"]) for e in events]
    assert len(keys) == len(set(keys)) == 600
    assert set(keys) == {
        (
            b["deliveryInfoNotification"]["callbackData"],
            b["deliveryInfoNotification"]["deliveryInfo"]["address"],
            b["deliveryInfoNotification"]["deliveryInfo"]["deliveryStatus"],
        )
        for b in unique
    }


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_other_methods_are_refused(receipts_server, method):
    response = requests.request(method, receipts_server.receipt_url, timeout=30)
    assert response.status_code == 405


def path_variants(secret: str) -> list[str]:
    """Paths that hold the secret but miss the receiver (each sent as is, dot segments included)."""
    encoded = "".join(f"%{ord(c):02X}" for c in secret[:6]) + secret[6:]
    return [
        f"/orange-sms/Delivery-Receipts/{secret}",
        f"/api/v2/../orange-sms/delivery-receipts/{secret}",
        f"/orange-sms/delivery-receipts/{secret}/",
        f"/orange-sms//delivery-receipts//{secret}",
        f"/orange-sms/delivery-receipts/{encoded}x",
        f"/orange-sms/delivery-receipts/{secret.lower()}",
        f"/ORANGE-SMS/DELIVERY-RECEIPTS/{secret.upper()}",
        f"/api/v2/{secret}",
        f"/orange-sms/delivery-receipts?secret={secret}",
    ]


def send_raw(server: ReceiptsServer, method: str, path: str) -> int:
    """Send ``path`` byte for byte (requests would normalise ``..`` and ``//``); return the status."""
    host, port = server.url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=60)
    try:
        connection.putrequest(method, path, skip_accept_encoding=True)
        connection.putheader("Content-Type", "application/json")
        connection.putheader("Content-Length", "2")
        connection.endheaders(b"{}")
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def test_the_secret_never_appears_in_the_api_server_output(receipts_server):
    """Runs after the tests above (file order): uvicorn/Airflow access logs print request paths."""
    post(receipts_server, receipt("log-check"))
    post(receipts_server, receipt("log-check"), url=receipts_server.receipt_url + "x")
    statuses = [send_raw(receipts_server, "POST", path) for path in path_variants(receipts_server.secret)]
    assert all(300 <= status < 500 for status in statuses), statuses  # a 307 adds the slash
    output = receipts_server.output()
    # The access log is there, masked (uvicorn's on Airflow 3.0 quotes it: %2A%2A%2A).
    assert "/orange-sms/delivery-receipts/***" in output or "/delivery-receipts/%2A%2A%2A" in output
    assert "/orange-sms/Delivery-Receipts/***" in output or "/Delivery-Receipts/%2A%2A%2A" in output
    for text in (output, unquote(unquote(output))):
        assert receipts_server.secret.lower() not in text.lower()
        assert receipts_server.secret[:12].lower() not in text.lower()
    assert "Traceback" not in output
    # No server error (503, the answer to a busy database, is not one: the sender retries).
    assert '" 500' not in output
    assert "status_code=500" not in output


@skip_on_airflow_3_0("3.0's asset manager logs a second, different warning once ('AssetModel not found')")
def test_the_inactive_asset_warning_is_logged_once_not_per_receipt(receipts_server):
    """Airflow warns "Emitting event for inactive AssetModel" for each event of an asset no DAG
    declares (the tests' case): the receiver lets it through once per API server process."""
    prefix = unique_prefix()
    for n in range(5):
        assert post(receipts_server, receipt(f"{prefix}{n}")).json() == {"status": "stored"}
    assert len(receipts_server.events(prefix)) == 5
    # Counted for this asset only: the server is shared with the reply tests, whose asset warns once too.
    warning = "Emitting event for inactive AssetModel AssetKey(name='orange_sms_delivery_receipts'"
    assert receipts_server.output().count(warning) <= 1


@pytest.mark.parametrize("held", ["database", "same_receipt"])
def test_a_held_lock_answers_503_then_the_retry_is_stored_once(receipts_server, held):
    """Another transaction holds a lock the receipt needs: on SQLite the database's (an exclusive
    transaction), on PostgreSQL the dedup table's (``database``) or the row of the same receipt
    being inserted by a transaction that does not end (``same_receipt``). The receiver gives up
    after its lock timeout: 503 with Retry-After, nothing stored; once the lock is gone, the
    sender's retry is stored exactly once. (The requests' 60 s timeout bounds the wait.)"""
    prefix = unique_prefix()
    body = receipt(f"{prefix}1", "DeliveredToTerminal")
    with hold_lock(held, body):
        response = post(receipts_server, body)
    assert response.status_code == 503, response.text
    assert response.headers["Retry-After"].isdigit()
    assert receipts_server.events(prefix) == []

    retry = post(receipts_server, body)
    assert (retry.status_code, retry.json()) == (200, {"status": "stored"})
    assert post(receipts_server, body).json() == {"status": "duplicate"}
    assert len(receipts_server.events(prefix)) == 1


def test_receipts_do_not_queue_behind_a_lock_on_the_asset_row(receipts_server):
    """PostgreSQL: a transaction holding the asset's row (``SELECT … FOR UPDATE``) does not delay
    receipts: repeats are settled by the dedup table's key, not by one lock every receipt takes."""
    prefix = unique_prefix()
    bodies = [receipt(f"{prefix}{n}") for n in range(3)]
    with hold_lock("asset_row", bodies[0]):
        answers = [post(receipts_server, b).json() for b in [*bodies, bodies[0]]]
    assert answers == [{"status": "stored"}] * 3 + [{"status": "duplicate"}]
    assert len(receipts_server.events(prefix)) == 3
