"""Sends that defer: a window opening a few seconds after the run starts (``opens``/``closes`` in the
run's conf), and a balance topped up while the task waits in the trigger."""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG

from airflow_provider_orange_sms.operators.orange_sms import SendSMSOperator


class _WindowFromConf(SendSMSOperator):
    """The window's opening comes from the run's conf, so the test can put it seconds ahead."""

    def execute(self, context):
        from airflow_provider_orange_sms.batch.send_window import SendWindow

        conf = context["dag_run"].conf
        self.window = SendWindow.parse((conf["opens"], conf["closes"]), "UTC")
        return super().execute(context)


with DAG("test_sms_send_window", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
    _WindowFromConf(
        task_id="send",
        recipients=["+2250700000001", "+2250700000002"],
        message="Bonjour",
        send_window=("00:00", "23:59:59"),
    )

with DAG("test_sms_check_balance", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
    SendSMSOperator(
        task_id="send",
        recipients=["+2250700000001", "+2250700000002"],
        message="Bonjour",
        check_balance=True,
        deferrable=True,
        balance_poke_interval=0.2,
    )
