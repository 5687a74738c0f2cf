"""Benchmark DAG: one SendSMSOperator task texting ``ORANGE_SMS_BENCH_RECIPIENTS`` numbers (run by run.py)."""

from __future__ import annotations

import os

from airflow.sdk import DAG

from airflow_provider_orange_sms.operators.orange_sms import SendSMSOperator

COUNT = int(os.environ.get("ORANGE_SMS_BENCH_RECIPIENTS", "10000"))

with DAG(dag_id="bench_send_batch", schedule=None, tags=["benchmark"]):
    SendSMSOperator(
        task_id="send",
        recipients=[f"+22507{n:08d}" for n in range(COUNT)],
        message="benchmark",
    )
