"""The opt-out list: who said STOP, in one format shared by the receiver and the send tasks.

:mod:`.records` is the format (pure: no Airflow), :mod:`.check` reads each recipient's record right
before its send, :mod:`.variable_rows` writes the list from the API server, :mod:`.task_variables`
from a task: what the operators that manage the list (import, export, remove, in
:mod:`airflow_provider_orange_sms.operators.orange_sms`) do.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow_provider_orange_sms import lazy_attributes
from airflow_provider_orange_sms.opt_out.records import (
    DEFAULT_OPT_IN_KEYWORDS,
    DEFAULT_OPT_OUT_KEYWORDS,
    KEY_PREFIX,
    OPERATOR_KEY_SUFFIX,
    OPT_IN,
    OPT_OUT,
    OptOutRecord,
    keyword_action,
    keyword_lists,
    latest_decision,
    normalize_keyword,
    number_of_key,
    operator_variable_key,
    parse_keywords,
    reply_decided_at,
    variable_key,
)

if TYPE_CHECKING:
    from airflow_provider_orange_sms.opt_out.check import (
        OPTED_OUT,
        OptOutCheck,
        OptOutListUnreadableError,
        opted_out_entry,
    )
    from airflow_provider_orange_sms.opt_out.task_variables import (
        decided_at,
        erase,
        export_entries,
        parse_numbers,
        write_csv,
        write_decisions,
    )
    from airflow_provider_orange_sms.opt_out.variable_rows import WRITTEN, record_decision

__all__ = [
    "DEFAULT_OPT_IN_KEYWORDS",
    "DEFAULT_OPT_OUT_KEYWORDS",
    "KEY_PREFIX",
    "OPERATOR_KEY_SUFFIX",
    "OPTED_OUT",
    "OPT_IN",
    "OPT_OUT",
    "WRITTEN",
    "OptOutCheck",
    "OptOutListUnreadableError",
    "OptOutRecord",
    "decided_at",
    "erase",
    "export_entries",
    "keyword_action",
    "keyword_lists",
    "latest_decision",
    "normalize_keyword",
    "number_of_key",
    "operator_variable_key",
    "opted_out_entry",
    "parse_keywords",
    "parse_numbers",
    "record_decision",
    "reply_decided_at",
    "variable_key",
    "write_csv",
    "write_decisions",
]

_HOMES = {
    "OPTED_OUT": "check",
    "OptOutCheck": "check",
    "OptOutListUnreadableError": "check",
    "WRITTEN": "variable_rows",
    "decided_at": "task_variables",
    "erase": "task_variables",
    "export_entries": "task_variables",
    "opted_out_entry": "check",
    "parse_numbers": "task_variables",
    "record_decision": "variable_rows",
    "write_csv": "task_variables",
    "write_decisions": "task_variables",
}


__getattr__ = lazy_attributes(__name__, _HOMES)
