"""Import, export and remove numbers of the opt-out list.

Run by tests/integration/dag_runs/test_opt_out_list.py.
"""

from __future__ import annotations

import os

import pendulum
from airflow.sdk import DAG

from airflow_provider_orange_sms.operators.orange_sms import (
    ExportOptOutListOperator,
    ImportOptOutListOperator,
    RemoveFromOptOutListOperator,
)

START = pendulum.datetime(2026, 1, 1, tz="UTC")

with DAG("test_opt_out_list", schedule=None, start_date=START):
    (
        ImportOptOutListOperator(
            task_id="import",
            numbers=["+2250700004101", "0700004102"],
            csv_text="name,number\nAwa,+225 07 00 00 41 03\nKoffi,+2250700004101\n",
            default_country="CIV",
        )
        >> ExportOptOutListOperator(task_id="export", csv_path=os.environ.get("OPT_OUT_EXPORT_CSV"))
        >> RemoveFromOptOutListOperator(task_id="remove", numbers="+2250700004101")
        >> ExportOptOutListOperator(task_id="export_after", include_opted_in=True)
    )

with DAG("test_opt_out_import_bad", schedule=None, start_date=START):
    ImportOptOutListOperator(
        task_id="import", numbers=["+2250700004101", "+22507000041xx", "12"], default_country=None
    )

with DAG("test_opt_out_round_trip", schedule=None, start_date=START):
    # The file the export writes is what the import reads.
    ROUND_TRIP_CSV = os.environ.get("OPT_OUT_EXPORT_CSV", "opt_out.csv")
    (
        ExportOptOutListOperator(task_id="export", csv_path=ROUND_TRIP_CSV)
        >> ImportOptOutListOperator(task_id="import", csv_path=ROUND_TRIP_CSV)
    )
