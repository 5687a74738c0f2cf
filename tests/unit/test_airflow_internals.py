"""
Guards on the Airflow internals the provider relies on: each fails loudly when Airflow changes one.

Each internal is used in one fenced module, which names its guard here. The guards that need more
than this process are in tests/integration: ``db/test_airflow_internals.py`` (a running task's
Variable reads, the sent ledger's Variable rows) and ``processes/test_airflow_internals.py`` (the
masker's short-extra warning).

- ``strict_variables.py``: the Task SDK's request to the supervisor (``SUPERVISOR_COMMS``,
  ``GetVariable``, ``VariableResult``, ``ErrorResponse``/``VARIABLE_NOT_FOUND``).
- ``plugins/connection_form_plugin.py``: the paths and body of the connections REST API, and the Test
  endpoint's port comparison (the bug apache/airflow#73298 fixes).
- ``receipts/store.py``: the metadata-DB models and ``asset_manager``; its guard is in
  ``test_receipts_store.py``.
- ``ui/airflow_auth.py``: the REST API's ``get_user`` dependency, the auth manager and its
  ``is_authorized_*`` checks (who may see the pages).
- ``ui/airflow_data.py``: the models the pages read (XCom, task instances, runs, asset events,
  the sent ledger's Variable rows read without registering them with the masker).
- ``receipts/dedup.py``: Airflow's metadata ``schema`` (the provider's own table sits beside
  Airflow's); guarded by the PostgreSQL and SQLite receiver tests that create the table.
- ``plugins/triggerer_warm_up_plugin.py``: the triggerer supervisor's ``make_client`` calling the runner
  module's ``in_process_api_server``, ``InProcessExecutionAPI.transport``, a job's type set after
  ``on_starting``.
- ``opt_out/variable_rows.py``: the ``variable`` table written with a row lock (no
  compare-and-set in ``Variable.set``); its guard is in ``tests/integration/db/test_reply_store.py``.

If one fails after an Airflow upgrade, read the fenced module against the new Airflow before
releasing: the provider may otherwise silently resend SMS (the ledger) or break the connection form.
"""

from __future__ import annotations

from typing import get_args

import pytest

from airflow_provider_orange_sms.plugins.connection_form_plugin import CONN_TYPE, rewrite_body
from tests.support.versions import skip_on_airflow_3_0

# -- the Task SDK's supervisor protocol (strict_variables.py) -------------------------


def test_task_sdk_supervisor_protocol_still_has_what_strict_variable_reads_use():
    from airflow.sdk.exceptions import ErrorType
    from airflow.sdk.execution_time import task_runner
    from airflow.sdk.execution_time.comms import ErrorResponse, GetVariable, VariableResult

    assert "SUPERVISOR_COMMS" in vars(task_runner) or "SUPERVISOR_COMMS" in task_runner.__annotations__
    assert GetVariable(key="k").key == "k"
    assert "value" in VariableResult.model_fields
    assert ErrorResponse(error=ErrorType.VARIABLE_NOT_FOUND).error == ErrorType.VARIABLE_NOT_FOUND


# -- the connections REST API (plugins/connection_form_plugin.py) --------------------------------------------


def test_the_connection_body_still_carries_type_port_and_extra_as_json_text():
    from airflow.api_fastapi.core_api.datamodels.connections import ConnectionBody

    fields = ConnectionBody.model_fields
    assert fields["conn_type"].annotation is str
    assert int in get_args(fields["port"].annotation)
    assert str in get_args(fields["extra"].annotation), "extra is no longer a JSON string"


def _connection_routes() -> set[tuple[str, str]]:
    from airflow.api_fastapi.core_api.routes.public import public_router
    from airflow.api_fastapi.core_api.routes.public.connections import connections_router

    return {
        (method, public_router.prefix + route.path)
        for route in connections_router.routes
        for method in getattr(route, "methods", ())
    }


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/api/v2/connections"),
        ("PATCH", "/api/v2/connections/{connection_id}"),
        ("POST", "/api/v2/connections/test"),
    ],
)
def test_the_connection_requests_the_plugin_rewrites_still_exist_and_match_it(method, path):
    assert (method, path) in _connection_routes(), f"Airflow no longer serves {method} {path}"
    concrete = path.replace("{connection_id}", "my_conn")
    body = b'{"conn_type": "%s", "port": 0, "extra": "{\\"a\\": null}"}' % CONN_TYPE.encode()
    assert rewrite_body(method, concrete, body) is not None, f"the plugin no longer matches {method} {path}"


def test_airflow_still_refuses_port_zero_for_a_connection_without_port():
    """
    The port-0 drop in plugins/connection_form_plugin.py works around this; apache/airflow#73298 fixes
    it upstream.

    When this fails, the installed Airflow accepts port 0: remove the port-0 drop from
    plugins/connection_form_plugin.py once the oldest supported Airflow is such a release (keep it,
    gated by version, until then).
    """
    import airflow
    from airflow.api_fastapi.core_api.routes.public import connections
    from packaging.version import Version

    if Version(airflow.__version__) < Version("3.3.1"):
        pytest.skip(f"Airflow {airflow.__version__} does not compare the tested port with the stored one")
    assert hasattr(connections, "_same_endpoint"), (
        "Airflow changed how the Test endpoint compares the tested host and port with the stored "
        "connection: check whether plugins/connection_form_plugin.py's port-0 drop is still needed"
    )
    assert connections._same_endpoint(0, None) is False, (
        "This Airflow contains apache/airflow#73298 (port 0 means no port): the port-0 drop in "
        "plugins/connection_form_plugin.py is only needed for older releases"
    )


