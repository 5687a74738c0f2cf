"""The opt-out list: who said STOP, in one format shared by the receiver and the send tasks.

:mod:`.records` is the format (pure: no Airflow), :mod:`.check` reads each recipient's record right
before its send, :mod:`.variable_rows` writes the list from the API server. The operators that manage
the list (import, export, remove) are in :mod:`airflow_provider_orange_sms.operators.orange_sms`.
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
    "keyword_action",
    "keyword_lists",
    "latest_decision",
    "normalize_keyword",
    "number_of_key",
    "operator_variable_key",
    "opted_out_entry",
    "parse_keywords",
    "record_decision",
    "reply_decided_at",
    "variable_key",
]

_HOMES = {
    "OPTED_OUT": "check",
    "OptOutCheck": "check",
    "OptOutListUnreadableError": "check",
    "WRITTEN": "variable_rows",
    "opted_out_entry": "check",
    "record_decision": "variable_rows",
}


__getattr__ = lazy_attributes(__name__, _HOMES)
