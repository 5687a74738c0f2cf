"""Validation and normalisation of phone numbers, senders and countries.

Everything here runs before a request is made, so bad input fails fast with the bad value named.
Lists of recipients are parsed in :mod:`.recipient_lists`, SMS texts checked in :mod:`.messages`.

Phone numbers: one written with ``+``, ``00`` or ``tel:+`` is international; one without is a
national number of the default country (the connection's ``country`` extra), read by
libphonenumber with that country's trunk prefix (``0700000001`` in ``CIV`` is ``+2250700000001``).
Digits are never guessed to start with a country code: ``771234567`` is not ``+7…``.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import reprlib

# phonenumbers and iso3166 are imported inside the functions that use them: phonenumbers' metadata
# would be the biggest share of the hook's own import time, and importing the hook parses no number.

log = logging.getLogger(__name__)

#: The digits of an international (E.164) number, as a regular expression: a country code (never
#: 0), 7 to 15 digits in all. The one definition for every part that reads a number written by
#: Orange or stored on the opt-out list; a recipient is read by libphonenumber.
E164_DIGITS = "[1-9][0-9]{6,14}"

_SEPARATORS = re.compile(r"[\s\-.()/]")
_DIGITS = re.compile(r"^\+?[0-9]+$")

_short = reprlib.Repr()
_short.maxstring = 80
_short.maxother = 80
_short.maxlist = 6
_short.maxtuple = 6
_short.maxlevel = 2


def short_repr(value: object) -> str:
    """
    Return a bounded ``repr`` of ``value`` for error messages (never recurses deeply, never huge).

    :param value: Anything the caller passed in.
    """
    return _short.repr(value)


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
    """``value`` without ``tel:`` and separators: ``+`` and digits, or digits. Not yet interpreted."""
    if not isinstance(value, str):
        raise ValueError(f"Invalid {what} {short_repr(value)}: expected a string such as '+2250700000001'")
    text = value.strip()
    if text.lower().startswith("tel:"):
        text = text[4:]
    text = _SEPARATORS.sub("", text)
    # isascii: str.isdigit() and \d also accept Arabic-Indic and other Unicode digits.
    if not text.isascii() or not _DIGITS.match(text):
        raise ValueError(
            f"Invalid {what} {short_repr(value)}: only digits 0-9, spaces, dashes, dots, parentheses "
            "and a leading '+' are allowed"
        )
    return text


def _international_digits(text: str) -> str | None:
    """The digits after ``+`` or ``00``; ``None`` for a national number."""
    if text.startswith("+"):
        return text[1:]
    if text.startswith("00"):
        return text[2:]
    return None


def _region(country: str) -> str:
    """libphonenumber's region (ISO alpha-2) of an alpha-3 or alpha-2 ``country``."""
    import phonenumbers
    from iso3166 import countries as iso_countries

    region = iso_countries.get(normalize_country(country)).alpha2
    if phonenumbers.country_code_for_region(region) == 0:
        raise ValueError(f"Invalid country {country!r}: no telephone numbering plan is known for it")
    return region


def normalize_recipient(recipient: object, default_country: str | None = None) -> str:
    """
    Return ``recipient`` as Orange wants it: ``tel:+<country code><national number>``.

    International forms: ``+2250700000001``, ``002250700000001``, ``tel:+2250700000001``. Without
    ``+`` or ``00`` the number is national and read in ``default_country``: ``0700000001`` with
    ``CIV`` gives ``tel:+2250700000001``. Spaces, dashes, dots and parentheses are ignored.

    The number must be *possible* for its country (right length, per libphonenumber); one that is
    possible but outside the ranges libphonenumber knows is accepted with a warning, since those
    ranges lag behind new allocations.

    :param recipient: The phone number.
    :param default_country: ISO 3166 code (``CIV`` or ``CI``) of national numbers; ``None`` refuses
        them.
    :raises ValueError: When it has letters, has no country code and no default country is set, is
        not 8 to 15 digits, has an unknown country code, or is not possible for its country. The
        message names the value.
    """
    if isinstance(recipient, str) and (default_country is None or isinstance(default_country, str)):
        e164, known_range, where = _read_remembered(recipient, default_country)
    else:
        e164, known_range, where = _read(recipient, default_country)
    if not known_range:
        log.warning(
            "Recipient phone number %s (%s) is outside the number ranges known for %s; sending anyway "
            "(the ranges lag behind new allocations)",
            short_repr(recipient),
            e164,
            where,
        )
    return f"tel:{e164}"


