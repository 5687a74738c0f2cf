"""
OrangeSMSHook in other processes: importing the package and the hook stays cheap (fresh
interpreters), ``airflow providers list`` shows the provider, and hooks in parallel processes share
one token and the send limit.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from airflow_provider_orange_sms.hooks.orange_sms import OrangeSMSHook
from airflow_provider_orange_sms.limit.file_limiter import SAFETY_MARGIN
from tests.support.processes import PROCESS_DEADLINE
from tests.support.rate import assert_windows_spaced, judge_rate_at_release, tag_sends_with_their_slot


@pytest.mark.processes
def test_importing_the_package_is_cheap():
    code = (
        "import sys; from airflow_provider_orange_sms.get_provider_info import get_provider_info; "
        "get_provider_info(); "
        "heavy = ('airflow', 'requests', 'airflow_provider_orange_sms.hooks'); "
        "heavy = [m for m in heavy if m in sys.modules]; "
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.processes
def test_importing_the_hook_leaves_call_time_dependencies_unloaded():
    # Structure, not timing: the import-time figure itself is benchmarks/run.py's.
    # What Airflow itself imports with BaseHook does not count (3.0 loads phonenumbers through
    # sqlalchemy_utils): only what importing the hook adds.
    code = (
        "import sys, airflow_provider_orange_sms.version_compat; "
        "before = set(sys.modules); "
        "import airflow_provider_orange_sms.hooks.orange_sms; "
        "lazy = ('phonenumbers', 'iso3166', 'filelock', 'platformdirs'); "
        "print([m for m in lazy if m in sys.modules and m not in before])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"


@pytest.mark.processes
def test_airflow_providers_list_shows_the_provider():
    out = subprocess.run(
        [sys.executable, "-m", "airflow", "providers", "list", "--output", "json"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    listing = out[out.index('[{"package_name"') :]
    packages = {p["package_name"] for p in json.loads(listing)}
    assert "airflow-provider-orange-sms" in packages


@pytest.mark.processes
def test_hooks_in_parallel_processes_share_one_token_and_the_limit(
    orange_conn, sandbox, cache_dir, monkeypatch
):
    import multiprocessing

    released = judge_rate_at_release(sandbox, monkeypatch)
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(3)
    procs = [ctx.Process(target=_send_with_hook, args=(barrier, n)) for n in range(3)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(PROCESS_DEADLINE)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    assert sorted(m.address for m in sandbox.state.messages) == sorted(
        f"tel:+2250702{n}000{i:02d}" for n in range(3) for i in range(3)
    )
    assert sandbox.state.token_requests == 1
    assert sandbox.state.rate_limited == 0  # judged at the instants the shared limiter released them
    # Judged as Orange's window is: a late sender may send beside one booked after it (keep_turn).
    assert_windows_spaced(released, 5, SAFETY_MARGIN / 5)


def _send_with_hook(barrier, n):
    # Spawned processes inherit the environment: AIRFLOW_CONN_ORANGE_SMS_DEFAULT and the cache dir.
    hook = OrangeSMSHook()
    tag_sends_with_their_slot(hook.client)
    barrier.wait()
    for i in range(3):
        hook.send_sms(f"+2250702{n}000{i:02d}", "hi")
