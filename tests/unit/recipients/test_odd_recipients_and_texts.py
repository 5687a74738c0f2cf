"""Odd recipients values and message texts fail clearly, before any request."""

from __future__ import annotations

from collections import Counter

import pytest

from airflow_provider_orange_sms.recipients.messages import DEFAULT_MAX_MESSAGE_LENGTH, check_message
from airflow_provider_orange_sms.recipients.recipient_lists import (
    MAX_RECIPIENTS_TEXT,
    parse_recipients,
    validate_recipients,
)


def received(sandbox):
    return Counter(m.address for m in sandbox.state.messages)


@pytest.mark.parametrize(
    "value",
    ["(+225) 07 00 00 00 01", "(225) 0700000001", "(+2250700000001)", " (+225)0700000001 "],
)
def test_number_starting_with_a_parenthesis_is_one_number(client, sandbox, value):
    # Before: "it looks like a list but cannot be parsed".
    addresses = validate_recipients(value, default_country="CIV")
    assert addresses == ["tel:+2250700000001"]
    for address in addresses:
        client.send_sms(address, "hi")
    assert received(sandbox) == {"tel:+2250700000001": 1}


def test_tuple_and_list_text_are_still_lists():
    assert parse_recipients("('+2250700000001', '+2250700000002')") == ["+2250700000001", "+2250700000002"]
    assert parse_recipients('["+2250700000001", "(+225) 0700000002"]') == [
        "+2250700000001",
        "(+225) 0700000002",
    ]
    assert validate_recipients("(+225) 07 00 00 00 01, (+225) 07 00 00 00 02") == [
        "tel:+2250700000001",
        "tel:+2250700000002",
    ]


def _deeply_nested(depth):
    value: list = ["+2250700000001"]
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize("depth", [1, 50_000])
def test_nested_list_is_a_clear_error_not_a_recursion_error(depth):
    value = _deeply_nested(depth)
    with pytest.raises(ValueError, match="nested lists are not accepted") as err:
        validate_recipients(value)
    assert not isinstance(err.value, RecursionError)
    assert len(str(err.value)) < 500


@pytest.mark.parametrize(
    "text",
    ["[" * 200_000, "[" * 100_000 + "]" * 100_000, "[['+2250700000001']]", "(('+2250700000001',),)"],
)
def test_nested_list_text_is_a_clear_error(text):
    with pytest.raises(ValueError, match="nested lists are not accepted") as err:
        parse_recipients(text)
    assert len(str(err.value)) < 500


def test_oversized_list_text_is_refused():
    text = "[" + ", ".join(["'+2250700000001'"] * (MAX_RECIPIENTS_TEXT // 16)) + "]"
    assert len(text) > MAX_RECIPIENTS_TEXT
    with pytest.raises(ValueError, match=f"more than the {MAX_RECIPIENTS_TEXT}"):
        parse_recipients(text)


@pytest.mark.parametrize(
    ("message", "match"),
    [
        ("hello\x00world", "U\\+0000"),
        ("\x00", "U\\+0000"),
        ("bell\x07", "U\\+0007"),
        ("esc\x1b[31m", "U\\+001B"),
        ("del\x7f", "U\\+007F"),
        ("\u200b", "invisible"),
        ("\u200b\u200c\u200d\u2060\ufeff", "invisible"),
        (" \u200b \n\t\u3164", "invisible"),
    ],
)
def test_unusable_text_is_refused_before_any_request(client, sandbox, message, match):
    with pytest.raises(ValueError, match=match):
        client.send_sms("+2250700000001", message)
    assert sandbox.state.requests == []


def test_text_longer_than_the_limit_names_length_and_limit(make_client, sandbox):
    client = make_client()
    assert client.max_message_length == DEFAULT_MAX_MESSAGE_LENGTH
    with pytest.raises(
        ValueError, match=f"{DEFAULT_MAX_MESSAGE_LENGTH + 1} characters.*{DEFAULT_MAX_MESSAGE_LENGTH}"
    ):
        client.send_sms("+2250700000001", "x" * (DEFAULT_MAX_MESSAGE_LENGTH + 1))
    short = make_client(max_message_length=10)
    with pytest.raises(ValueError, match="11 characters, longer than the limit of 10"):
        short.send_sms("+2250700000001", "x" * 11)
    assert sandbox.state.requests == []
    short.send_sms("+2250700000001", "x" * 10)
    assert received(sandbox) == {"tel:+2250700000001": 1}
    # Newlines, tabs, joiners inside emoji and a leading zero-width space are fine.
    usable = ["line 1\nline 2\r\n\tindented", "family 👨\u200d👩\u200d👧", "\u200bhello", "a" * 1530]
    for text in usable:
        client.send_sms("+2250700000002", text)
        assert check_message(text) == text
    assert [m.message for m in sandbox.state.messages][1:] == usable


def test_check_message_limit_argument():
    assert check_message("x" * 5000, None) == "x" * 5000
    with pytest.raises(ValueError, match="3 characters, longer than the limit of 2"):
        check_message("abc", 2)


@pytest.mark.parametrize("bad", [0, -1, "10", 1.5, True])
def test_invalid_max_message_length_is_refused(make_client, bad):
    with pytest.raises(ValueError, match="max_message_length"):
        make_client(max_message_length=bad)
