"""
An Airflow plugin whose listener warms the triggerer's in-process execution API when the triggerer
starts, so that the first deadline callback after a start is as fast as the later ones.

A triggerer's supervisor answers its triggers' Task SDK requests (connections, Variables) through
an in-process execution API it builds on the first such request: an import, a FastAPI app and, on
that app's first request, Cadwyn's routers for every API version, several seconds of CPU that the
first callback waits for. The listener's ``on_starting`` runs in the triggerer's main process when
its job is created; it starts a daemon thread that builds that execution API and sends it one
request (``GET /health``) while the triggerer starts, then hands it to the supervisor's client.

Thread-safety: the thread never touches the supervisor or its ``client`` (a ``cached_property`` that
attrs turns into a lock-free ``__getattr__`` on the slotted class, on every Python). It replaces
``in_process_api_server``, the function the supervisor's ``make_client`` calls, by one that returns
the warmed instance once (waiting for the thread if it is still warming, as the supervisor would
have waited for its own build) and calls Airflow's function otherwise. So there is one execution API
and one client, built on the supervisor's thread as before; the warm request and the supervisor's
requests go through the same app, whose requests all run on its own event loop.

It runs only in a triggerer (the job becomes a ``TriggererJob`` right after ``on_starting``; in any
other component the thread ends without doing anything), never on the triggerer's async loop (a
separate process), and not at all with ``[orange_sms] triggerer_warm_up = False``. When Airflow
lacks what it relies on, it logs that at debug level and does nothing.

Fenced Airflow internals (used here only, named in ``version_compat``): ``Job.job_type`` set by
``TriggererJobRunner`` after ``on_starting``, ``airflow.jobs.triggerer_job_runner.in_process_api_server``
called by ``TriggerRunnerSupervisor.make_client`` through the module's globals, and
``InProcessExecutionAPI.transport``. ``tests/unit/test_airflow_internals.py`` fails loudly when
Airflow changes one of them.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Any

from airflow.listeners import hookimpl
from airflow.plugins_manager import AirflowPlugin

from airflow_provider_orange_sms import settings

if TYPE_CHECKING:
    from collections.abc import Callable
    from types import ModuleType

log = logging.getLogger(__name__)

#: What the job's ``job_type`` is in a triggerer.
TRIGGERER_JOB_TYPE = "TriggererJob"
#: The module whose ``in_process_api_server`` the supervisor's ``make_client`` calls.
RUNNER_MODULE = "airflow.jobs.triggerer_job_runner"
#: The factory's name in that module.
FACTORY = "in_process_api_server"
#: The cheap request that makes the app generate its routers (the supervisor's client's base URL).
WARM_PATH = "/health"
WARM_URL = f"http://in-process.invalid.{WARM_PATH}"
#: The line the warm-up logs when the execution API is ready (the triggerer test looks for it).
WARMED_MESSAGE = "Orange SMS: the triggerer's execution API is warm"
#: How long the thread waits for the job to get its type (set right after ``on_starting``).
JOB_TYPE_WAIT = 30.0


def warm_up_enabled() -> bool:
    """``[orange_sms] triggerer_warm_up`` (on unless set false)."""
    from airflow_provider_orange_sms.version_compat import conf

    return conf.getboolean(
        settings.SECTION, settings.TRIGGERER_WARM_UP, fallback=settings.DEFAULT_TRIGGERER_WARM_UP
    )


class _WarmFactory:
    """
    Stands in for the runner module's ``in_process_api_server``: the first call gets the warmed API.

    :param original: Airflow's factory, called when nothing warm is left (or the warm-up failed).
    """

    def __init__(self, original: Callable[[], Any]) -> None:
        self.original = original
        self.ready = threading.Event()
        self.api: Any = None

    def __call__(self) -> Any:
        # The supervisor would build for as long otherwise; the thread always sets ready.
        self.ready.wait()
        api, self.api = self.api, None
        return api if api is not None else self.original()


def client_builder() -> Any:
    """
    The triggerer supervisor's ``make_client``; None on an Airflow without it (3.0 builds the client
    in its ``client`` property itself, which attrs hides: nothing is warmed there).
    """
    try:
        from airflow.jobs.triggerer_job_runner import TriggerRunnerSupervisor
    except ImportError:
        return None
    return getattr(TriggerRunnerSupervisor, "make_client", None)


def _runner_module() -> ModuleType | None:
    """The runner module when it has the factory the supervisor's ``make_client`` calls, else None."""
    try:
        import airflow.jobs.triggerer_job_runner as runner
        from airflow.api_fastapi.execution_api.app import InProcessExecutionAPI
    except ImportError as e:
        log.debug("Orange SMS: no triggerer warm-up (%s)", e)
        return None
    if (
        not callable(getattr(runner, FACTORY, None))
        or FACTORY not in getattr(getattr(client_builder(), "__code__", None), "co_names", ())
        or not hasattr(InProcessExecutionAPI, "transport")
    ):
        log.debug("Orange SMS: no triggerer warm-up (this Airflow builds its execution API otherwise)")
        return None
    return runner