# -- the pages' security and data (ui/airflow_auth.py, ui/airflow_data.py) ------------------------


@skip_on_airflow_3_0("the pages need external views (3.1+); 3.0's get_user reads only the OAuth2 bearer")
def test_the_rest_apis_user_dependency_still_reads_the_bearer_header_and_the_session_cookie():
    import inspect

    from airflow.api_fastapi.auth.managers.base_auth_manager import COOKIE_NAME_JWT_TOKEN
    from airflow.api_fastapi.core_api.security import get_user

    source = inspect.getsource(get_user)
    assert "bearer" in source.lower(), "get_user no longer reads the Authorization header"
    assert "COOKIE_NAME_JWT_TOKEN" in source, "get_user no longer reads the session cookie"
    assert COOKIE_NAME_JWT_TOKEN == "_token"


def test_the_auth_manager_still_answers_the_checks_the_pages_ask():
    import inspect

    from airflow.api_fastapi.auth.managers.base_auth_manager import BaseAuthManager
    from airflow.api_fastapi.auth.managers.models.resource_details import (
        ConnectionDetails,
        DagAccessEntity,
        DagDetails,
    )

    for name, params in (
        ("is_authorized_dag", {"method", "user", "access_entity", "details"}),
        ("is_authorized_connection", {"method", "user", "details"}),
        ("is_authorized_asset", {"method", "user"}),
    ):
        assert params <= set(inspect.signature(getattr(BaseAuthManager, name)).parameters), name
    assert {DagAccessEntity.RUN, DagAccessEntity.XCOM} <= set(DagAccessEntity)
    assert DagDetails(id="d").id == "d"
    assert ConnectionDetails(conn_id="c").conn_id == "c"


def test_the_models_the_pages_read_still_have_their_columns():
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance
    from airflow.models.trigger import Trigger
    from airflow.models.xcom import XComModel

    for model, columns in (
        (XComModel, ("dag_id", "run_id", "task_id", "map_index", "key", "timestamp")),
        (
            TaskInstance,
            ("dag_id", "run_id", "task_id", "map_index", "state", "operator", "end_date", "trigger_id"),
        ),
        (Trigger, ("id", "classpath", "kwargs")),
        (DagRun, ("dag_id", "run_id", "state", "run_after", "start_date")),
        (AssetEvent, ("asset_id", "extra", "timestamp")),
        (AssetModel, ("id", "name")),
    ):
        for column in columns:
            assert hasattr(model, column), f"{model.__name__}.{column} is gone"
    assert callable(XComModel.deserialize_value)


def test_the_pages_plugin_declares_the_views_airflow_lists():
    from airflow_provider_orange_sms.plugins.pages_plugin import EXTERNAL_VIEWS, OrangeSMSPagesPlugin

    if "external_views" not in vars(__import__("airflow.plugins_manager").plugins_manager.AirflowPlugin):
        pytest.skip("Airflow 3.0 has no external views")
    from airflow.api_fastapi.core_api.datamodels.plugins import ExternalViewResponse

    for view in EXTERNAL_VIEWS:
        ExternalViewResponse.model_validate(view)  # destination and fields as the UI expects
    assert OrangeSMSPagesPlugin.external_views == EXTERNAL_VIEWS


# -- the triggerer's execution API (plugins/triggerer_warm_up_plugin.py) ----------------------


@skip_on_airflow_3_0("the triggerer supervisor's make_client arrived after 3.0 (no warm-up there)")
def test_the_triggerer_still_builds_its_execution_api_the_way_the_warm_up_replaces():
    import inspect

    import airflow.jobs.triggerer_job_runner as runner
    from airflow.api_fastapi.execution_api.app import InProcessExecutionAPI
    from airflow.jobs.base_job_runner import BaseJobRunner
    from airflow.jobs.job import Job

    from airflow_provider_orange_sms.plugins import triggerer_warm_up_plugin as warm_up

    # The supervisor's client is built by make_client from the module's factory, looked up when called.
    assert callable(getattr(runner, warm_up.FACTORY))
    make_client = warm_up.client_builder()
    assert warm_up.FACTORY in make_client.__code__.co_names
    assert f"{warm_up.FACTORY}().transport" in inspect.getsource(make_client)
    assert hasattr(InProcessExecutionAPI, "transport")
    # on_starting runs in Job.__init__, before the runner gives the job its type.
    assert runner.TriggererJobRunner.job_type == warm_up.TRIGGERER_JOB_TYPE
    assert "job.job_type = self.job_type" in inspect.getsource(BaseJobRunner.__init__)
    assert "hook.on_starting(component=self)" in inspect.getsource(Job)
    assert warm_up._runner_module() is runner


def test_the_execution_api_still_answers_the_warm_up_request():
    import httpx
    from airflow.api_fastapi.execution_api.app import InProcessExecutionAPI

    from airflow_provider_orange_sms.plugins.triggerer_warm_up_plugin import WARM_PATH

    api = InProcessExecutionAPI()
    with httpx.Client(transport=api.transport, base_url="http://in-process.invalid./") as client:
        assert client.get(WARM_PATH).json() == {"status": "healthy"}
    assert api.app._cadwyn_initialized is True
