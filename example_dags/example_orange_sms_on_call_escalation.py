"""
Example: wake the on-call rota by SMS until someone answers ACK (a Deadline Alert, Airflow 3.1+).

Reading top to bottom:

1. ``load`` is the work being watched (here a placeholder that takes ``WORK`` and misses the
   deadline on purpose).
2. The DAG's ``deadline``: if the run is not finished ``DEADLINE`` after it was queued, the
   triggerer texts the first person of ``ON_CALL`` (``AsyncCallback(OrangeSMSNotifier, …)``: sent
   once, even if the triggerer crashes or runs twice).
3. ``load_ended_or_late`` checks every ``CHECK_EVERY`` (``reschedule`` mode: no worker slot held
   between checks) until ``load`` has ended or the deadline has passed; ``deadline_missed`` stops
   the escalation when ``load`` ended in time.
4. ``ack_1`` (``SMSReplySensor``) waits up to ``ACK_WAIT`` for a reply matching ACK from the first
   person. On a timeout it fails, which starts ``text_2`` (trigger rule ``all_failed``): the next
   person gets the SMS, and ``ack_2`` waits for an ACK from either of them, and so on.
5. The first ACK stops it: the later ``text_…`` tasks are skipped. Nobody answering fails the run
   (the last ``ack_…`` times out), which is the signal to look at.

Keep ``CHECK_EVERY`` well below ``DEADLINE``: the check keeps the run going, so a ``load`` that ends
less than ``CHECK_EVERY`` before the deadline can still trip the alert. Replies come through the
provider's reply receiver (see the README's two-way SMS section). Run it by hand
(``schedule=None``), or give it the schedule of the work it watches.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta

import pendulum
from airflow.sdk import DAG, AsyncCallback, DeadlineAlert, DeadlineReference, PokeReturnValue, task

from airflow_provider_orange_sms.notifications.orange_sms import OrangeSMSNotifier
from airflow_provider_orange_sms.operators.orange_sms import SendSMSOperator
from airflow_provider_orange_sms.sensors.orange_sms import SMSReplySensor

log = logging.getLogger(__name__)

#: Who is woken, in order.
ON_CALL = ["+2250700000001", "+2250700000002", "+2250700000003"]
#: How long the run may take before the first person is texted.
DEADLINE = timedelta(minutes=30)
#: How long each person has to answer ACK before the next one is texted.
ACK_WAIT = timedelta(minutes=10)
#: How often the run checks whether the load ended, and the replies.
CHECK_EVERY = timedelta(seconds=30)
#: How long the placeholder load takes.
WORK = timedelta(minutes=45)
#: What counts as an answer (case-insensitive).
ACK = r"^\s*ack\b"

with DAG(
    dag_id="example_orange_sms_on_call_escalation",
    description="Text on-call when the load misses its deadline, then the next person until one ACKs.",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["orange_sms", "example"],
    deadline=DeadlineAlert(
        reference=DeadlineReference.DAGRUN_QUEUED_AT,
        interval=DEADLINE,
        callback=AsyncCallback(
            OrangeSMSNotifier,
            kwargs={
                "recipients": ON_CALL[:1],
                "message": "Airflow: {{ dag_run.dag_id }} missed its deadline "
                "(run {{ dag_run.dag_run_id }}). Reply ACK to take it.",
                # Staff on call are reached even if they once replied STOP by mistake.
                "respect_opt_out": False,
            },
        ),
    ),
) as dag:

    @task
    def load() -> None:
        """The watched work (a placeholder that takes WORK)."""
        log.info("Loading the warehouse")
        time.sleep(WORK.total_seconds())

    # Retries: a worker or API-server hiccup in the watcher must not stop the escalation.
    @task.sensor(
        poke_interval=CHECK_EVERY.total_seconds(), mode="reschedule", retries=2, retry_delay=CHECK_EVERY
    )
    def load_ended_or_late(**context) -> PokeReturnValue:
        """Done when ``load`` has ended (value False) or the deadline has passed (value True)."""
        run, ti = context["dag_run"], context["ti"]
        states = ti.get_task_states(dag_id=run.dag_id, task_ids=["load"], run_ids=[run.run_id])
        ended = states.get(run.run_id, {}).get("load") in ("success", "failed", "upstream_failed", "skipped")
        late = pendulum.now("UTC") >= run.start_date + DEADLINE
        return PokeReturnValue(is_done=ended or late, xcom_value=not ended)

    @task.short_circuit
    def deadline_missed(missed: bool) -> bool:
        """Stop here (skip the escalation) when the load ended in time."""
        return missed

    watch = deadline_missed(load_ended_or_late())
    load()

    waiting = SMSReplySensor(
        task_id="ack_1",
        numbers=ON_CALL[:1],
        pattern=ACK,
        require_all=False,
        poke_interval=CHECK_EVERY,
        timeout=ACK_WAIT,
    )
    watch >> waiting
    for n in range(2, len(ON_CALL) + 1):
        text = SendSMSOperator(
            task_id=f"text_{n}",
            recipients=ON_CALL[n - 1 : n],
            message=f"Airflow: {{{{ dag.dag_id }}}} missed its deadline and nobody answered in "
            f"{ACK_WAIT}. Reply ACK to take it.",
            respect_opt_out=False,
            # Runs only when the previous wait for an ACK failed (timed out).
            trigger_rule="all_failed",
        )
        acked = SMSReplySensor(
            task_id=f"ack_{n}",
            numbers=ON_CALL[:n],
            pattern=ACK,
            require_all=False,
            poke_interval=CHECK_EVERY,
            timeout=ACK_WAIT,
        )
        waiting >> text >> acked
        waiting = acked
