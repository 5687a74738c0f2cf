"""SMSBatch's stop reasons when the sent ledger fails at the end of a batch that had already stopped.

Through SendSMSOperator against the sandbox over HTTP, with a ledger store whose writes fail from a
given call on (:class:`tests.support.ledger.FaultyStore`). What the sandbox received per recipient is
the truth.
"""

from __future__ import annotations

from collections import Counter

import pytest

from airflow_provider_orange_sms.operators.orange_sms import PARTIAL_RESULTS_KEY, SendSMSOperator
from airflow_provider_orange_sms.sandbox import SandboxConfig
from airflow_provider_orange_sms.version_compat import AirflowException, AirflowFailException
from tests.support.dags import fake_ti
from tests.support.ledger import FaultyStore
from tests.support.sandbox import received, send_requests

NUMBERS = ["+2250700000401", "+2250700000402", "+2250700000403"]
ADDRESSES = [f"tel:{n}" for n in NUMBERS]
LEDGER_LOST = "the outcome of 1 SMS is not recorded, so later tries report them uncertain"


@pytest.fixture
def sandbox_config():
    return SandboxConfig(dr_delay=None, rate_limit=1000)


def operator(store, **kwargs):
    return SendSMSOperator(task_id="send", recipients=NUMBERS, message="Hi", ledger_store=store, **kwargs)


def test_a_final_stop_keeps_its_reason_and_stays_final_when_the_last_ledger_write_fails(
    fast_conn, sandbox, ledger_waits
):
    # The 1st send gets 403 code 50 (API not subscribed): the batch stops at once. Write 1 recorded
    # it "in flight"; write 2, its "failed" outcome at the end of the batch, fails (all its tries).
    sandbox.state.add_fault(kind="status", status=403, path="/requests", method="POST")
    store = FaultyStore(fail_writes_from=2)
    ti = fake_ti(1)
    with pytest.raises(AirflowFailException) as excinfo:
        operator(store).execute(context={"ti": ti})
    text = str(excinfo.value)
    # Both the reason to act on and the ledger failure are in the one stop reason.
    assert "Batch stopped: Orange refused the credentials" in text
    assert "cannot write the sent ledger" in text
    assert LEDGER_LOST in text
    assert "Not retried: a retry would fail the same way" in text
    assert (
        "0 of 3 recipient(s) sent (0 by this try, 0 by earlier tries), 0 uncertain, 1 failed, 2 not attempted"
        in text
    )
    assert [r["status"] for r in ti.pushed[PARTIAL_RESULTS_KEY]] == ["failed"]
    assert received(sandbox) == Counter()
    assert len(send_requests(sandbox)) == 1
    assert ledger_waits == [0.25, 0.5, 1.0]  # the failed write tried 4 times, backing off between

    # Cleared by hand once the API is subscribed, the ledger back: the 1st is reported uncertain (its
    # "failed" never became durable) and not sent; the others are sent once.
    store.fail_writes_from = None
    results = operator(store, fail_on_uncertain=False).execute(context={"ti": fake_ti(2)})
    assert [r["status"] for r in results] == ["uncertain", "sent", "sent"]
    assert received(sandbox) == Counter(ADDRESSES[1:])


def test_a_retryable_stop_keeps_its_reason_and_stays_retryable_when_the_last_ledger_write_fails(
    fast_conn, sandbox, ledger_waits
):
    # The 1st send gets 503 on each of its 4 attempts; max_consecutive_failures=1 stops the batch.
    sandbox.state.add_fault(kind="status", status=503, path="/requests", method="POST", count=4)
    store = FaultyStore(fail_writes_from=2)
    with pytest.raises(AirflowException) as excinfo:
        operator(store, max_consecutive_failures=1).execute(context={"ti": fake_ti(1)})
    assert not isinstance(excinfo.value, AirflowFailException)
    text = str(excinfo.value)
    assert "Batch stopped: 1 sends in a row failed for reasons that are not about one recipient" in text
    assert "cannot write the sent ledger" in text
    assert LEDGER_LOST in text
    assert "A retry sends only to recipients not reached yet, never to uncertain ones" in text
    assert received(sandbox) == Counter()
    assert ledger_waits == [0.25, 0.5, 1.0]  # the failed write tried 4 times, backing off between

    store.fail_writes_from = None
    results = operator(store, fail_on_uncertain=False).execute(context={"ti": fake_ti(2)})
    assert [r["status"] for r in results] == ["uncertain", "sent", "sent"]
    assert received(sandbox) == Counter(ADDRESSES[1:])
