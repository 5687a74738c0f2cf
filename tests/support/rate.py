"""
The send limit judged in tests: each send tagged with the instant its limiter released it, the
sandbox's rate window judged at those instants, and the spacing of any ``rate + 1`` releases.
"""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_orange_sms.client import OrangeSMSClient
from airflow_provider_orange_sms.sandbox import SandboxServer

#: Test-only request header: the limiter's slot a send was released in (see judge_rate_at_release).
SLOT_HEADER = "X-Test-Limiter-Slot"


def tag_sends_with_their_slot(client: OrangeSMSClient) -> None:
    """
    Make ``client`` send, on each request, the instant its limiter let it go (``SLOT_HEADER``):
    ``last_release``, on the limiter's shared clock (the machine's wall clock, or Redis's).

    That is the send's booked slot, or, for a sender woken late that kept its turn, when it woke.
    Works in any process: spawned test processes call it on their own clients.
    """
    limiter = client.limiter
    assert limiter is not None
    wait = limiter.wait

    def wait_and_tag(booking: Any, before_send: Any = None) -> float:
        waited = wait(booking, before_send)
        client.session.headers[SLOT_HEADER] = repr(limiter.last_release)
        return waited

    limiter.wait = wait_and_tag  # type: ignore[method-assign]


def judge_rate_at_release(sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """
    Make the sandbox count each send in its rate window at the instant the client's limiter released
    it (``SLOT_HEADER``, see :func:`tag_sends_with_their_slot`) rather than at its arrival.

    Arrival times carry the scheduling jitter of a loaded machine (a client thread or the server's
    running late): 10 ms is enough to squeeze six arrivals into Orange's one-second window although
    the limiter spaced the sends 202 ms apart. Judged at the release instants, the sandbox's 429s
    count exactly the sends the limiter let through too close together, which must be none.

    Returns the slots of every send request the sandbox receives (from every process), in order.
    """
    from airflow_provider_orange_sms.sandbox.server import SandboxHandler

    released: list[float] = []
    send = SandboxHandler._send

    def send_judged_at_its_slot(handler: SandboxHandler, client_id: str, sender: str) -> Any:
        slot = handler.headers.get(SLOT_HEADER)
        assert slot is not None, "a send without its limiter's slot: it bypassed the limiter"
        handler.reached_gateway = float(slot)  # the instant the window judges it at
        with sandbox.state.lock:
            released.append(float(slot))
        return send(handler, client_id, sender)

    monkeypatch.setattr(SandboxHandler, "_send", send_judged_at_its_slot)
    return released


def assert_windows_spaced(released: list[float], rate: int, interval: float) -> None:
    """
    Assert that any ``rate + 1`` consecutive releases span ``rate`` intervals, less LATE_WAKE_UP.

    That, not the gap between two sends, is what keeps ``rate + 1`` arrivals out of Orange's one
    second despite network jitter: a sender woken late keeps its turn and may send right beside a
    sender booked after it (:func:`~airflow_provider_orange_sms.limit.file_limiter.keep_turn`), and it pushes
    the slots not yet booked back by its lateness beyond LATE_WAKE_UP.

    :param released: The instants the limiter let sends go, in any order.
    :param rate: The limit, sends per second.
    :param interval: The limiter's interval between slots.
    """
    from airflow_provider_orange_sms.limit.file_limiter import LATE_WAKE_UP

    times = sorted(released)
    spans = [round(last - first, 4) for first, last in zip(times, times[rate:], strict=False)]
    assert all(span >= rate * interval - LATE_WAKE_UP - 1e-6 for span in spans), (
        f"{rate + 1} sends within {min(spans)} s (at least {rate * interval - LATE_WAKE_UP:.4f} s "
        f"expected); spans: {spans}"
    )
