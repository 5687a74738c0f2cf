"""The reply receiver over real HTTP, on a real ``airflow api-server``
(tests/support/receipts_server.py): events, repeats, bad input, and the opt-out list it writes."""

from __future__ import annotations

import json
import random
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from urllib.parse import unquote

import requests

from airflow_provider_orange_sms.opt_out import OptOutRecord, variable_key
from tests.support.receipts_server import ReceiptsServer, reply_body


def post(server: ReceiptsServer, body: object, **kwargs: object) -> requests.Response:
    headers = {"Content-Type": "application/json", **kwargs.pop("headers", {})}  # type: ignore[dict-item]
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    url = kwargs.pop("url", server.reply_url)
    return requests.post(url, data=data, headers=headers, timeout=60, **kwargs)  # type: ignore[arg-type]


def unique_number() -> str:
    return "+22507" + str(uuid.uuid4().int)[:8]


def opt_out_record(server: ReceiptsServer, number: str) -> OptOutRecord | None:
    value = server.variable(variable_key(number))
    return None if value is None else OptOutRecord.from_json(value)


def test_a_reply_becomes_an_asset_event(receipts_server):
    sender = unique_number()
    body = reply_body(
        "tel:" + sender, "Hello, YES", message_id="", destination="2250000", callback_data="cb-1"
    )
    answer = post(receipts_server, body)
    assert (answer.status_code, answer.json()) == (200, {"status": "stored"})
    [event] = receipts_server.reply_events(sender)
    sms = body["inboundSMSMessageNotification"]["inboundSMSMessage"]
    assert event["uri"] == "orange-sms://inbound-messages/"
    extra = event["extra"]
    assert (extra["sender"], extra["destination"], extra["message"], extra["message_id"]) == (
        sender,
        "+2250000",
        "Hello, YES",
        sms["messageId"],
    )
    assert extra["sent_at"] == "2026-02-10T14:30:00+00:00"
    assert extra["callback_data"] == "cb-1"
    assert datetime.fromisoformat(extra["received_at"]).tzinfo is not None


def test_repeats_are_stored_once(receipts_server):
    sender = unique_number()
    with_id = reply_body(sender, "HELP", message_id="")
    without_id = reply_body(sender, "INFO", message_id=None)
    answers = [
        post(receipts_server, body).json()["status"] for body in (with_id, with_id, without_id, without_id)
    ]
    assert answers == ["stored", "duplicate", "stored", "duplicate"]
    assert sorted(e["extra"]["message"] for e in receipts_server.reply_events(sender)) == ["HELP", "INFO"]


def test_each_bad_request_gets_its_4xx_and_no_event(receipts_server):
    sender = unique_number()
    good = reply_body(sender, "hi")
    sms = good["inboundSMSMessageNotification"]["inboundSMSMessage"]
    cases = [
        (post(receipts_server, good, url=receipts_server.reply_url + "x"), 404, "Not Found"),
        (post(receipts_server, good, headers={"Content-Type": "text/plain"}), 415, "text/plain"),
        (post(receipts_server, good, headers={"X-Forwarded-For": "203.0.113.9"}), 403, "203.0.113.9"),
        (post(receipts_server, b'{"inboundSMSMessageNotification": '), 400, "not JSON"),
        (post(receipts_server, b"x" * (64 * 1024 + 1)), 413, "over the limit"),
        (post(receipts_server, {**good, "inboundSMSMessageNotification": []}), 422, "a list of 0 items"),
        (post(receipts_server, json.dumps(good).replace(sender, "0700000001")), 422, "'0700000001'"),
        (post(receipts_server, json.dumps(good).replace(sms["dateTime"], "tomorrow")), 422, "'tomorrow'"),
        (post(receipts_server, json.dumps(good).replace('"hi"', "null")), 422, "message None"),
    ]
    for response, status, named in cases:
        assert response.status_code == status, (status, response.text)
        assert named in response.json()["detail"], (named, response.text)
    assert receipts_server.reply_events(sender) == []


def test_stop_opts_a_number_out_and_start_back_in(receipts_server):
    sender, other = unique_number(), unique_number()
    stop = reply_body("tel:" + sender, "Stop", message_id="", date_time="2026-02-10T14:30:00Z")
    assert post(receipts_server, stop).json() == {"status": "stored", "opt_out": "opted_out"}
    record = opt_out_record(receipts_server, sender)
    assert record is not None
    assert (record.number, record.opted_out, record.source, record.keyword) == (
        sender,
        True,
        "inbound",
        "stop",
    )
    assert record.at == "2026-02-10T14:30:00+00:00"
    assert opt_out_record(receipts_server, other) is None  # only the sender is on the list

    start = reply_body(sender, "START", message_id="", date_time="2026-02-10T15:00:00Z")
    assert post(receipts_server, start).json() == {"status": "stored", "opt_out": "opted_in"}
    assert opt_out_record(receipts_server, sender).opted_out is False  # type: ignore[union-attr]
    # Orange repeating the STOP later changes nothing: stored once, and older than the START.
    assert post(receipts_server, stop).json() == {"status": "duplicate"}
    assert opt_out_record(receipts_server, sender).opted_out is False  # type: ignore[union-attr]
    assert len(receipts_server.reply_events(sender)) == 2


