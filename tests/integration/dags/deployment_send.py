"""
The deployment test's DAG (scripts/test-deployment.sh): subscribe the receiver, 4 senders x 100
recipients in parallel on the Celery workers, then wait for every delivery receipt.

Every machine of the test deployment has a copy of this file in its own DAGs folder.
"""

from __future__ import annotations

import os

import pendulum
from airflow.sdk import DAG, Variable, task

from airflow_provider_orange_sms.hooks.orange_sms import OrangeSMSHook
from airflow_provider_orange_sms.operators.orange_sms import SendSMSOperator
from airflow_provider_orange_sms.sensors.orange_sms import DeliveryReceiptSensor

SENDERS = 4
RECIPIENTS_PER_SENDER = int(os.environ.get("ORANGE_SMS_DEPLOYMENT_RECIPIENTS", "100"))
SEND_TASK_IDS = [f"send_{n}" for n in range(SENDERS)]


def recipients(sender: int) -> list[str]:
    """
    The numbers one send task sends to, distinct across tasks (the checker maps each back).

    :param sender: The send task's index.
    """
    return [f"+22507{sender + 1}{n:07d}" for n in range(RECIPIENTS_PER_SENDER)]


with DAG(
    dag_id="deployment_send",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
) as dag:

    @task
    def subscribe() -> str:
        """Point the sandbox's receipts at the receiver on the API server (secret from the config)."""
        from airflow.sdk.configuration import conf
        from airflow.sdk.log import mask_secret

        secret = conf.get("orange_sms", "delivery_receipts_secret")
        mask_secret(secret)
        base = Variable.get("orange_sms_receipts_public_url").rstrip("/")
        return OrangeSMSHook().create_delivery_receipt_subscription(
            f"{base}/orange-sms/delivery-receipts/{secret}"
        )

    sends = [
        SendSMSOperator(
            task_id=task_id,
            recipients=recipients(n),
            message=f"Deployment test, sender {n}",
        )
        for n, task_id in enumerate(SEND_TASK_IDS)
    ]
    wait = DeliveryReceiptSensor(
        task_id="wait_for_receipts",
        resource_ids=f"{{{{ ti.xcom_pull(task_ids={SEND_TASK_IDS!r}) }}}}",
        mode="reschedule",
        poke_interval=5,
        timeout=480,
    )
    subscribe() >> sends >> wait
