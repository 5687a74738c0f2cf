"""
Benchmark DAGs (run by run.py), each one SendSMSOperator task texting ``ORANGE_SMS_BENCH_RECIPIENTS``
numbers: ``bench_send_batch`` sends one text to all, ``bench_send_personalised`` a different text to
each (``messages=``).
"""

from __future__ import annotations

import os

from airflow.sdk import DAG

from airflow_provider_orange_sms.operators.orange_sms import SendSMSOperator

COUNT = int(os.environ.get("ORANGE_SMS_BENCH_RECIPIENTS", "10000"))
NAMES = ("Awa", "Koffi", "Aminata", "Yao", "Fatou", "Kouamé", "Mariam", "Ibrahim")

with DAG(dag_id="bench_send_batch", schedule=None, tags=["benchmark"]):
    SendSMSOperator(
        task_id="send",
        recipients=[f"+22507{n:08d}" for n in range(COUNT)],
        message="benchmark",
    )

with DAG(dag_id="bench_send_personalised", schedule=None, tags=["benchmark"]):
    SendSMSOperator(
        task_id="send",
        messages=[
            {
                "recipient": f"+22507{n:08d}",
                "message": f"Bonjour {NAMES[n % len(NAMES)]}, votre commande A-{n:05d} est arrivée. Merci !",
            }
            for n in range(COUNT)
        ],
    )