def _read(recipient: object, default_country: str | None) -> tuple[str, bool, str]:
    """:func:`normalize_recipient`'s reading: the E.164 number, whether it is in a known range, its region."""
    import phonenumbers

    text = _digits(recipient, "recipient phone number")
    name = short_repr(recipient)
    international = _international_digits(text)
    if international is not None:
        if not 8 <= len(international) <= 15:
            raise ValueError(
                f"Invalid recipient phone number {name}: E.164 numbers have 8 to 15 digits "
                f"including the country code, got {len(international)}"
            )
        if phonenumbers.region_code_for_country_code(_country_calling_code(international)) == "ZZ":
            raise ValueError(f"Invalid recipient phone number {name}: unknown country calling code")
        to_parse, region = "+" + international, None
    elif default_country is None:
        raise ValueError(
            f"Invalid recipient phone number {name}: no country code. Write it in international form "
            "(e.g. '+225…' for Côte d'Ivoire) or set the connection's 'country' extra (or the "
            "operator's default_country) so that national numbers can be read"
        )
    else:
        to_parse, region = text, _region(default_country)
    try:
        number = phonenumbers.parse(to_parse, region)
    except phonenumbers.NumberParseException as exc:
        raise ValueError(f"Invalid recipient phone number {name}: {exc}") from None
    where = phonenumbers.region_code_for_number(number) or region or "?"
    reason = phonenumbers.is_possible_number_with_reason(number)
    if reason not in (
        phonenumbers.ValidationResult.IS_POSSIBLE,
        phonenumbers.ValidationResult.IS_POSSIBLE_LOCAL_ONLY,
    ):
        why = {
            phonenumbers.ValidationResult.TOO_SHORT: "too short",
            phonenumbers.ValidationResult.TOO_LONG: "too long",
            phonenumbers.ValidationResult.INVALID_LENGTH: "wrong length",
            phonenumbers.ValidationResult.INVALID_COUNTRY_CODE: "unknown country calling code",
        }.get(reason, "not possible")
        national = "" if international is not None else f" (read as a national number of {region})"
        raise ValueError(
            f"Invalid recipient phone number {name}{national}: not a possible number in {where} ({why})"
        )
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    if not 8 <= len(e164) - 1 <= 15:
        raise ValueError(
            f"Invalid recipient phone number {name}: E.164 numbers have 8 to 15 digits including the "
            f"country code, got {len(e164) - 1} ({e164})"
        )
    return e164, phonenumbers.is_valid_number(number), where


# The numbers read last, so that a number is parsed once however often it is sent to (libphonenumber's
# parse was a third of the client's own time per send). Errors are not remembered.
_read_remembered = functools.lru_cache(maxsize=4096)(_read)


def _country_calling_code(digits: str) -> int:
    import phonenumbers

    for size in (1, 2, 3):
        code = int(digits[:size])
        if phonenumbers.region_code_for_country_code(code) != "ZZ":
            return code
    return 0


def country_of(address: str) -> str | None:
    """
    Return the country (ISO 3166 alpha-3) of a normalised recipient, ``None`` when unknown.

    :param address: A number as :func:`normalize_recipient` returns it (``tel:+2250700000001``).
    """
    import phonenumbers
    from iso3166 import countries as iso_countries

    digits = address[4:] if address.startswith("tel:") else address
    try:
        region = phonenumbers.region_code_for_number(phonenumbers.parse(digits, None))
    except phonenumbers.NumberParseException:
        return None
    if not region or region == "ZZ":
        return None
    try:
        return str(iso_countries.get(region).alpha3)
    except KeyError:
        return None


