"""The sandbox itself: it must refuse what Orange refuses, or the client tests prove nothing."""

from __future__ import annotations

import base64
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from airflow_provider_orange_sms.sandbox import SandboxConfig, SandboxServer, SandboxState
from airflow_provider_orange_sms.sandbox.report import render
from tests.support.sandbox import OWN_NUMBER

SEND = "/smsmessaging/v1/outbound/tel%3A%2B2250000/requests"
JSON = {"Accept": "application/json"}
BASIC = "Basic " + base64.b64encode(b"sandbox-client-id:sandbox-client-secret").decode()


def token_for(sandbox) -> str:
    basic = base64.b64encode(f"{sandbox.client_id}:{sandbox.client_secret}".encode()).decode()
    response = requests.post(
        sandbox.url + "/oauth/v3/token",
        headers={"Authorization": f"Basic {basic}", **JSON},
        data={"grant_type": "client_credentials"},
        timeout=5,
    )
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == "3600"  # a string, as Orange sends it
    return body["access_token"]


def send(sandbox, token, body, path=SEND, **headers):
    return requests.post(
        sandbox.url + path, json=body, headers={"Authorization": f"Bearer {token}", **headers}, timeout=5
    )


def message(address="tel:+2250700000001", sender="tel:+2250000", text="hi", **extra):
    request = {"address": address, "senderAddress": sender, "outboundSMSTextMessage": {"message": text}}
    request.update(extra)
    return {"outboundSMSMessageRequest": request}


def service_error(response):
    exc = response.json()["requestError"]
    return exc.get("serviceException") or exc.get("policyException")


def test_valid_send_answers_201_with_location_and_resource_url(sandbox):
    response = send(sandbox, token_for(sandbox), message())
    assert response.status_code == 201
    body = response.json()["outboundSMSMessageRequest"]
    assert response.headers["Location"] == body["resourceURL"]
    assert body["resourceURL"].endswith("/requests/" + sandbox.state.messages[0].resource_id)


@pytest.mark.parametrize(
    ("path", "body", "message_id", "part"),
    [
        ("/smsmessaging/v1/outbound/tel:+2250000/requests", message(), "SVC0002", "senderAddress in the URL"),
        (SEND, message(sender="tel:+2210000"), "SVC0002", "senderAddress"),
        (SEND, message(address="+2250700000001"), "SVC0004", "address"),
        (SEND, message(address="tel:+22507"), "SVC0004", "address"),
        (SEND, message(address="tel:+2٢٥٠٧٠٠٠٠٠٠٠١"), "SVC0004", "address"),  # Arabic-Indic digits  # noqa: RUF001
        (SEND, message(text=""), "SVC0002", "outboundSMSTextMessage.message"),
        (SEND, message(unexpected=1), "SVC0002", "unexpected"),
        (SEND, {"address": "tel:+2250700000001"}, "SVC0002", "outboundSMSMessageRequest"),
        (
            "/smsmessaging/v1/outbound/tel%3A%2B1230000/requests",
            message(sender="tel:+1230000"),
            "SVC0002",
            "senderAddress",
        ),
    ],
)
def test_malformed_sends_are_refused_like_orange(sandbox, path, body, message_id, part):
    response = send(sandbox, token_for(sandbox), body, path=path)
    assert response.status_code == 400
    error = service_error(response)
    assert error["messageId"] == message_id
    assert any(part in variable for variable in error["variables"])
    assert sandbox.state.messages == []


def test_a_developer_own_sender_number_is_accepted_and_billed_to_its_country(sandbox):
    path = f"/smsmessaging/v1/outbound/tel%3A%2B{OWN_NUMBER}/requests"
    response = send(sandbox, token_for(sandbox), message(sender=f"tel:+{OWN_NUMBER}"), path=path)
    assert response.status_code == 201, response.text
    [stored] = sandbox.state.messages
    assert (stored.sender_address, stored.country) == (OWN_NUMBER, "CIV")


