"""Phone numbers and texts: validating and normalising numbers, senders and countries, lists of
recipients as callers pass them, and per-recipient messages. Pure: no Airflow, no I/O. How many SMS
a text costs is public, in :mod:`airflow_provider_orange_sms.segments`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow_provider_orange_sms import lazy_attributes

if TYPE_CHECKING:
    from airflow_provider_orange_sms.recipients.addresses import (
        E164_DIGITS,
        SENDER_ADDRESSES,
        contract_country,
        country_of,
        normalize_country,
        normalize_recipient,
        normalize_sender,
        normalize_sender_addresses,
        short_repr,
    )
    from airflow_provider_orange_sms.recipients.messages import (
        DEFAULT_MAX_MESSAGE_LENGTH,
        check_message,
        check_text_as_sent,
        validate_messages,
    )
    from airflow_provider_orange_sms.recipients.recipient_lists import (
        load_literal,
        parse_recipients,
        validate_recipients,
    )

__all__ = [
    "DEFAULT_MAX_MESSAGE_LENGTH",
    "E164_DIGITS",
    "SENDER_ADDRESSES",
    "check_message",
    "check_text_as_sent",
    "contract_country",
    "country_of",
    "load_literal",
    "normalize_country",
    "normalize_recipient",
    "normalize_sender",
    "normalize_sender_addresses",
    "parse_recipients",
    "short_repr",
    "validate_messages",
    "validate_recipients",
]

#: The module defining each name.
_HOMES = {
    "DEFAULT_MAX_MESSAGE_LENGTH": "messages",
    "E164_DIGITS": "addresses",
    "SENDER_ADDRESSES": "addresses",
    "check_message": "messages",
    "check_text_as_sent": "messages",
    "contract_country": "addresses",
    "country_of": "addresses",
    "load_literal": "recipient_lists",
    "normalize_country": "addresses",
    "normalize_recipient": "addresses",
    "normalize_sender": "addresses",
    "normalize_sender_addresses": "addresses",
    "parse_recipients": "recipient_lists",
    "short_repr": "addresses",
    "validate_messages": "messages",
    "validate_recipients": "recipient_lists",
}


__getattr__ = lazy_attributes(__name__, _HOMES)
