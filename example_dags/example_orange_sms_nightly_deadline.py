"""
Example: text on-call when the nightly load is not done in time (a Deadline Alert, Airflow 3.1+).

The DAG runs every night at 02:00 UTC. Its ``deadline`` says: if a run is still not finished two
hours after it was queued, call ``OrangeSMSNotifier`` with these kwargs. Airflow's scheduler notices
the missed deadline and hands the callback to the triggerer (``AsyncCallback``), which texts each
on-call number once:

- the sends run in a worker thread, so the triggerer's event loop (and every other deferred task)
  never waits on Orange;
- a record kept per deadline (an Airflow Variable) makes the SMS exactly-once: a triggerer that
  crashes after sending and is restarted, or a second triggerer, texts nobody twice;
- the notifier's usual rules hold: numbers validated before anything is sent, the shared send
  limit and token, the opt-out list (pass ``respect_opt_out=False`` for staff who must always be
  reached).

The message is a template rendered with the deadline's context: ``dag_run`` (a dict with
``dag_id``, ``dag_run_id``, ``queued_at``…) and ``deadline`` (``id``, ``deadline_time``).
``SyncCallback(OrangeSMSNotifier, kwargs=…)`` runs the same notifier on an executor instead.
"""

from __future__ import annotations

import logging
from datetime import timedelta

import pendulum
from airflow.sdk import DAG, AsyncCallback, DeadlineAlert, DeadlineReference, task

from airflow_provider_orange_sms.notifications.orange_sms import OrangeSMSNotifier

log = logging.getLogger(__name__)

ON_CALL = ["+2250700000001", "+2250700000002"]

with DAG(
    dag_id="example_orange_sms_nightly_deadline",
    description="A nightly load whose on-call staff get an SMS if it is not done within 2 hours.",
    schedule="0 2 * * *",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["orange_sms", "example"],
    deadline=DeadlineAlert(
        reference=DeadlineReference.DAGRUN_QUEUED_AT,
        interval=timedelta(hours=2),
        callback=AsyncCallback(
            OrangeSMSNotifier,
            kwargs={
                "recipients": ON_CALL,
                "message": "Airflow: {{ dag_run.dag_id }} is not done 2 h after it was queued "
                "(run {{ dag_run.dag_run_id }}).",
            },
        ),
    ),
) as dag:

    @task
    def load() -> None:
        """The nightly load (here: a placeholder)."""
        log.info("Loading the warehouse")

    load()
