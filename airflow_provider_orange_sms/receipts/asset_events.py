"""Reading an asset's events from a sensor, shared by ``DeliveryReceiptSensor`` and ``SMSReplySensor``.

Each poke fetches only the events newer than the last one seen, in pages, afresh through the Task
SDK (a sensor that re-read the same accessor would see its per-try cache: stale data). Events of one
timestamp are told apart by id, so none is counted twice and none is skipped.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow.sdk import Asset, Context

#: Events fetched per request to the execution API.
PAGE_SIZE = 500


def to_datetime(value: Any) -> datetime:
    """
    Return ``value`` (a datetime or an ISO 8601 string) as an aware datetime (UTC when naive).

    :param value: The ``since`` argument, or an event's timestamp.
    :raises ValueError: Naming the value, when it is neither.
    """
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(
                f"Invalid since {value!r}: expected an ISO 8601 date and time such as "
                "2026-01-05T09:00:00+00:00"
            ) from None
    else:
        raise ValueError(f"Invalid since {value!r}: expected a datetime or an ISO 8601 string")
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def earliest_run_moment(context: Context, names: Sequence[str]) -> datetime | None:
    """
    Return the earliest of the DAG run's ``names`` moments (e.g. ``start_date``, ``run_after``), if any.

    :param context: The task context.
    :param names: Attributes of the DAG run to consider.
    """
    dag_run = context.get("dag_run")
    moments = [getattr(dag_run, name, None) for name in names]
    candidates = [to_datetime(m) for m in moments if isinstance(m, (datetime, str)) and m]
    return min(candidates) if candidates else None


class AssetEventReader:
    """
    The events of one asset, each returned once, oldest first, across the pokes of one try.

    :param asset: The asset whose events are read (an inlet of the sensor).
    """

    def __init__(self, asset: Asset) -> None:
        self.asset = asset
        self.watermark: datetime | None = None
        self.seen_at_watermark: set[int] = set()

    def new_events(self, context: Context, since: datetime) -> list[Any]:
        """
        Return the events newer than the last seen (from ``since`` on the first call), ascending.

        :param context: The task context (its ``inlet_events``).
        :param since: Where the first read starts.
        """
        after = self.watermark or since
        page_size = PAGE_SIZE
        fresh: list[Any] = []
        while True:
            # after()/limit() reset the accessor's per-try cache: every call is a real fetch.
            accessor = context["inlet_events"][self.asset]
            if not hasattr(accessor, "after"):
                # Airflow 3.0: a fresh list of every event of the asset on each lookup; no filters.
                listed = sorted(accessor, key=lambda e: (to_datetime(e.timestamp), e.id))
                page = [e for e in listed if to_datetime(e.timestamp) >= after]
                page_size = len(page) + 1
            else:
                page = list(accessor.ascending(True).after(after.isoformat()).limit(page_size))
            new = [e for e in page if e.id not in self.seen_at_watermark]
            for event in new:
                stamp = to_datetime(event.timestamp)
                if self.watermark is None or stamp > self.watermark:
                    self.watermark = stamp
                    self.seen_at_watermark = set()
                self.seen_at_watermark.add(event.id)
            fresh.extend(new)
            if len(page) < page_size:
                return fresh
            if not new:  # a full page of one timestamp, all seen: widen the page
                page_size *= 2
            after = self.watermark or after
