"""Apache Airflow provider for the Orange SMS API (Africa and Middle East).

Importing this package is cheap: Airflow calls :func:`get_provider_info` for every provider when
it starts, so nothing here imports Airflow, requests or the hook.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_TEXT = {"type": ["string", "null"]}


def _number(default: float, minimum: float = 0, kind: str = "number") -> dict[str, Any]:
    """Schema of a numeric extra whose default the form shows (and stores) as its value."""
    return {"type": [kind, "null"], "minimum": minimum, "default": default}


def get_provider_info() -> dict[str, Any]:
    """Describe the provider to Airflow: package, connection type and connection form."""
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
                    "airflow_provider_orange_sms.operators.send_sms",
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
            "orange_sms": {
                "description": "The delivery-receipt receiver that the provider's plugin mounts on the "
                "API server at POST /orange-sms/delivery-receipts/{secret}.",
                "options": {
                    "delivery_receipts_secret": {
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
                    "delivery_receipts_allowed_ips": {
                        "description": "Comma-separated addresses or CIDR blocks receipts may come from; "
                        "others get 403. Empty: any source. Orange's documented callers: "
                        "80.12.13.2, 80.12.102.66, 80.12.209.66, 80.12.66.97.",
                        "version_added": "0.1.0",
                        "type": "string",
                        "example": "80.12.13.2,80.12.102.66,80.12.209.66,80.12.66.97",
                        "default": "",
                    },
                    "delivery_receipts_trusted_proxies": {
                        "description": "Comma-separated addresses or CIDR blocks of reverse proxies in "
                        "front of the API server. From them, the client address checked against "
                        "delivery_receipts_allowed_ips is taken from X-Forwarded-For (the right-most "
                        "address that is not a trusted proxy). Empty: the TCP peer is the client.",
                        "version_added": "0.1.0",
                        "type": "string",
                        "example": "127.0.0.1,10.0.0.0/8",
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
                        "host": "https://api.orange.com",
                        "authorization_header": "Basic NktSSGZ4...",
                        "sender_address": "2250000",
                        "sender_name": "MyCompany",
                        "country": "CIV",
                        "token_path": "/oauth/v3/token",
                        "rate_limit_per_second": "5",
                        "token_cache": "file",
                        "connect_timeout": "10",
                        "read_timeout": "30",
                        "max_attempts": "5",
                        "retry_backoff": "1",
                        "max_message_length": "1530",
                    },
                },
                "conn-fields": {
                    "authorization_header": {
                        "label": "Authorization Header",
                        "description": "Optional. The app's 'Authorization header' from the Orange "
                        "Developer portal (Basic …), instead of Client ID and Client Secret.",
                        "schema": {**_TEXT, "format": "password"},
                    },
                    "sender_address": {
                        "label": "Sender Address",
                        "description": "Your sender number with country code, no '+': 2250000 (Côte "
                        "d'Ivoire), 2210000 (Senegal), 200000 (Egypt)…",
                        # Examples: a datalist of Orange's sender numbers (the form has no placeholder).
                        "schema": {
                            **_TEXT,
                            "examples": ["2250000", "2210000", "2370000", "200000", "2160000"],
                        },
                    },
                    "sender_name": {
                        "label": "Sender Name",
                        "description": "Optional. A sender name Orange whitelisted for your account.",
                        "schema": _TEXT,
                    },
                    "country": {
                        "label": "Country",
                        "description": "Optional. ISO 3166 alpha-3 code (CIV, SEN, EGY…; alpha-2 accepted): "
                        "default filter for balance, statistics and orders; picks the sender if none is "
                        "set; numbers without a country code (0700000001) are read as national numbers "
                        "of this country (without it they are refused).",
                        "schema": {**_TEXT, "examples": ["CIV", "SEN", "CMR", "EGY", "JOR", "TUN"]},
                    },
                    "token_path": {
                        "label": "Token Path",
                        # No default: Airflow hides the value of an extra whose name contains
                        # "token" and would show (and store) "***" instead.
                        "description": "Optional. OAuth2 token endpoint path; empty means "
                        "/oauth/v3/token (/oauth/v2/token also works).",
                        "schema": _TEXT,
                    },
                    "rate_limit_per_second": {
                        "label": "Rate Limit (SMS per second)",
                        "description": "Sends per second, shared by every process on a machine (by "
                        "every machine with Rate Limit Shared Through 'redis'); 5 is Orange's limit.",
                        "schema": _number(5),
                    },
                    "token_cache": {
                        "label": "Token Cache",
                        # No default, as for token_path; no null in the enum, or the select shows "null".
                        "description": "Optional. Empty means 'file': shared by the processes of one "
                        "machine; 'redis': one token for every machine, in the Redis of Redis Connection "
                        "Id; 'variable': an Airflow Variable, shared by all machines; 'none': one "
                        "task only.",
                        "schema": {"type": ["string", "null"], "enum": ["file", "redis", "variable", "none"]},
                    },
                    "rate_limit_backend": {
                        "label": "Rate Limit Shared Through",
                        "description": "Optional. Empty means 'file': the rate limit is shared by the "
                        "processes of one machine; 'redis': by every machine, through the Redis of "
                        "Redis Connection Id (pip install 'airflow-provider-orange-sms[redis]').",
                        "schema": {"type": ["string", "null"], "enum": ["file", "redis"]},
                    },
                    "redis_conn_id": {
                        "label": "Redis Connection Id",
                        "description": "Optional. The Airflow connection (type redis) used when Token "
                        "Cache or Rate Limit Shared Through is 'redis'; empty means redis_default.",
                        "schema": _TEXT,
                    },
                    "connect_timeout": {
                        "label": "Connect Timeout (seconds)",
                        "description": "Seconds to wait for a connection.",
                        "schema": _number(10),
                    },
                    "read_timeout": {
                        "label": "Read Timeout (seconds)",
                        "description": "Seconds to wait for Orange's answer.",
                        "schema": _number(30),
                    },
                    "max_attempts": {
                        "label": "Max Attempts",
                        "description": "Tries per API call, the first included, for failures that are "
                        "safe to retry (429, 503, connection refused…).",
                        "schema": _number(5, minimum=1, kind="integer"),
                    },
                    "retry_backoff": {
                        "label": "Retry Backoff (seconds)",
                        "description": "First wait between tries, doubled on each retry (at most 30 s).",
                        "schema": _number(1),
                    },
                    "max_message_length": {
                        "label": "Max Message Length (characters)",
                        "description": "Longest SMS text accepted before sending; default 1530 "
                        "(10 concatenated GSM-7 segments). Orange does not document its true maximum; "
                        "it may refuse shorter texts (SVC0280), e.g. non-GSM ones (670 characters in 10 "
                        "UCS-2 segments).",
                        "schema": _number(1530, minimum=1, kind="integer"),
                    },
                    "sender_addresses": {
                        "label": "Sender Addresses per Country",
                        "description": "Optional. JSON object of country to sender number, e.g. "
                        '{"CIV": "2250000", "SEN": "2210000"}: each SMS goes out from the sender of its '
                        "recipient's country; a recipient of another country is refused before sending.",
                        "schema": _TEXT,
                    },
                },
            }
        ],
    }