def contract_country(sender: str) -> str | None:
    """
    Return the country (ISO 3166 alpha-3) of the SMS contract a send from ``sender`` draws on.

    Orange bills a send to the contract of its sender address's country, whoever the recipient is
    (``2250000`` is ``CIV``, also for a Senegalese recipient). Orange's sender numbers are looked up
    in :data:`SENDER_ADDRESSES`; another number (a developer's own) by its country code.

    :param sender: A sender number as :func:`normalize_sender` returns it (bare digits).
    :return: The country, or ``None`` when the number tells none.
    """
    for country, address in SENDER_ADDRESSES.items():
        if address == sender:
            return country
    return country_of(f"tel:+{sender}")


def normalize_sender_addresses(value: object) -> dict[str, str]:
    """
    Return a country -> sender number mapping with alpha-3 countries and bare-digit senders.

    :param value: A mapping such as ``{"CIV": "2250000", "SEN": "+2210000"}`` (countries alpha-3 or
        alpha-2), or its JSON text.
    :raises ValueError: Naming the entry that is not a country or not a sender number.
    """
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise ValueError(
                f"Invalid sender_addresses {short_repr(value)}: expected a JSON object such as "
                '{"CIV": "2250000", "SEN": "2210000"}'
            ) from None
    if not isinstance(value, dict) or not value:
        raise ValueError(
            f"Invalid sender_addresses {short_repr(value)}: expected a non-empty mapping of country to "
            'sender number such as {"CIV": "2250000", "SEN": "2210000"}'
        )
    routes: dict[str, str] = {}
    for country, sender in value.items():
        try:
            routes[normalize_country(country)] = normalize_sender(
                str(sender) if isinstance(sender, int) else sender
            )
        except ValueError as exc:
            raise ValueError(f"Invalid sender_addresses entry {country!r}: {sender!r}: {exc}") from None
    return routes


def normalize_sender(sender_address: object) -> str:
    """
    Return the sender number as bare digits (``2250000``).

    Accepts ``2250000``, ``+2250000`` and ``tel:+2250000``; an integer (a JSON number in the
    connection extras) is read as its digits.

    :param sender_address: The account's sender number for the destination country.
    :raises ValueError: When it is not 4 to 15 digits.
    """
    if isinstance(sender_address, int) and not isinstance(sender_address, bool) and sender_address > 0:
        sender_address = str(sender_address)
    text = _digits(sender_address, "sender address")
    international = _international_digits(text)
    digits = text if international is None else international
    if not digits.isdigit() or not 4 <= len(digits) <= 15:
        raise ValueError(f"Invalid sender address {short_repr(sender_address)}: expected 4 to 15 digits")
    return digits


def normalize_country(country: object) -> str:
    """
    Return an ISO 3166 alpha-3 country code in upper case (``CIV``).

    :param country: The code, any case: alpha-3 (``CIV``, as Orange's filters want) or alpha-2
        (``CI``, converted).
    :raises ValueError: When it is not an ISO 3166-1 alpha-3 or alpha-2 code.
    """
    # iso3166 (a 9 kB, dependency-free table of ISO 3166-1) rather than pycountry (8 MB with its
    # translations) for the alpha-2 <-> alpha-3 mapping libphonenumber needs.
    from iso3166 import countries as iso_countries

    code = country.strip().upper() if isinstance(country, str) else ""
    found = iso_countries.get(code, None) if len(code) in (2, 3) and code.isalpha() else None
    if found is None:
        raise ValueError(
            f"Invalid country {short_repr(country)}: expected an ISO 3166 alpha-3 code such as 'CIV' "
            "(or alpha-2 such as 'CI')"
        )
    return found.alpha3
