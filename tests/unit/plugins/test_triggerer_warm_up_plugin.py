from __future__ import annotations

import threading
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import airflow.jobs.triggerer_job_runner as runner
import httpx
import pytest

from airflow_provider_orange_sms.plugins import triggerer_warm_up_plugin as warm_up
from airflow_provider_orange_sms.plugins.triggerer_warm_up_plugin import (
    OrangeSMSTriggererWarmUpPlugin,
    TriggererWarmUpListener,
    warm_triggerer,
)
from tests.support.versions import skip_on_airflow_3_0

#: Airflow 3.0's supervisor has no make_client: nothing is warmed there.
needs_make_client = skip_on_airflow_3_0("the triggerer supervisor's make_client arrived after 3.0")


@pytest.fixture
def original_factory() -> Iterator[Any]:
    original = runner.in_process_api_server
    yield original
    runner.in_process_api_server = original


def _threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "orange-sms-triggerer-warm-up"]


def test_the_plugin_registers_the_listener():
    assert any(isinstance(x, TriggererWarmUpListener) for x in OrangeSMSTriggererWarmUpPlugin.listeners)


def test_a_scheduler_job_is_not_warmed(original_factory):
    assert warm_triggerer(SimpleNamespace(job_type="SchedulerJob")) is False
    assert runner.in_process_api_server is original_factory


def test_a_job_that_never_gets_a_type_is_not_warmed(original_factory):
    assert warm_triggerer(SimpleNamespace(job_type=None), job_type_wait=0.05) is False
    assert runner.in_process_api_server is original_factory


@pytest.mark.parametrize("component", [object(), SimpleNamespace(job_type="DagProcessorJob")])
def test_no_thread_starts_for_what_is_not_a_starting_job(component, original_factory):
    before = len(_threads())
    TriggererWarmUpListener().on_starting(component=component)
    assert len(_threads()) == before


def test_the_setting_switches_it_off(monkeypatch, original_factory):
    monkeypatch.setenv("AIRFLOW__ORANGE_SMS__TRIGGERER_WARM_UP", "False")
    before = len(_threads())
    TriggererWarmUpListener().on_starting(component=SimpleNamespace(job_type=None))
    assert len(_threads()) == before


@needs_make_client
def test_the_supervisor_gets_the_warmed_api_once_then_airflows_own(original_factory):
    assert warm_triggerer(SimpleNamespace(job_type="TriggererJob")) is True
    factory = runner.in_process_api_server
    assert isinstance(factory, warm_up._WarmFactory)

    warmed = factory()
    # Cadwyn generated its routers on the warm request: the supervisor's first one finds them.
    assert warmed.app._cadwyn_initialized is True
    # The supervisor's client is built on that transport: it still answers.
    client = httpx.Client(transport=warmed.transport, base_url="http://in-process.invalid./")
    assert client.get(warm_up.WARM_PATH).json() == {"status": "healthy"}
    assert factory.api is None
    assert factory() is not warmed


@needs_make_client
def test_a_failed_warm_up_leaves_airflows_factory_to_build(monkeypatch, original_factory):
    built: list[object] = []

    def broken() -> Any:
        raise RuntimeError("no app")

    monkeypatch.setattr(runner, "in_process_api_server", broken)
    assert warm_triggerer(SimpleNamespace(job_type="TriggererJob")) is False
    factory = runner.in_process_api_server
    assert factory.ready.is_set()
    factory.original = lambda: built.append(object()) or built[-1]
    assert factory() is built[0]


def test_an_airflow_without_make_client_is_left_alone(monkeypatch, original_factory):
    if hasattr(runner.TriggerRunnerSupervisor, "make_client"):
        monkeypatch.delattr(runner.TriggerRunnerSupervisor, "make_client")
    assert warm_triggerer(SimpleNamespace(job_type="TriggererJob")) is False
    assert runner.in_process_api_server is original_factory