def test_concurrent_stop_and_start_end_in_the_later_one_s_state(receipts_server):
    """For each number, 12 STOP/START replies with distinct times are posted at once, in random
    order; whichever transaction commits last, the list holds the reply with the latest time."""
    start_of_day = datetime(2026, 2, 10, 8, 0, tzinfo=timezone.utc)
    numbers = [unique_number() for _ in range(4)]
    expected: dict[str, bool] = {}
    bodies = []
    for index, number in enumerate(numbers):
        words = ["STOP", "START"] * 6
        random.shuffle(words)
        if index % 2:  # the latest reply: STOP for half the numbers, START for the others
            words[-1] = "STOP"
        else:
            words[-1] = "START"
        expected[number] = words[-1] == "STOP"
        for minute, word in enumerate(words):
            moment = (start_of_day + timedelta(minutes=minute)).isoformat().replace("+00:00", "Z")
            bodies.append(reply_body(number, word, message_id="", date_time=moment))
    random.shuffle(bodies)
    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(lambda body: post(receipts_server, body).status_code, bodies))
    assert statuses == [200] * len(bodies)
    for number in numbers:
        record = opt_out_record(receipts_server, number)
        assert record is not None
        assert record.opted_out is expected[number], number
        assert record.at == "2026-02-10T08:11:00+00:00"
        assert len(receipts_server.reply_events(number)) == 12


def test_the_secret_never_appears_in_the_output_for_the_reply_path(receipts_server):
    post(receipts_server, reply_body(unique_number(), "x"))
    post(receipts_server, reply_body(unique_number(), "x"), url=receipts_server.reply_url + "x")
    output = receipts_server.output()
    assert "/orange-sms/inbound-messages/***" in output or "/inbound-messages/%2A%2A%2A" in output
    for text in (output, unquote(unquote(output))):
        assert receipts_server.secret.lower() not in text.lower()


def test_a_sandbox_subscriber_s_stop_reaches_the_receiver(receipts_server, sandbox):
    control = f"{sandbox.url}/_sandbox"
    sender = unique_number()
    unregistered = requests.post(f"{control}/inbound", json={"sender": sender, "message": "STOP"}, timeout=30)
    assert unregistered.status_code == 409
    bad_url = requests.put(f"{control}/inbound-url", json={"url": "ftp://x"}, timeout=30)
    assert bad_url.status_code == 400
    assert "'ftp://x'" in bad_url.json()["error"]
    registered = requests.put(f"{control}/inbound-url", json={"url": receipts_server.reply_url}, timeout=30)
    assert registered.status_code == 204
    assert requests.post(f"{control}/inbound", json={"sender": sender}, timeout=30).status_code == 400

    sent = requests.post(f"{control}/inbound", json={"sender": sender, "message": "STOP"}, timeout=60).json()
    assert sent["status"] == 200
    assert sent["attempts"] == 1
    assert sent["response"] == {"status": "stored", "opt_out": "opted_out"}
    sms = sent["notification"]["inboundSMSMessageNotification"]["inboundSMSMessage"]
    assert sms["senderAddress"] == "tel:" + sender
    assert sms["destinationAddress"] == "tel:+2250000"
    assert opt_out_record(receipts_server, sender).opted_out is True  # type: ignore[union-attr]
    [event] = receipts_server.reply_events(sender)
    assert event["extra"]["message_id"] == sms["messageId"]
    # Without messageId (as some accounts receive), and the sandbox's record hides the secret.
    bare = {"sender": sender, "message": "START", "message_id": None}
    later = requests.post(f"{control}/inbound", json=bare, timeout=60).json()
    assert later["response"] == {"status": "stored", "opt_out": "opted_in"}
    assert "messageId" not in later["notification"]["inboundSMSMessageNotification"]["inboundSMSMessage"]
    snapshot = requests.get(f"{control}/state", timeout=30).text
    assert receipts_server.secret not in snapshot
    assert "/orange-sms/inbound-messages/***" in snapshot


def test_the_sandbox_tries_an_unreachable_inbound_url_again(sandbox):
    import socket

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    control = f"{sandbox.url}/_sandbox"
    url = f"http://127.0.0.1:{closed}/orange-sms/inbound-messages/s"
    assert requests.put(f"{control}/inbound-url", json={"url": url}, timeout=30).status_code == 204
    sent = requests.post(f"{control}/inbound", json={"sender": "+2250700000001", "message": "hi"}, timeout=60)
    from airflow_provider_orange_sms.sandbox.subscriber_replies import ATTEMPTS

    assert sent.json()["attempts"] == ATTEMPTS
    assert sent.json()["status"] == "URLError"