def _wait_for_job_type(job: Any, timeout: float) -> str | None:
    deadline = time.monotonic() + timeout
    while (job_type := getattr(job, "job_type", None)) is None and time.monotonic() < deadline:
        time.sleep(0.01)
    return job_type


def warm_triggerer(job: Any, job_type_wait: float = JOB_TYPE_WAIT) -> bool:
    """
    Warm the execution API of the triggerer running ``job``; do nothing for any other job.

    Installs the stand-in factory before building, so the supervisor picks the warmed API up even
    when it asks while the build is under way. Run in a daemon thread.

    :param job: the ``Job`` passed to ``on_starting``.
    :param job_type_wait: how long to wait, in seconds, for the job to get its type.
    :return: whether the warmed API was built (and the factory replaced).
    """
    if _wait_for_job_type(job, job_type_wait) != TRIGGERER_JOB_TYPE:
        return False
    runner = _runner_module()
    if runner is None:
        return False
    factory = _WarmFactory(getattr(runner, FACTORY))
    setattr(runner, FACTORY, factory)
    try:
        import httpx

        api = factory.original()
        # Straight to the transport: a client closed after the request would close it too. The
        # answer does not matter: any request makes the app generate its routers.
        api.transport.handle_request(httpx.Request("GET", WARM_URL)).read()
        factory.api = api
        log.info(WARMED_MESSAGE)
        return True
    except Exception as e:
        log.warning(
            "Orange SMS: the triggerer warm-up failed (%s); the triggerer builds its own", type(e).__name__
        )
        log.debug("Orange SMS: the triggerer warm-up failed", exc_info=True)
        return False
    finally:
        factory.ready.set()


class TriggererWarmUpListener:
    """Listener starting :func:`warm_triggerer` in a daemon thread when a job starts."""

    @hookimpl
    def on_starting(self, component: Any) -> None:
        """
        Start the warm-up thread for a job (it returns at once unless the job is a triggerer's).

        :param component: the component starting; only jobs are considered.
        """
        # A job's type is set by its runner, just after this hook: None here for every job.
        if getattr(component, "job_type", "not a job") not in (None, TRIGGERER_JOB_TYPE):
            return
        try:
            if not warm_up_enabled():
                return
            threading.Thread(
                target=warm_triggerer, args=(component,), name="orange-sms-triggerer-warm-up", daemon=True
            ).start()
        except Exception:
            log.debug("Orange SMS: the triggerer warm-up did not start", exc_info=True)


class OrangeSMSTriggererWarmUpPlugin(AirflowPlugin):
    """Airflow plugin registering :class:`TriggererWarmUpListener`."""

    name = "orange_sms_triggerer_warm_up"
    listeners = [TriggererWarmUpListener()]
