"""What of a notify URL is secret, and what may be shown or logged of it."""

from __future__ import annotations

import pytest

from airflow_provider_orange_sms.receipts.urls import shown_url, url_origin, url_secrets


@pytest.mark.parametrize(
    ("url", "hidden", "origin"),
    [
        (
            "https://h.example/orange-sms/delivery-receipts/s3cr3t-value",
            ["s3cr3t-value"],
            "https://h.example",
        ),
        ("https://h.example:8443/a/Delivery-Receipts/x%2Dy/", ["x%2Dy", "x-y"], "https://h.example:8443"),
        ("https://u:pa55word@h.example/dr?token=t0k3n&v=", ["pa55word", "t0k3n"], "https://h.example"),
        ("https://h.example/receipts", [], "https://h.example"),
        # parse_qsl decodes: the value as written must be hidden too
        ("https://h.example/dr?token=ab+cd%2Fef", ["ab cd/ef", "ab+cd%2Fef"], "https://h.example"),
        ("http://[::1/delivery-receipts/abcdef", ["abcdef"], "(an unparsable URL)"),
    ],
)
def test_url_secrets_and_origin(url, hidden, origin):
    assert url_secrets(url) == hidden
    assert url_origin(url) == origin


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://h.example/dr?token=ab+cd%2Fef&x=1", "https://h.example/dr?token=***&x=***"),
        (
            "https://u:pa55word@h.example/orange-sms/delivery-receipts/s3cr3t",
            "https://u:***@h.example/orange-sms/delivery-receipts/***",
        ),
    ],
)
def test_shown_urls_keep_no_secret(url, shown):
    assert shown_url(url) == shown
