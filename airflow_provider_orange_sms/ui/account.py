"""
The "Orange SMS" page's numbers: the account's balance per country, its usage, its delivery-receipt
subscription (as recorded, and as Orange reads it back) and the receiver, the newest receipts and replies.

Orange's answers go through :class:`~airflow_provider_orange_sms.hooks.orange_sms.OrangeSMSHook` and
are kept :data:`CACHE_SECONDS` per connection, so page views (and their polling) do not call the
API each time. Orange's statistics are a total per country and application, without dates: the
daily chart counts what this Airflow's send tasks sent (their result lists), per recipient country.
"""

from __future__ import annotations

import calendar
import threading
import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from airflow_provider_orange_sms.client import ALL_COUNTRIES
from airflow_provider_orange_sms.receipts import shown_url
from airflow_provider_orange_sms.recipients import country_of
from airflow_provider_orange_sms.ui import pages
from airflow_provider_orange_sms.ui.delivery import day_of, mask_number

if TYPE_CHECKING:
    from collections.abc import Callable

    from airflow_provider_orange_sms.receipts import SubscriptionRecord
    from airflow_provider_orange_sms.ui.airflow_data import SendTask

#: How long one answer of Orange's API is shown before it is asked again.
CACHE_SECONDS = 60.0
#: Receipts and replies listed.
LATEST = 20
#: Longest reply text shown.
MAX_REPLY_CHARS = 160

_cache: dict[tuple[str, str], tuple[float, Any]] = {}
_cache_lock = threading.Lock()


def cached(conn_id: str, what: str, fetch: Callable[[], Any], *, now: float | None = None) -> Any:
    """
    ``fetch()``'s result, reused for :data:`CACHE_SECONDS` per connection and kind; failures are
    not cached.

    :param conn_id: The connection the answer belongs to.
    :param what: Which call ("contracts").
    :param fetch: The call.
    :param now: The monotonic time (tests).
    """
    moment = time.monotonic() if now is None else now
    with _cache_lock:
        hit = _cache.get((conn_id, what))
        if hit is not None and moment - hit[0] < CACHE_SECONDS:
            return hit[1]
    value = fetch()
    with _cache_lock:
        _cache[(conn_id, what)] = (moment, value)
    return value


def balances(contracts: dict[str, Any]) -> list[dict[str, Any]]:
    """
    One row per country contract: ``{"country", "units", "expires", "description"}``.

    :param contracts: Orange's ``partnerContracts`` answer.
    """
    rows = []
    for contract in (contracts.get("partnerContracts") or {}).get("contracts") or []:
        for service in contract.get("serviceContracts") or []:
            rows.append(
                {
                    "country": str(service.get("country", "")),
                    "units": int(service.get("availableUnits", 0) or 0),
                    "expires": service.get("expires"),
                    "description": service.get("scDescription"),
                }
            )
    return sorted(rows, key=lambda row: row["country"])


def orange_usage(statistics: dict[str, Any]) -> list[dict[str, Any]]:
    """
    Orange's usage count per country (all applications summed): ``{"country", "usage"}``.

    :param statistics: Orange's ``partnerStatistics`` answer.
    """
    usage: dict[str, int] = {}
    for block in (statistics.get("partnerStatistics") or {}).get("statistics") or []:
        for per_country in block.get("serviceStatistics") or []:
            country = str(per_country.get("country", ""))
            for app in per_country.get("countryStatistics") or []:
                usage[country] = usage.get(country, 0) + int(app.get("usage", 0) or 0)
    return [{"country": c, "usage": n} for c, n in sorted(usage.items())]


def month_start(now: datetime) -> datetime:
    """
    The first instant of ``now``'s month (UTC).

    :param now: An aware time.
    """
    now = now.astimezone(timezone.utc)
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def daily_usage(tasks: list[SendTask], since: datetime) -> dict[str, dict[str, int]]:
    """
    SMS sent per day and recipient country by the send tasks: ``{"2026-03-02": {"CIV": 12}}``.

    A task counts on the day it last ran; only SMS with status ``sent`` count.

    :param tasks: Send task records.
    :param since: Leave out tasks that ran before.
    """
    days: dict[str, dict[str, int]] = {}
    for task in tasks:
        if task.when is None or task.when < since:
            continue
        day = day_of(task.when)
        assert day is not None
        for entry in task.results or []:
            if entry.get("status") != "sent":
                continue
            country = country_of(str(entry.get("recipient") or "")) or "unknown"
            per_day = days.setdefault(day, {})
            per_day[country] = per_day.get(country, 0) + 1
    return dict(sorted(days.items()))