@pytest.mark.parametrize("sender", ["99900000000", "22500", "2250700009999123456"])
def test_a_malformed_sender_number_is_still_refused(sandbox, sender):
    path = f"/smsmessaging/v1/outbound/tel%3A%2B{sender}/requests"
    response = send(sandbox, token_for(sandbox), message(sender=f"tel:+{sender}"), path=path)
    assert response.status_code == 400
    assert service_error(response)["messageId"] == "SVC0002"
    assert "senderAddress" in service_error(response)["variables"][0]
    assert sandbox.state.messages == []


@pytest.mark.parametrize("sandbox_config", [SandboxConfig(dr_delay=None, sender_addresses=(OWN_NUMBER,))])
def test_configured_senders_limit_the_account_to_them_and_the_country_numbers(sandbox):
    token = token_for(sandbox)
    for sender, status in [(OWN_NUMBER, 201), ("2250000", 201), ("2250700001111", 400)]:
        path = f"/smsmessaging/v1/outbound/tel%3A%2B{sender}/requests"
        response = send(sandbox, token, message(sender=f"tel:+{sender}"), path=path)
        assert response.status_code == status, sender
    assert [m.sender_address for m in sandbox.state.messages] == [OWN_NUMBER, "2250000"]


def test_json_content_type_required(sandbox):
    token = token_for(sandbox)
    response = requests.post(
        sandbox.url + SEND,
        data=json.dumps(message()),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "text/plain"},
        timeout=5,
    )
    assert response.status_code == 400
    assert sandbox.state.messages == []


@pytest.mark.parametrize(
    ("authorization", "code"),
    [(None, 40), ("Bearer not-a-token", 41), ("Basic abc", 40)],
)
def test_bearer_token_required(sandbox, authorization, code):
    headers = {} if authorization is None else {"Authorization": authorization}
    response = requests.get(sandbox.url + "/sms/admin/v1/contracts", headers=headers, timeout=5)
    assert response.status_code == 401
    assert response.json()["code"] == code


def test_expired_token_answers_code_42(sandbox):
    token = token_for(sandbox)
    sandbox.state.expire_tokens()
    response = requests.get(
        sandbox.url + "/sms/admin/v1/contracts", headers={"Authorization": f"Bearer {token}"}, timeout=5
    )
    assert (response.status_code, response.json()["code"]) == (401, 42)


@pytest.mark.parametrize(
    ("authorization", "data", "status", "error"),
    [
        (
            "Basic " + base64.b64encode(b"sandbox-client-id:wrong").decode(),
            {"grant_type": "client_credentials"},
            401,
            41,
        ),
        (
            "Basic " + base64.b64encode(b"someone-else:secret").decode(),
            {"grant_type": "client_credentials"},
            401,
            41,
        ),
        ("Basic not-base64!", {"grant_type": "client_credentials"}, 401, 41),
        (None, {"grant_type": "client_credentials"}, 401, 40),
        (BASIC, {"grant_type": "password"}, 400, "unsupported_grant_type"),
    ],
)
def test_token_endpoint_checks_basic_auth_and_grant(sandbox, authorization, data, status, error):
    """Wrong credentials: 401 code 41, as Orange's error page documents (the gateway's shape)."""
    headers = {**JSON} if authorization is None else {"Authorization": authorization, **JSON}
    response = requests.post(sandbox.url + "/oauth/v3/token", headers=headers, data=data, timeout=5)
    assert response.status_code == status
    body = response.json()
    assert (body["code"] if isinstance(error, int) else body["error"]) == error
    assert sandbox.state.token_requests == 0


def test_token_endpoint_answers_oauth_invalid_client_as_a_fault(sandbox):
    sandbox.state.add_fault(kind="status", status=401, code="invalid_client", path="/oauth")
    response = requests.post(
        sandbox.url + "/oauth/v3/token",
        headers={"Authorization": BASIC, **JSON},
        data={"grant_type": "x"},
        timeout=5,
    )
    assert (response.status_code, response.json()["error"]) == (401, "invalid_client")


