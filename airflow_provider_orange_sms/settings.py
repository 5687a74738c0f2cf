"""The names the provider's packages share: the ``[orange_sms]`` section of Airflow's configuration,
each option read from it, and the XCom keys its tasks push. One definition each.

Cheap to import (no Airflow): ``get_provider_info`` and the receiver read it.
"""

from __future__ import annotations

#: The section of Airflow's configuration (``airflow.cfg``, ``AIRFLOW__ORANGE_SMS__*``).
SECTION = "orange_sms"

# -- the [orange_sms] options (documented in get_provider_info's "config") -----------------------

#: The secret path segment of the receiver's URLs; unset, the receiver answers 404.
DELIVERY_RECEIPTS_SECRET = "delivery_receipts_secret"
#: Addresses or CIDR blocks the receiver accepts callbacks from.
DELIVERY_RECEIPTS_ALLOWED_IPS = "delivery_receipts_allowed_ips"
#: Reverse proxies whose ``X-Forwarded-For`` the receiver believes.
DELIVERY_RECEIPTS_TRUSTED_PROXIES = "delivery_receipts_trusted_proxies"
#: How long a stored receipt is remembered to recognise its repeats.
DELIVERY_RECEIPTS_DEDUP_HOURS = "delivery_receipts_dedup_hours"
#: How many callbacks (receipts, replies) one API server process stores at once; the others wait
#: their turn, a bounded time, then get a 503 with ``Retry-After``.
DELIVERY_RECEIPTS_MAX_CONCURRENT_STORES = "delivery_receipts_max_concurrent_stores"
#: Its default. Beside a flood from 48 connections, with the execution API in the same process on
#: PostgreSQL, a task's execution-API requests took p50 16 ms with 1 (88 receipts/s), 26 ms with 2
#: (95/s), 59-69 ms with 4 (110/s) against 8-11 ms without the flood. Raise it on an API server
#: that serves the receiver alone (``--apps core``) in front of a distant database.
DEFAULT_DELIVERY_RECEIPTS_MAX_CONCURRENT_STORES = 1
#: The reply keywords that opt a number out, and those that opt it back in.
OPT_OUT_KEYWORDS = "opt_out_keywords"
OPT_IN_KEYWORDS = "opt_in_keywords"

#: Whether a starting triggerer builds its execution API before its first callback needs it.
TRIGGERER_WARM_UP = "triggerer_warm_up"
DEFAULT_TRIGGERER_WARM_UP = True

#: The Airflow connection the hook, operators, sensors and notifier use unless told otherwise.
DEFAULT_CONN_ID = "orange_sms_default"

# -- XCom keys ------------------------------------------------------------------------------------

#: SendSMSOperator's plan (what it will send, to whom, at what cost).
PLAN_KEY = "sms_plan"
#: SendSMSOperator's results so far, pushed when a send fails part-way.
PARTIAL_RESULTS_KEY = "sms_results"
#: DeliveryReceiptSensor's final receipts, and the resource ids still without one at its timeout.
RECEIPTS_KEY = "receipts"
MISSING_RESOURCE_IDS_KEY = "missing_resource_ids"
#: SMSReplySensor's replies.
REPLIES_KEY = "replies"


def configured_secret() -> str:
    """``[orange_sms] delivery_receipts_secret`` (``""`` when unset)."""
    from airflow.configuration import conf

    return (conf.get(SECTION, DELIVERY_RECEIPTS_SECRET, fallback="") or "").strip()
