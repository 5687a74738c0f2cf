"""Input validation: phone numbers, senders, countries, messages."""

from __future__ import annotations

import pytest

from airflow_provider_orange_sms.recipients.addresses import (
    normalize_country,
    normalize_recipient,
    normalize_sender,
)
from airflow_provider_orange_sms.recipients.messages import check_message
from airflow_provider_orange_sms.recipients.recipient_lists import parse_recipients, validate_recipients


@pytest.mark.parametrize(
    "raw",
    [
        "+2250700000001",
        "tel:+2250700000001",
        "TEL:+2250700000001",
        "+225 07 00 00 00 01",
        "+225-07-00-00-00-01",
        "002250700000001",
        " +225 (07) 00.00.00.01 ",
    ],
)
def test_recipient_forms_normalise_to_tel_uri(raw):
    assert normalize_recipient(raw) == "tel:+2250700000001"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("+225070000000a", "only digits"),
        ("hello", "only digits"),
        ("2250700000001", "no country code"),  # no + or 00: national, and no default country
        ("+2250700", "8 to 15 digits"),  # 7 digits
        ("+2250700000000012", "8 to 15 digits"),  # 16 digits
        ("", "only digits"),
        ("+", "only digits"),
        ("+225 07 00 00 00 01 ext 2", "only digits"),
        ("+999 1234 5678", "unknown country calling code"),
        ("٠١٢٣٤٥٦٧٨٩", "only digits"),  # Arabic-Indic digits are not ASCII digits
    ],
)
def test_invalid_recipient_names_the_value(raw, reason):
    with pytest.raises(ValueError, match=reason) as err:
        normalize_recipient(raw)
    assert repr(raw) in str(err.value)


@pytest.mark.parametrize("raw", [None, 2250700000001, ["+2250700000001"]])
def test_recipient_must_be_a_string(raw):
    with pytest.raises(ValueError, match="expected a string"):
        normalize_recipient(raw)


@pytest.mark.parametrize("raw", ["2250000", "+2250000", "tel:+2250000", "tel:+225 0000"])
def test_sender_forms(raw):
    assert normalize_sender(raw) == "2250000"


@pytest.mark.parametrize("raw", ["abc", "+22", "tel:+2250000000000000"])
def test_invalid_sender(raw):
    with pytest.raises(ValueError, match="sender address"):
        normalize_sender(raw)


def test_country_codes():
    assert normalize_country("civ") == "CIV"
    assert normalize_country("ci") == "CIV"  # alpha-2 is accepted and converted
    for bad in ("CIVX", "C1V", "XYZ", "", None):
        with pytest.raises(ValueError, match="alpha-3"):
            normalize_country(bad)


def test_message_checks():
    assert check_message("مرحبا 👋") == "مرحبا 👋"
    for bad in ("", "   ", None, 42):
        with pytest.raises(ValueError, match="message"):
            check_message(bad)


def test_every_invalid_recipient_is_named():
    with pytest.raises(ValueError, match="2 invalid") as excinfo:
        validate_recipients(["+2250700000001", "hello", "+1"])
    assert "'hello'" in str(excinfo.value)
    assert "'+1'" in str(excinfo.value)


def test_parse_recipients_shapes():
    assert parse_recipients("+2250700000001") == ["+2250700000001"]
    assert parse_recipients(" +2250700000001 ; +2250700000002\n") == ["+2250700000001", "+2250700000002"]
    assert parse_recipients("('+2250700000001',)") == ["+2250700000001"]
    assert parse_recipients([2250700000001]) == ["2250700000001"]
    with pytest.raises(ValueError, match="expected a list"):
        parse_recipients("('+2250700000001')")
    with pytest.raises(ValueError, match="expected a phone number string"):
        parse_recipients("[{'a': 1}]")
    with pytest.raises(ValueError, match="expected a phone number"):
        parse_recipients({"+2250700000001": 1})


def test_validate_recipients_normalises_and_drops_duplicates_in_order():
    assert validate_recipients("+225 07 00 00 00 02, tel:+2250700000001, 002250700000002") == [
        "tel:+2250700000002",
        "tel:+2250700000001",
    ]


@pytest.mark.parametrize("recipient", ["+2٢٥٠٧٠٠٠٠٠٠٠١", "٠٧٠٠٠٠٠٠٠١", "tel:+225०७००००००००१"])  # noqa: RUF001
def test_a_recipient_in_non_ascii_digits_is_refused_naming_it(recipient):
    # "only digits" alone would read as a contradiction: these are digits, not 0-9.
    with pytest.raises(ValueError, match="only digits 0-9") as caught:
        normalize_recipient(recipient, "CIV")
    assert repr(recipient) in str(caught.value)


@pytest.mark.parametrize(
    ("digits", "accepted"),
    [
        ("6834001", True),
        ("225070000000112", True),
        ("683400", False),
        ("2250700000001123", False),
        ("0225070000001", False),
    ],
)
def test_receipts_replies_the_opt_out_list_and_the_sandbox_read_a_number_alike(digits, accepted):
    """One definition (E164_DIGITS): a number Orange writes in a receipt or a reply is a number the
    opt-out list can hold, and the sandbox takes the same numbers."""
    import json

    from airflow_provider_orange_sms.opt_out import variable_key
    from airflow_provider_orange_sms.receipts.payload import ReceiptError, parse_receipt
    from airflow_provider_orange_sms.receipts.reply_payload import parse_reply
    from airflow_provider_orange_sms.sandbox.server import ADDRESS_RE
    from tests.support.receipts_server import reply_body

    receipt = json.dumps(
        {
            "deliveryInfoNotification": {
                "callbackData": "r-1",
                "deliveryInfo": {"address": f"tel:+{digits}", "deliveryStatus": "DeliveredToTerminal"},
            }
        }
    ).encode()
    outcomes = []
    for read in (
        lambda: parse_receipt(receipt),
        lambda: parse_reply(json.dumps(reply_body(f"tel:+{digits}", "STOP")).encode()),
        lambda: variable_key(f"+{digits}"),
    ):
        try:
            read()
            outcomes.append(True)
        except (ReceiptError, ValueError):
            outcomes.append(False)
    outcomes.append(ADDRESS_RE.match(f"tel:+{digits}") is not None)
    assert outcomes == [accepted] * 4
