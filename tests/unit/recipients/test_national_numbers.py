"""Numbers without a country code go to the right country, or nowhere.

Each send is checked against what the sandbox received, counted per recipient.
"""

from __future__ import annotations

import logging
import uuid
from collections import Counter

import pytest

from airflow_provider_orange_sms.recipients.addresses import normalize_country, normalize_recipient
from airflow_provider_orange_sms.recipients.recipient_lists import validate_recipients


def received(sandbox):
    return Counter(m.address for m in sandbox.state.messages)


@pytest.mark.parametrize(
    ("number", "country", "address"),
    [
        ("0700000001", "CIV", "tel:+2250700000001"),
        ("07 00 00 00 01", "civ", "tel:+2250700000001"),
        ("(07) 00.00.00-01", "CI", "tel:+2250700000001"),  # alpha-2 accepted
        ("771234567", "SEN", "tel:+221771234567"),
    ],
)
def test_national_number_goes_to_the_default_country(make_client, sandbox, number, country, address):
    client = make_client(country=country)
    client.send_sms(number, "hi")
    assert received(sandbox) == {address: 1}


@pytest.mark.parametrize("number", ["0700000001", "771234567", "612345678"])
def test_national_number_without_a_country_is_refused_before_any_request(client, sandbox, number):
    # Before: tel:+0700000001, tel:+771234567 (Russia), tel:+612345678 (Australia).
    with pytest.raises(ValueError, match="no country code") as err:
        client.send_sms(number, "hi")
    message = str(err.value)
    assert repr(number) in message
    assert "+225" in message
    assert "country" in message
    assert "default_country" in message
    assert sandbox.state.requests == []


@pytest.mark.parametrize(
    ("number", "country", "where"),
    [
        ("612345678", "CIV", "CI"),  # 9 digits: Côte d'Ivoire numbers have 10
        ("0700000001", "SEN", "SN"),  # a Côte d'Ivoire national number in Senegal
        ("07000000012", "CIV", "CI"),
    ],
)
def test_number_not_possible_in_its_country_is_refused(make_client, sandbox, number, country, where):
    client = make_client(country=country)
    with pytest.raises(ValueError, match="not a possible number") as err:
        client.send_sms(number, "hi")
    assert repr(number) in str(err.value)
    assert where in str(err.value)
    assert sandbox.state.requests == []


def test_international_number_not_possible_is_refused(client, sandbox):
    # +225 with 9 national digits: the old check (8 to 15 digits, known country code) let it through.
    with pytest.raises(ValueError, match="not a possible number in CI"):
        client.send_sms("+225612345678", "hi")
    assert sandbox.state.requests == []


def test_possible_but_unallocated_number_is_sent_with_a_warning(client, sandbox, caplog):
    caplog.set_level(logging.WARNING, logger="airflow_provider_orange_sms.recipients.addresses")
    client.send_sms("+2251100000001", "hi")
    assert received(sandbox) == {"tel:+2251100000001": 1}
    [record] = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert "+2251100000001" in record.getMessage()
    # A number in a known range gives no warning.
    caplog.clear()
    normalize_recipient("+2250700000001", default_country=None)
    assert [r for r in caplog.records if r.levelno == logging.WARNING] == []


def test_validate_recipients_reads_national_numbers_and_deduplicates_across_forms():
    assert normalize_recipient("2250700000001", "CIV") == "tel:+2250700000001"  # code already there
    assert normalize_recipient("+221771234567", "CIV") == "tel:+221771234567"  # international wins
    assert normalize_recipient("00221771234567", "CIV") == "tel:+221771234567"
    assert validate_recipients(
        ["0700000001", "+2250700000001", "07 00 00 00 02", "tel:+2250700000002"], default_country="CIV"
    ) == ["tel:+2250700000001", "tel:+2250700000002"]
    with pytest.raises(ValueError, match=r"1 invalid.*'0700000003'.*no country code"):
        validate_recipients(["+2250700000001", "0700000003"])


def test_country_codes_alpha3_and_alpha2():
    assert normalize_country("civ") == "CIV"
    assert normalize_country(" sn ") == "SEN"
    with pytest.raises(ValueError, match="'XYZ'"):
        normalize_country("XYZ")
    with pytest.raises(ValueError, match="'XYZ'"):
        normalize_recipient("0700000001", default_country="XYZ")


@pytest.mark.parametrize(
    "number",
    # Numbers the tests, the example DAGs and the README use: they must stay possible.
    ["+2250700000001", "+2250700000666", "+2250799999999", "+221770000001", "+2250702100001"],
)
def test_numbers_used_in_examples_are_possible(client, sandbox, number):
    client.send_sms(number, "hi")
    assert received(sandbox) == {f"tel:{number}": 1}
    assert normalize_recipient(number, default_country="SEN") == f"tel:{number}"


def test_a_number_is_parsed_once_however_often_it_is_sent_and_warned_about_each_time(monkeypatch, caplog):
    import phonenumbers

    parsed: list[str] = []
    parse = phonenumbers.parse
    monkeypatch.setattr(
        phonenumbers, "parse", lambda text, region: parsed.append(text) or parse(text, region)
    )
    caplog.set_level(logging.WARNING, logger="airflow_provider_orange_sms.recipients.addresses")
    unallocated = f"+22511{uuid.uuid4().int % 10**8:08d}"  # not read by another test before
    for _ in range(3):
        assert normalize_recipient(unallocated) == f"tel:{unallocated}"
    assert parsed == [unallocated]
    assert len([r for r in caplog.records if unallocated in r.getMessage()]) == 3
    with pytest.raises(ValueError, match="not a possible number"):  # an error is not remembered
        normalize_recipient(f"{unallocated}0")
    with pytest.raises(ValueError, match="not a possible number"):
        normalize_recipient(f"{unallocated}0")
    assert parsed == [unallocated, f"{unallocated}0", f"{unallocated}0"]
