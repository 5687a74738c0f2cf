"""When a send task may list the opt-out Variables instead of reading both of a number's keys."""

from __future__ import annotations

import pytest

from airflow_provider_orange_sms.opt_out.check import listing_sees_every_record


@pytest.fixture(autouse=True)
def no_backends(monkeypatch):
    for name in ("AIRFLOW__WORKERS__SECRETS_BACKEND", "AIRFLOW__SECRETS__BACKEND"):
        monkeypatch.delenv(name, raising=False)


def test_the_listing_serves_when_records_live_only_in_the_metadata_database():
    assert listing_sees_every_record()


@pytest.mark.parametrize(
    "name",
    ["AIRFLOW_VAR_ORANGE_SMS_OPT_OUT_2250700000001", "AIRFLOW_VAR_ORANGE_SMS_OPT_OUT_2250700000001.OPERATOR"],
)
def test_a_record_in_an_environment_variable_turns_the_listing_off(monkeypatch, name):
    monkeypatch.setenv(
        name, '{"number": "+2250700000001", "opted_out": true, "at": "2026-01-01", "source": "import"}'
    )
    assert not listing_sees_every_record()


@pytest.mark.parametrize("option", ["AIRFLOW__WORKERS__SECRETS_BACKEND", "AIRFLOW__SECRETS__BACKEND"])
def test_a_secrets_backend_for_tasks_turns_the_listing_off(monkeypatch, option):
    monkeypatch.setenv(option, "airflow.secrets.local_filesystem.LocalFilesystemBackend")
    assert not listing_sees_every_record()


def test_other_variables_in_the_environment_leave_it_on(monkeypatch):
    monkeypatch.setenv("AIRFLOW_VAR_ORANGE_SMS_RECEIPTS_PUBLIC_URL", "http://127.0.0.1:8080/")
    assert listing_sees_every_record()


def test_with_records_elsewhere_both_keys_are_read_and_the_listing_still_finds_undecryptable_ones():
    from airflow_provider_orange_sms.opt_out import OptOutListUnreadableError, OptOutRecord, variable_key
    from airflow_provider_orange_sms.opt_out.check import OptOutCheck

    in_env, undecryptable = "+2250700000001", "+2250700000002"
    stop = OptOutRecord(in_env, True, "2026-01-01T00:00:00+00:00", "import")
    values = {variable_key(in_env): stop.to_json()}  # what Variable.get finds in the environment
    in_database = [variable_key(undecryptable)]  # listed, but reads as missing

    check = OptOutCheck(
        values.get,
        list_keys=lambda prefix: [k for k in in_database if k.startswith(prefix)],
        read_unlisted=True,
    )
    assert check.opted_out(f"tel:{in_env}") == stop
    with pytest.raises(OptOutListUnreadableError, match="could not read it"):
        check.opted_out(f"tel:{undecryptable}")
