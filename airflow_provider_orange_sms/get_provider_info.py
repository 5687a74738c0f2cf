"""What Airflow reads about this provider (the ``apache_airflow_provider`` entry point).

Cheap to import: Airflow calls :func:`get_provider_info` for every provider when it starts.
"""

from __future__ import annotations

from typing import Any

from airflow_provider_orange_sms import __version__, settings
from airflow_provider_orange_sms.config import DEFAULT_BASE_URL, form_fields, form_placeholders

__all__ = ["get_provider_info"]


def get_provider_info() -> dict[str, Any]:
    """Describe the provider to Airflow: package, connection type and connection form."""
    from airflow_provider_orange_sms.opt_out import DEFAULT_OPT_IN_KEYWORDS, DEFAULT_OPT_OUT_KEYWORDS
    from airflow_provider_orange_sms.receipts import DEFAULT_DEDUP_HOURS

    return {
        "package-name": "airflow-provider-orange-sms",
        "name": "Orange SMS",
        "description": "Send SMS and track balance, usage, purchase orders and delivery receipts "
        "with the Orange SMS API (Africa and Middle East).",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": "Orange SMS",
                "external-doc-url": "https://developer.orange.com/apis/sms",
                "tags": ["service"],
            }
        ],
        "hooks": [
            {
                "integration-name": "Orange SMS",
                "python-modules": ["airflow_provider_orange_sms.hooks.orange_sms"],
            }
        ],
        "operators": [
            {
                "integration-name": "Orange SMS",
                "python-modules": [
                    "airflow_provider_orange_sms.operators.orange_sms",
                ],
            }
        ],
        "sensors": [
            {
                "integration-name": "Orange SMS",
                "python-modules": ["airflow_provider_orange_sms.sensors.orange_sms"],
            }
        ],
        "triggers": [
            {
                "integration-name": "Orange SMS",
                "python-modules": ["airflow_provider_orange_sms.triggers.orange_sms"],
            }
        ],
        "config": {
            settings.SECTION: {
                "description": "The receiver that the provider's plugin mounts on the API server at "
                "POST /orange-sms/delivery-receipts/{secret} and /orange-sms/inbound-messages/{secret}.",
                "options": {
                    settings.DELIVERY_RECEIPTS_SECRET: {
                        "description": "The secret path segment of the receipt URL registered with "
                        "Orange (https://<host>/orange-sms/delivery-receipts/<secret>). Long and random, "
                        "URL-safe (e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))'). "
                        "Empty: the receiver refuses every request.",
                        "version_added": "0.1.0",
                        "type": "string",
                        "sensitive": True,
                        "example": None,
                        "default": "",
                    },
                    settings.DELIVERY_RECEIPTS_ALLOWED_IPS: {
                        "description": "Comma-separated addresses or CIDR blocks receipts may come from; "
                        "others get 403. Empty: any source. Orange's documented callers: "
                        "80.12.13.2, 80.12.102.66, 80.12.209.66, 80.12.66.97.",
                        "version_added": "0.1.0",
                        "type": "string",
                        "example": "80.12.13.2,80.12.102.66,80.12.209.66,80.12.66.97",
                        "default": "",
                    },
                    settings.DELIVERY_RECEIPTS_TRUSTED_PROXIES: {
                        "description": "Comma-separated addresses or CIDR blocks of reverse proxies in "
                        "front of the API server. From them, the client address checked against "
                        "delivery_receipts_allowed_ips is taken from X-Forwarded-For (the right-most "
                        "address that is not a trusted proxy). Empty: the TCP peer is the client.",
                        "version_added": "0.1.0",
                        "type": "string",
                        "example": "127.0.0.1,10.0.0.0/8",
                        "default": "",
                    },
                    settings.DELIVERY_RECEIPTS_DEDUP_HOURS: {
                        "description": "How long (hours, at least 24) a stored delivery receipt is "
                        "remembered, so that Orange's repeats of it are acknowledged without a second "
                        "event. Its row in the provider's orange_sms_dedup table is deleted afterwards "
                        "(swept by the receiver in batches). Receipts without callbackData are matched "
                        "over 10 minutes only.",
                        "version_added": "0.1.0",
                        "type": "float",
                        "example": "72",
                        "default": f"{DEFAULT_DEDUP_HOURS:g}",
                    },
                    settings.DELIVERY_RECEIPTS_MAX_CONCURRENT_STORES: {
                        "description": "How many receipts and replies one API server process stores at "
                        "once (a whole number, at least 1). The others wait for a turn, up to 5 seconds, "
                        "then get 503 with Retry-After and are sent again later: a flood of receipts "
                        "cannot take the threads, database connections and CPU the API server's other "
                        "users (the tasks' execution API, the UI) need. One store at a time takes about "
                        "90 receipts/s per process on PostgreSQL; raise it on an API server that serves "
                        "the receiver alone (--apps core) in front of a distant database.",
                        "version_added": "0.1.0",
                        "type": "integer",
                        "example": "2",
                        "default": str(settings.DEFAULT_DELIVERY_RECEIPTS_MAX_CONCURRENT_STORES),
                    },
                    settings.TRIGGERER_WARM_UP: {
                        "description": "Whether a triggerer builds its execution API (what its "
                        "callbacks' connection and Variable reads go through) as it starts, in a "
                        "thread of its main process, rather than on the first callback's first read: "
                        "the first deadline callback after a start is then as fast as the later ones.",
                        "version_added": "0.1.0",
                        "type": "boolean",
                        "example": "False",
                        "default": str(settings.DEFAULT_TRIGGERER_WARM_UP),
                    },
                    settings.OPT_OUT_KEYWORDS: {
                        "description": "Comma-separated replies that put their sender on the opt-out "
                        "list (POST /orange-sms/inbound-messages/{secret}); compared without case, "
                        "accents, punctuation or extra spaces. Empty: the defaults.",
                        "version_added": "0.1.0",
                        "type": "string",
                        "example": ", ".join(DEFAULT_OPT_OUT_KEYWORDS),
                        "default": "",
                    },
                    settings.OPT_IN_KEYWORDS: {
                        "description": "Comma-separated replies that take their sender off the opt-out "
                        "list again. Empty: the defaults.",
                        "version_added": "0.1.0",
                        "type": "string",
                        "example": ", ".join(DEFAULT_OPT_IN_KEYWORDS),
                        "default": "",
                    },
                },
            }
        },
        "notifications": ["airflow_provider_orange_sms.notifications.orange_sms.OrangeSMSNotifier"],
        "connection-types": [
            {
                "hook-class-name": "airflow_provider_orange_sms.hooks.orange_sms.OrangeSMSHook",
                "hook-name": "Orange SMS",
                "connection-type": "orange_sms",
                "ui-field-behaviour": {
                    "hidden-fields": ["schema", "port", "extra"],
                    "relabeling": {"login": "Client ID", "password": "Client Secret", "host": "Base URL"},
                    # Airflow 3.3's form shows placeholders of standard fields only (hook_meta drops
                    # the extras' ones); extras also get a default (shown and stored as the value)
                    # or examples (a datalist) in conn-fields.
                    "placeholders": {
                        "login": "Client ID of your Orange Developer application",
                        "password": "Client Secret (or fill Authorization Header)",
                        "host": DEFAULT_BASE_URL,
                        **form_placeholders(),
                    },
                },
                # Read from OrangeSMSConfig: each extra, its label, help and default defined once.
                "conn-fields": form_fields(),
            }
        ],
    }
