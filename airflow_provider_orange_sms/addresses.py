"""Validation and normalisation of what the caller passes in: phone numbers, senders, countries.

Everything here runs before a request is made, so bad input fails fast with the bad value named.
"""

from __future__ import annotations

import ast
import json
import re
from typing import TYPE_CHECKING, Any

import phonenumbers

if TYPE_CHECKING:
    from collections.abc import Iterable

_SEPARATORS = re.compile(r"[\s\-.()/]")
_COUNTRY = re.compile(r"^[A-Z]{3}$")
_LIST_SEPARATORS = re.compile(r"[,;\n]")

#: Orange's sender numbers per country (ISO 3166 alpha-3), from Orange's documentation.
SENDER_ADDRESSES: dict[str, str] = {
    "BWA": "2670000",
    "BFA": "2260000",
    "CMR": "2370000",
    "CIV": "2250000",
    "COD": "2430000",
    "EGY": "200000",
    "JOR": "9620000",
    "GIN": "2240000",
    "MLI": "2230000",
    "NER": "2270000",
    "SEN": "2210000",
    "TUN": "2160000",
}


def _digits(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"Invalid {what} {value!r}: expected a string such as '+2250700000001'")
    text = value.strip()
    if text.lower().startswith("tel:"):
        text = text[4:]
    text = _SEPARATORS.sub("", text)
    if text.startswith("+"):
        text = text[1:]
    elif text.startswith("00"):
        text = text[2:]
    if not text.isdigit() or not text.isascii():
        raise ValueError(
            f"Invalid {what} {value!r}: only digits, spaces, dashes and a leading '+' are allowed"
        )
    return text


def normalize_recipient(recipient: object) -> str:
    """
    Return ``recipient`` as Orange wants it: ``tel:+<digits>``.

    Accepts ``+2250700000001``, ``2250700000001``, ``002250700000001``, ``tel:+2250700000001``, with
    spaces, dashes, dots or parentheses between digits.

    :param recipient: The phone number, in international form (country code first).
    :raises ValueError: When it is not a plausible E.164 number: letters, fewer than 8 or more than
        15 digits, or an unknown country code. The message names the value.
    """
    digits = _digits(recipient, "recipient phone number")
    if not 8 <= len(digits) <= 15:
        raise ValueError(
            f"Invalid recipient phone number {recipient!r}: E.164 numbers have 8 to 15 digits "
            f"including the country code, got {len(digits)}"
        )
    # A cheap plausibility check that does not second-guess national numbering plans (those change
    # faster than libphonenumber's metadata in some countries): the country code must exist.
    if phonenumbers.region_code_for_country_code(_country_calling_code(digits)) == "ZZ":
        raise ValueError(f"Invalid recipient phone number {recipient!r}: unknown country calling code")
    return f"tel:+{digits}"


def _country_calling_code(digits: str) -> int:
    for size in (1, 2, 3):
        code = int(digits[:size])
        if phonenumbers.region_code_for_country_code(code) != "ZZ":
            return code
    return 0


def normalize_sender(sender_address: object) -> str:
    """
    Return the sender number as bare digits (``2250000``).

    Accepts ``2250000``, ``+2250000`` and ``tel:+2250000``.

    :param sender_address: The account's sender number for the destination country.
    :raises ValueError: When it is not 4 to 15 digits.
    """
    digits = _digits(sender_address, "sender address")
    if not 4 <= len(digits) <= 15:
        raise ValueError(f"Invalid sender address {sender_address!r}: expected 4 to 15 digits")
    return digits


def normalize_country(country: object) -> str:
    """
    Return an ISO 3166 alpha-3 country code in upper case (``CIV``).

    :param country: The code, any case.
    :raises ValueError: When it is not three letters.
    """
    if not isinstance(country, str) or not _COUNTRY.match(country.strip().upper()):
        raise ValueError(f"Invalid country {country!r}: expected an ISO 3166 alpha-3 code such as 'CIV'")
    return country.strip().upper()


def check_message(message: object, max_length: int | None = None) -> str:
    """
    Return ``message`` unchanged after checking it is a non-empty string.

    :param message: The SMS text (any Unicode).
    :param max_length: Longest text accepted, in characters.
    :raises ValueError: When it is not a string or is empty or blank.
    """
    if not isinstance(message, str):
        raise ValueError(f"Invalid message {message!r}: expected a string")
    if not message.strip():
        raise ValueError(f"Invalid message {message!r}: the SMS text is empty")
    return message


def parse_recipients(value: object) -> list[str]:
    """
    Turn a (rendered) ``recipients`` value into a list of raw phone numbers, in order.

    Accepts a list or tuple of strings; a string that looks like a list
    (``"['+2250700000001', '+2250700000002']"``, as ``{{ ti.xcom_pull(...) }}`` renders one, or
    JSON); a comma-, semicolon- or newline-separated string; a single number. Integers are
    turned into strings. Nothing is validated here: see :func:`validate_recipients`.

    :param value: The ``recipients`` argument after template rendering.
    :raises ValueError: When the value is empty or has an unusable shape; the message shows it.
    """
    items: Iterable[object]
    if isinstance(value, str):
        text = value.strip()
        if text[:1] in ("[", "("):
            parsed: object = None
            try:
                parsed = json.loads(text)
            except ValueError:
                try:
                    parsed = ast.literal_eval(text)
                except (ValueError, SyntaxError) as exc:
                    raise ValueError(
                        f"Invalid recipients {value!r}: it looks like a list but cannot be parsed ({exc})"
                    ) from None
            if not isinstance(parsed, (list, tuple)):
                raise ValueError(f"Invalid recipients {value!r}: expected a list of phone numbers")
            items = parsed
        else:
            items = _LIST_SEPARATORS.split(text)
    elif isinstance(value, (list, tuple, set, frozenset)):
        items = value
    else:
        raise ValueError(
            f"Invalid recipients {value!r}: expected a phone number, a comma-separated string or a list"
        )
    recipients: list[str] = []
    for item in items:
        if isinstance(item, int) and not isinstance(item, bool):
            item = str(item)
        if isinstance(item, str):
            if item.strip():
                recipients.append(item.strip())
            continue
        raise ValueError(f"Invalid recipient {item!r} in {value!r}: expected a phone number string")
    if not recipients:
        raise ValueError(f"Invalid recipients {value!r}: no phone number given")
    return recipients


def validate_recipients(value: object, logger: Any = None, default_country: str | None = None) -> list[str]:
    """
    Parse, normalise (``tel:+…``) and de-duplicate ``recipients``, keeping the first occurrence's order.

    Shared by ``SendSMSOperator`` and ``OrangeSMSNotifier``. Every number is checked before the caller
    sends anything.

    :param value: The ``recipients`` argument after template rendering (see :func:`parse_recipients`).
    :param logger: Logs one line per duplicate dropped.
    :param default_country: Country of numbers written without a country code.
    :raises ValueError: Naming every invalid number, or the unusable value.
    """
    unique: dict[str, str] = {}
    invalid: list[str] = []
    for raw in parse_recipients(value):
        try:
            address = normalize_recipient(raw)
        except ValueError as exc:
            invalid.append(str(exc))
            continue
        if address in unique:
            if logger is not None:
                logger.info(
                    "Recipient %r is the same number as %r (%s): sending to it once",
                    raw,
                    unique[address],
                    address,
                )
            continue
        unique[address] = raw
    if invalid:
        raise ValueError(f"{len(invalid)} invalid recipient(s), nothing was sent: " + "; ".join(invalid))
    return list(unique)
