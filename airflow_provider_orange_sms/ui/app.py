"""
The pages' FastAPI app, mounted on the API server at :data:`URL_PREFIX` by
:class:`~airflow_provider_orange_sms.plugins.pages_plugin.OrangeSMSPagesPlugin`.

Every page and data route depends on the caller's Airflow session first (:mod:`.airflow_auth`):
an anonymous or invalid request gets 401/403 and nothing else. Then:

- ``GET /delivery?dag_id=…&run_id=…[&task_id=…&map_index=…]``: the delivery view (HTML), which
  polls ``GET /api/delivery`` (JSON) while SMS wait for receipts; ``GET /api/delivery.csv`` exports
  it. Needs read access to the DAG's runs and XComs, and to assets.
- ``GET /account``: the "Orange SMS" page (HTML), from ``GET /api/account`` (JSON). Its balance and
  subscription need read access to the connection, its receipts and replies to assets; a section the
  user may not see says so.
- ``GET /static/…``: the pages' style sheet and scripts (:mod:`.pages`), the same for everyone and
  holding no data, so served without a session like Airflow's own.

Phone numbers are masked in every answer; no secret is ever included. When the metadata database
fails, every route answers 503 with ``Retry-After``.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Any

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from airflow_provider_orange_sms.ui import account, delivery, pages
from airflow_provider_orange_sms.ui import airflow_auth as auth
from airflow_provider_orange_sms.ui import airflow_data as data

#: Where the app is mounted on the API server.
URL_PREFIX = "/orange-sms-ui"
#: Receipts scanned per delivery view.
MAX_RECEIPTS = 200_000
#: Undelivered recipients listed in the JSON (all of them are in the CSV).
MAX_LISTED = 500
_NO_STORE = {"Cache-Control": "no-store"}
#: Seconds a caller is asked to wait when the metadata database failed.
_RETRY_AFTER_SECONDS = 30
log = logging.getLogger(__name__)


def _delivery_view(user: Any, dag_id: str, run_id: str, task_id: str | None, map_index: int | None) -> Any:
    if not (auth.may_read_dag_run(user, dag_id) and auth.may_read_assets(user)):
        raise auth.forbid(f"the runs and XComs of DAG {dag_id!r}, and assets")
    info, tasks = data.run_send_tasks(dag_id, run_id, task_id, None if task_id is None else map_index)
    if info is None:
        raise HTTPException(status_code=404, detail=f"No run {run_id!r} of DAG {dag_id!r}")
    events = data.receipt_events(info.since, MAX_RECEIPTS) if tasks else []
    return delivery.run_view(
        dag_id, run_id, info.state, tasks, events, run_after=info.run_after, clear_number=info.clear_number
    )


def _account_view(user: Any, conn_id: str, now: datetime) -> dict[str, Any]:
    from airflow_provider_orange_sms.hooks.orange_sms import OrangeSMSHook

    view: dict[str, Any] = {"conn_id": conn_id, "cache_seconds": account.CACHE_SECONDS}
    if auth.may_read_connection(user, conn_id):
        with OrangeSMSHook(orange_sms_conn_id=conn_id) as hook:  # closed once the page is built
            view["balance"] = _section(
                lambda: account.balances(
                    account.cached(conn_id, "contracts", lambda: hook.get_contracts(account.ALL_COUNTRIES))
                )
            )
            view["orange_usage"] = _section(
                lambda: account.orange_usage(
                    account.cached(conn_id, "statistics", lambda: hook.get_statistics(account.ALL_COUNTRIES))
                )
            )
            found = data.connection_subscription(conn_id)
            subscription_id = found.subscription_id
            subscription: dict[str, Any] = {
                "id": subscription_id,
                "source": found.source,
                **account.record_view(found.record),
            }
            if subscription_id:
                subscription.update(
                    _section(
                        lambda: account.subscription_view(
                            account.cached(
                                conn_id,
                                f"subscription/{subscription_id}",
                                lambda: hook.get_delivery_receipt_subscription(subscription_id),
                            )
                        )
                    )
                )
            view["subscription"] = subscription
    else:
        view["balance"] = view["orange_usage"] = view["subscription"] = {
            "forbidden": f"needs read access to the connection {conn_id!r}"
        }
    view["receiver"] = {
        "secret_configured": data.receiver_secret_set(),
        "public_url": data.variable(data.PUBLIC_URL_VARIABLE),
    }
    first = account.month_start(now)
    allowed: dict[str, bool] = {}
    tasks = []
    for task in data.send_tasks_since(first):
        if task.dag_id not in allowed:
            allowed[task.dag_id] = auth.may_read_dag_run(user, task.dag_id)
        if allowed[task.dag_id]:
            tasks.append(task)
    days = account.daily_usage(tasks, first)
    view["usage"] = {"month": f"{first:%Y-%m}", "days": days, "chart": account.usage_chart(days, first)}
    if auth.may_read_assets(user):
        view["receipts"] = {"rows": account.receipt_rows(data.latest_receipts(account.LATEST))}
        view["replies"] = {"rows": account.reply_rows(data.latest_replies(account.LATEST))}
    else:
        view["receipts"] = view["replies"] = {"forbidden": "needs read access to assets"}
    return view


def _section(build: Any) -> dict[str, Any]:
    """``{"rows": build()}``, or ``{"error": …}`` naming the failure (Orange down, bad connection)."""
    try:
        result = build()
    except Exception as exc:
        return {"error": f"{type(exc).__name__}: {exc}"[:300]}
    return result if isinstance(result, dict) else {"rows": result}


def create_app() -> FastAPI:
    """The pages' app (see the module doc)."""
    from sqlalchemy.exc import SQLAlchemyError

    app = FastAPI(title="Orange SMS pages", docs_url=None, redoc_url=None, openapi_url=None)
    app.mount("/static", pages.static_files(), name="static")

    @app.exception_handler(SQLAlchemyError)
    def database_failed(request: Request, exc: Exception) -> JSONResponse:
        # Locked, restarting, a lost connection: a 503 to try again, not a 500. The statement and its
        # parameters stay out of the answer and the log: the driver's own message says enough.
        reason = getattr(exc, "orig", None) or type(exc).__name__
        log.warning(
            "Orange SMS page %s answered 503: the metadata database failed (%s)", request.url.path, reason
        )
        return JSONResponse(
            {"detail": "The metadata database is unavailable; try again later"},
            status_code=503,
            headers={**_NO_STORE, "Retry-After": str(_RETRY_AFTER_SECONDS)},
        )

    @app.get("/delivery", response_class=HTMLResponse)
    def delivery_page(
        request: Request,
        dag_id: str,
        run_id: str,
        task_id: str | None = None,
        map_index: int = -1,
        user: Any = auth.CurrentUser,
    ) -> Response:
        _delivery_view(user, dag_id, run_id, task_id, map_index)  # 403/404 before any HTML
        return pages.page(request, "delivery.html", headers=_NO_STORE)

    @app.get("/api/delivery")
    def delivery_json(
        dag_id: str,
        run_id: str,
        task_id: str | None = None,
        map_index: int = -1,
        user: Any = auth.CurrentUser,
    ) -> JSONResponse:
        view = _delivery_view(user, dag_id, run_id, task_id, map_index)
        for task in view["tasks"]:
            task.pop("recipients")
            task["undelivered_count"] = len(task["undelivered"])
            task["undelivered"] = task["undelivered"][:MAX_LISTED]
        return JSONResponse(view, headers=_NO_STORE)

    @app.get("/api/delivery.csv")
    def delivery_csv(
        dag_id: str,
        run_id: str,
        task_id: str | None = None,
        map_index: int = -1,
        user: Any = auth.CurrentUser,
    ) -> Response:
        view = _delivery_view(user, dag_id, run_id, task_id, map_index)
        # ASCII only: a header holds Latin-1, and a run id may hold any letter (allowed_run_id_pattern).
        name = "".join(
            ch if (ch.isascii() and ch.isalnum()) or ch in "-_." else "_" for ch in f"{dag_id}_{run_id}"
        )
        return Response(
            delivery.to_csv(view),
            media_type="text/csv; charset=utf-8",
            headers={**_NO_STORE, "Content-Disposition": f'attachment; filename="sms-delivery-{name}.csv"'},
        )

    @app.get("/account", response_class=HTMLResponse)
    def account_page(request: Request, user: Any = auth.CurrentUser) -> Response:
        return pages.page(request, "account.html", headers=_NO_STORE)

    @app.get("/api/account")
    def account_json(
        conn_id: str = Query("orange_sms_default", max_length=250), user: Any = auth.CurrentUser
    ) -> JSONResponse:
        return JSONResponse(_account_view(user, conn_id, datetime.now(timezone.utc)), headers=_NO_STORE)

    return app
