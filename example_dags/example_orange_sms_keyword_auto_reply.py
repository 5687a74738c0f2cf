"""
Example: answer the keyword HELP with an information text, as soon as the reply arrives.

This DAG is scheduled on the ``INBOUND_MESSAGES`` asset: each SMS a subscriber sends to your number
(Orange posts it to the provider's receiver, ``POST /orange-sms/inbound-messages/{secret}``) is an
asset event, and Airflow starts a run for the events that arrived since the last one. It runs only
when replies arrive: no time schedule.

Reading top to bottom:

1. ``help_requests`` keeps the senders whose whole reply is a help keyword (``HELP``, ``AIDE``,
   ``INFO``; compared as opt-out keywords are: case, accents and punctuation ignored). STOP and
   START are handled by the receiver itself (the opt-out list), not here.
2. ``answer`` sends the information text through ``SendSMSOperator``: spaced at the account's
   rate like any send, and deduplicated by its sent ledger (a retry or a clear of this run never
   texts a sender twice). The answer is a service message the sender asked for, so it is sent even
   to a number on the opt-out list (``respect_opt_out=False``); never add marketing to it.
"""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.sdk import DAG, task

from airflow_provider_orange_sms.operators.orange_sms import SendSMSOperator
from airflow_provider_orange_sms.opt_out import normalize_keyword
from airflow_provider_orange_sms.receipts import INBOUND_MESSAGES

HELP_KEYWORDS = frozenset(normalize_keyword(k) for k in ("HELP", "AIDE", "INFO"))
INFO_TEXT = "ACME Shop: orders and delivery at acme.example/help or 0700000000. Reply STOP to opt out."

with DAG(
    dag_id="example_orange_sms_keyword_auto_reply",
    description="Answer HELP replies with an information text.",
    schedule=[INBOUND_MESSAGES],
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["orange_sms", "example"],
) as dag:

    @task
    def help_requests(**context: Any) -> list[str]:
        """The senders of the triggering replies that are a help keyword (each once)."""
        try:
            from airflow.sdk.exceptions import AirflowSkipException
        except ImportError:  # Airflow < 3.2
            from airflow.exceptions import AirflowSkipException  # type: ignore[no-redef,unused-ignore]

        events = context["triggering_asset_events"][INBOUND_MESSAGES]
        senders = sorted(
            {
                str(e.extra["sender"])
                for e in events
                if normalize_keyword(str((e.extra or {}).get("message", ""))) in HELP_KEYWORDS
            }
        )
        if not senders:
            raise AirflowSkipException(f"No help keyword among {len(events)} reply(ies)")
        return senders

    SendSMSOperator(
        task_id="answer",
        recipients=help_requests(),
        message=INFO_TEXT,
        respect_opt_out=False,
    )