def test_token_endpoint_wants_a_form_body(sandbox):
    response = requests.post(
        sandbox.url + "/oauth/v2/token",
        headers={"Authorization": BASIC, **JSON},
        json={"grant_type": "client_credentials"},
        timeout=5,
    )
    assert response.status_code == 400


@pytest.mark.parametrize("accept", [None, "*/*", "text/html", "application/xml"])
def test_token_endpoint_answers_406_without_accept_json(sandbox, accept):
    headers = {"Authorization": BASIC} if accept is None else {"Authorization": BASIC, "Accept": accept}
    session = requests.Session()
    session.headers.pop("Accept")  # requests adds */* by default
    response = session.post(
        sandbox.url + "/oauth/v3/token", headers=headers, data={"grant_type": "client_credentials"}, timeout=5
    )
    assert response.status_code == 406
    assert "Accept" in response.json()["description"]
    assert sandbox.state.token_requests == 0


@pytest.mark.parametrize(
    "accept", ["application/json", "application/json;charset=utf-8", "text/html, application/json;q=0.9"]
)
def test_token_endpoint_takes_accept_json_among_others(sandbox, accept):
    response = requests.post(
        sandbox.url + "/oauth/v3/token",
        headers={"Authorization": BASIC, "Accept": accept},
        data={"grant_type": "client_credentials"},
        timeout=5,
    )
    assert response.status_code == 200


def test_token_requests_are_capped_per_client_at_50_a_minute(sandbox):
    clock = [1000.0]
    sandbox.state.clock = lambda: clock[0]
    sandbox.state.config.clients["other-app"] = "other-secret"

    def token_request(basic=BASIC):
        return requests.post(
            sandbox.url + "/oauth/v3/token",
            headers={"Authorization": basic, **JSON},
            data={"grant_type": "client_credentials"},
            timeout=5,
        )

    assert [token_request().status_code for _ in range(50)] == [200] * 50
    refused = token_request()
    assert refused.status_code == 429
    assert refused.json()["code"] == 53
    assert 0 < float(refused.headers["Retry-After"]) <= 60
    other = "Basic " + base64.b64encode(b"other-app:other-secret").decode()
    assert token_request(other).status_code == 200  # per client id
    clock[0] += 60
    assert token_request().status_code == 200
    assert sandbox.state.token_requests == 52


def test_rate_limit_is_enforced_per_second(sandbox):
    clock = [1000.0]
    sandbox.state.clock = lambda: clock[0]  # the window is measured on a clock the test moves
    token = token_for(sandbox)

    def send_one(i):
        return send(sandbox, token, message(address=f"tel:+22507000000{i:02d}"))

    statuses = [send_one(i).status_code for i in range(7)]
    assert statuses == [201] * 5 + [429] * 2
    refused = send_one(7)
    assert refused.headers["Retry-After"] == "1"
    assert refused.json()["code"] == 53
    clock[0] += 0.999
    assert send_one(8).status_code == 429  # still inside the same second
    clock[0] += 0.002
    assert send_one(9).status_code == 201  # the first five left the window
    assert sandbox.state.rate_limited == 4


def test_the_rate_window_judges_sends_at_their_arrival_even_out_of_order():
    """A send the sandbox looks at late is judged at its arrival, against sends on both sides."""
    state = SandboxState(SandboxConfig(rate_limit=5))
    for arrival in (0.0, 0.2, 0.4, 0.6, 1.0):
        assert not state.over_rate_limit("client", arrived_at=arrival)
    assert not state.over_rate_limit("client", arrived_at=0.8)  # 0.0 .. 1.0: six, but not within 1 s
    assert state.over_rate_limit("client", arrived_at=0.9)  # 0.0 .. 0.9 would hold six
    assert state.over_rate_limit("client", arrived_at=0.1)  # 0.0 .. 0.8 would hold six
    assert not state.over_rate_limit("client", arrived_at=1.21)  # refused ones do not count
    assert state.rate_limited == 2


