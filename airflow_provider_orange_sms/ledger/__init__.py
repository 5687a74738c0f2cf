"""The sent ledger: the durable record of every SMS a send task may have sent, which makes a send
exactly-once across retries: its entries, where its chunks live (Airflow Variables), and which
ledger and which entries belong to a task instance and its DAG run.
"""

from __future__ import annotations