#: Bar colours per country, in order of first appearance.
PALETTE = ("#ff7900", "#4bb4e6", "#50be87", "#a885d8", "#ffb4e6", "#ffd200", "#595959")


def usage_chart(days: dict[str, dict[str, int]], month: datetime) -> str:
    """
    An inline SVG bar chart of :func:`daily_usage` over ``month``: one stacked bar per day, one colour
    per country, a legend. Nothing is fetched: the browser needs no network.

    :param days: SMS per day and country.
    :param month: Any time in the month shown.
    """
    first = month_start(month)
    length = calendar.monthrange(first.year, first.month)[1]
    countries = sorted({c for per_day in days.values() for c in per_day})
    colour = {c: PALETTE[i % len(PALETTE)] for i, c in enumerate(countries)}
    peak = max((sum(per_day.values()) for per_day in days.values()), default=0) or 1
    width, height, left, bottom, top = 720, 220, 40, 24, 10
    bar = (width - left - 10) / length
    scale = (height - bottom - top) / peak
    chart_days = []
    for day in range(1, length + 1):
        key = first.replace(day=day).strftime("%Y-%m-%d")
        y = float(height - bottom)
        bars = []
        for country in countries:
            n = days.get(key, {}).get(country, 0)
            if n:
                y -= n * scale
                bars.append(
                    {"y": y, "height": n * scale, "colour": colour[country], "country": country, "sms": n}
                )
        label = day if day == 1 or day % 5 == 0 else None
        chart_days.append({"key": key, "x": left + (day - 1) * bar, "bars": bars, "label": label})
    return pages.render(
        "usage_chart.svg",
        width=width,
        height=height,
        view_height=height + 24,
        left=left,
        top=top,
        baseline=height - bottom,
        peak=peak,
        month=f"{first:%B %Y}",
        bar_width=bar,
        days=chart_days,
        legend=[{"x": left + i * 90, "colour": colour[c], "country": c} for i, c in enumerate(countries)],
    )


def subscription_view(subscription: dict[str, Any]) -> dict[str, Any]:
    """
    What the page shows of a subscription: its notify URL, secrets masked.

    :param subscription: Orange's ``deliveryReceiptSubscription`` answer.
    """
    body = subscription.get("deliveryReceiptSubscription") or {}
    url = str((body.get("callbackReference") or {}).get("notifyURL") or "")
    return {"notify_url": shown_url(url) if url else None}


def record_view(record: SubscriptionRecord | None) -> dict[str, Any]:
    """
    What the page shows of a connection's subscription record: ``{"sender_address", "country",
    "recorded_notify_url", "recorded_at", "recorded_by"}`` (``{}`` without a record).

    :param record: The record, if any.
    """
    if record is None:
        return {}
    by = record.recorded_by or {}
    task = f"{by.get('dag_id')}.{by.get('task_id')}" if by.get("dag_id") and by.get("task_id") else None
    if task and isinstance(by.get("map_index"), int) and by["map_index"] >= 0:
        task += f"[{by['map_index']}]"
    return {
        "sender_address": record.sender_address,
        "country": record.country,
        "recorded_notify_url": shown_url(record.notify_url) if record.notify_url else None,
        "recorded_at": record.recorded_at,
        "recorded_by": f"{task} of {by.get('run_id')}" if task else None,
    }


def receipt_rows(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """
    Receipt events as table rows, numbers masked.

    :param events: Newest first.
    """
    return [
        {
            "time": _iso(event.get("timestamp")),
            "recipient": mask_number(str(event["extra"].get("recipient") or "")),
            "status": event["extra"].get("status"),
            "resource_id": event["extra"].get("resource_id") or None,
        }
        for event in events
    ]


def reply_rows(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """
    Reply events as table rows: sender masked, text shortened.

    :param events: Newest first.
    """
    rows = []
    for event in events:
        extra = event["extra"]
        text = str(extra.get("message") or "")
        rows.append(
            {
                "time": _iso(event.get("timestamp")),
                "sender": mask_number(str(extra.get("sender") or "")),
                "message": text if len(text) <= MAX_REPLY_CHARS else text[: MAX_REPLY_CHARS - 1] + "…",
            }
        )
    return rows


def _iso(value: Any) -> str | None:
    return value.isoformat() if isinstance(value, datetime) else (None if value is None else str(value))


__all__ = [
    "ALL_COUNTRIES",
    "CACHE_SECONDS",
    "balances",
    "cached",
    "daily_usage",
    "month_start",
    "orange_usage",
    "receipt_rows",
    "record_view",
    "reply_rows",
    "subscription_view",
    "usage_chart",
]