def test_a_send_judged_seconds_late_still_counts_against_the_sends_around_its_arrival():
    """A send held by a delay fault (or a slow body) is judged at its arrival, after later sends."""
    state = SandboxState(SandboxConfig(rate_limit=5))
    for arrival in (0.1, 0.2, 0.3, 0.4, 0.5, 2.2):
        assert not state.over_rate_limit("client", arrived_at=arrival)
    assert state.over_rate_limit("client", arrived_at=0.0)  # 0.0 .. 0.5 would hold six


def test_the_rate_window_forgets_sends_long_past():
    state = SandboxState(SandboxConfig(rate_limit=1, rate_window=1.0))
    for second in range(1000):
        assert not state.over_rate_limit("client", arrived_at=float(second))
    assert len(state._send_times["client"]) < 200
    assert state.over_rate_limit("client", arrived_at=999.5)


def test_unknown_resource(sandbox):
    response = requests.get(
        sandbox.url + "/smsmessaging/v1/outbound/subscriptions/nope",
        headers={"Authorization": f"Bearer {token_for(sandbox)}"},
        timeout=5,
    )
    assert (response.status_code, response.json()["code"]) == (404, 60)


@pytest.fixture
def sandbox_config():
    return SandboxConfig(dr_delay=0.05)


def test_delivery_receipt_is_posted_to_the_subscribed_url(sandbox, client):
    received: list[dict] = []
    arrived = threading.Event()

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self):
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()
            arrived.set()

        def log_message(self, *args):
            pass

    receiver = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    # polls for shutdown every 10 ms, not 0.5 s
    threading.Thread(target=receiver.serve_forever, args=(0.01,), daemon=True).start()
    try:
        client.create_delivery_receipt_subscription(f"http://127.0.0.1:{receiver.server_address[1]}/dr")
        sandbox.state.delivery_statuses["tel:+2250700000002"] = "DeliveryImpossible"
        resource_id = client.send_sms("+2250700000002", "hi")
        assert arrived.wait(10)
    finally:
        receiver.shutdown()
        receiver.server_close()
    assert received == [
        {
            "deliveryInfoNotification": {
                "callbackData": resource_id,
                "deliveryInfo": {"address": "tel:+2250700000002", "deliveryStatus": "DeliveryImpossible"},
            }
        }
    ]
    deadline = time.monotonic() + 5
    while not sandbox.state.callbacks and time.monotonic() < deadline:
        time.sleep(0.01)
    assert sandbox.state.callbacks[0]["outcome"] == 200


@pytest.mark.parametrize(
    ("retries", "answers", "outcomes"),
    [
        pytest.param(0, [503, 200], [503], id="posted once by default"),
        pytest.param(3, [503, 503, 200], [503, 503, 200], id="posted again after 5xx until accepted"),
        pytest.param(1, [503, 503, 200], [503, 503], id="at most retries + 1 posts"),
        pytest.param(3, [400, 200], [400], id="a 4xx is final"),
    ],
)
def test_delivery_receipt_post_is_retried_when_it_failed(cache_dir, retries, answers, outcomes):
    from airflow_provider_orange_sms.client import OrangeSMSClient

    answers = list(answers)
    posts: list[dict] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self):
            posts.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(answers.pop(0) if answers else 200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    receiver = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    # polls for shutdown every 10 ms, not 0.5 s
    threading.Thread(target=receiver.serve_forever, args=(0.01,), daemon=True).start()
    config = SandboxConfig(dr_delay=0.01, dr_retries=retries, dr_retry_delay=0.01)
    try:
        with SandboxServer(config=config) as sandbox:
            client = OrangeSMSClient(
                base_url=sandbox.url,
                client_id=sandbox.client_id,
                client_secret=sandbox.client_secret,
                sender_address="2250000",
            )
            client.create_delivery_receipt_subscription(f"http://127.0.0.1:{receiver.server_address[1]}/dr")
            client.send_sms("+2250700000002", "hi")  # its receipt is queued before the 201
            sandbox._receipts.shutdown(wait=True)  # every post and repost of it is done
            assert [c["outcome"] for c in sandbox.state.callbacks] == outcomes
    finally:
        receiver.shutdown()
        receiver.server_close()
    assert len(posts) == len(outcomes)
    assert all(post == posts[0] for post in posts)


def test_control_api_and_report(sandbox, client):
    requests.post(
        sandbox.url + "/_sandbox/faults",
        json={"kind": "status", "status": 503, "path": "/sms/admin"},
        timeout=5,
    ).raise_for_status()
    requests.put(sandbox.url + "/_sandbox/balances", json={"CIV": 3}, timeout=5).raise_for_status()
    assert client.get_available_units("CIV") == 3  # the 503 was retried
    client.send_sms("+2250700000001", "Bonjour")
    state = requests.get(sandbox.url + "/_sandbox/state", timeout=5).json()
    assert state["balances"]["CIV"] == 2
    report = render(state)
    assert "received 1 SMS" in report
    assert "tel:+2250700000001" in report
    assert "CIV=2" in report
    bad = requests.post(sandbox.url + "/_sandbox/faults", json={"kind": "explode"}, timeout=5)
    assert bad.status_code == 400
    requests.post(sandbox.url + "/_sandbox/reset", timeout=5).raise_for_status()
    assert sandbox.state.messages == []


def raw_status(sandbox, request: bytes) -> int | None:
    """Send ``request`` as is; the status of the answer, ``None`` when the sandbox dropped it."""
    import socket
    from urllib.parse import urlsplit

    split = urlsplit(sandbox.url)
    with socket.create_connection((split.hostname, split.port), timeout=10) as connection:
        connection.sendall(request)
        first = connection.makefile("rb").readline()
    return int(first.split()[1]) if first.startswith(b"HTTP/") else None


_DEEP = b"[" * 50_000 + b"]" * 50_000


@pytest.mark.parametrize(
    ("path", "headers", "body"),
    [
        (SEND, b"Content-Length: abc\r\n", b""),
        (SEND, b"Content-Length: -1\r\n", b""),
        (SEND, b"Content-Length: 99999999999\r\n", b""),
        (SEND, b"Content-Type: application/json\r\nContent-Length: %d\r\n" % len(_DEEP), _DEEP),
        ("/_sandbox/faults", b"Content-Type: application/json\r\nContent-Length: %d\r\n" % len(_DEEP), _DEEP),
        ("/_sandbox/faults", b"Content-Length: 3\r\n", b"\xff\xfe{"),
        ("/_sandbox/faults", b"Content-Length: 17\r\n", b'{"status": "abc"}'),
        ("/_sandbox/faults", b"Content-Length: 14\r\n", b'{"count": "3"}'),
        ("/_sandbox/inbound", b"Content-Length: 2\r\n", b"[]"),
    ],
    ids=[
        "content-length-not-a-number",
        "content-length-negative",
        "content-length-huge",
        "json-nested-too-deep",
        "control-json-nested-too-deep",
        "control-not-utf8",
        "fault-status-not-a-number",
        "fault-count-not-a-number",
        "control-body-not-an-object",
    ],
)
def test_a_malformed_request_gets_a_4xx_never_a_dropped_connection(sandbox, path, headers, body):
    bearer = b"Authorization: Bearer %s\r\n" % token_for(sandbox).encode()
    request = b"POST %s HTTP/1.1\r\nHost: sandbox\r\nConnection: close\r\n%s%s\r\n%s" % (
        path.encode(),
        bearer,
        headers,
        body,
    )
    status = raw_status(sandbox, request)
    assert status is not None
    assert 400 <= status < 500
    # A refused fault is not queued: the next request is answered normally.
    assert requests.get(sandbox.url + "/_sandbox/state", timeout=5).status_code == 200
    assert sandbox.state.faults == []


@pytest.mark.parametrize("method", [b"PATCH", b"OPTIONS", b"BREW"])
def test_another_method_gets_405_not_501(sandbox, method):
    request = b"%s %s HTTP/1.1\r\nHost: sandbox\r\nConnection: close\r\n\r\n" % (method, SEND.encode())
    assert raw_status(sandbox, request) == 405
