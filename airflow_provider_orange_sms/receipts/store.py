"""
Store a delivery receipt as an asset event. The ONE module of this provider that touches Airflow
internals (the metadata DB models and ``asset_manager``); ``tests/test_receipts_store.py`` fails
loudly when Airflow changes what it relies on.

It does what ``POST /api/v2/assets/events`` does (``asset_manager.register_asset_change``: the
event, the DAG runs it queues, the listeners it notifies), plus two things that endpoint does not:

- **the asset row is created when missing** (no DAG declares the asset yet), looked up by name and
  by the uri as ``Asset(...)`` normalises it — a row under the un-normalised uri would be a
  different asset that no DAG sees;
- **repeats are stored once**: a receipt whose ``resource_id``, ``recipient`` and ``status`` equal
  those of an event stored in the last :data:`DEDUP_WINDOW` (:data:`DEDUP_WINDOW_WITHOUT_ID` when
  Orange sent no ``callbackData``) is acknowledged but not stored again.

Race-free across API server workers and hosts: the duplicate check and the insert run in one
transaction that first locks the asset's row (``SELECT … FOR UPDATE`` on PostgreSQL and MySQL, a
no-op ``UPDATE`` of the row on SQLite, which takes SQLite's database write lock). Two workers
handling the same receipt therefore run one after the other, and the second sees the first's event.
A process-wide lock in front keeps a worker's own threads from queueing on the database lock.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from airflow_provider_orange_sms.receipts import ASSET_NAME, ASSET_URI

if TYPE_CHECKING:
    from collections.abc import Callable

    from sqlalchemy.orm import Session

    from airflow_provider_orange_sms.receipts.payload import Receipt

log = logging.getLogger(__name__)

#: How far back a repeat of a receipt is recognised. Orange sends receipts within 24 h of a send.
DEDUP_WINDOW = timedelta(hours=72)
#: The same for receipts without ``callbackData``: recipient + status alone also match a later SMS
#: to the same number, so only close repeats count as one receipt.
DEDUP_WINDOW_WITHOUT_ID = timedelta(minutes=10)
#: Tries when the database is busy or unreachable, before answering 503.
ATTEMPTS = 3

_LOCK = threading.Lock()


class StoreUnavailableError(RuntimeError):
    """The metadata database could not store the receipt; nothing was stored (answer 503)."""


def normalised_uri() -> str:
    """The asset's uri as Airflow stores it (``Asset(...)`` adds a trailing ``/``)."""
    from airflow_provider_orange_sms.receipts import DELIVERY_RECEIPTS

    uri: str = DELIVERY_RECEIPTS.uri
    if DELIVERY_RECEIPTS.name != ASSET_NAME or not uri.startswith(ASSET_URI):  # pragma: no cover
        raise RuntimeError(f"Unexpected asset {DELIVERY_RECEIPTS!r}")
    return uri


def store_receipt(receipt: Receipt, *, now: datetime | None = None) -> bool:
    """
    Store ``receipt`` as one event of the delivery-receipts asset, unless it repeats a stored one.

    Returns True when an event was created, False for a repeat. Raises
    :class:`StoreUnavailableError` when the database failed :data:`ATTEMPTS` times; the transaction
    is rolled back each time, so nothing is half-stored.

    :param receipt: The validated receipt.
    :param now: The time of receipt (defaults to now, UTC).
    """
    from sqlalchemy.exc import IntegrityError, SQLAlchemyError

    received = now or datetime.now(timezone.utc)
    last_error: Exception | None = None
    for attempt in range(1, ATTEMPTS + 1):
        try:
            with _LOCK:
                stored, callbacks = _store_once(receipt, received)
        except IntegrityError as exc:  # another worker created the asset row at the same moment
            last_error = exc
        except SQLAlchemyError as exc:  # busy (SQLite's write lock), unreachable, failed over…
            last_error = exc
            log.warning(
                "Cannot store the delivery receipt for resource id %r (attempt %d of %d): %s",
                receipt.resource_id,
                attempt,
                ATTEMPTS,
                type(exc).__name__,
            )
            if attempt < ATTEMPTS:
                time.sleep(0.05 * 4**attempt)
            continue
        else:
            for callback in callbacks:  # listeners: only once the event is committed
                try:
                    callback()
                except Exception:
                    log.exception("An asset listener failed on a delivery receipt event")
            return stored
    raise StoreUnavailableError(
        f"the metadata database did not store the receipt after {ATTEMPTS} attempts "
        f"({type(last_error).__name__})"
    )


def _store_once(receipt: Receipt, received: datetime) -> tuple[bool, list[Callable[[], None]]]:
    from airflow.utils.session import create_session

    callbacks: list[Callable[[], None]] = []
    with create_session() as session:
        asset_id = _lock_asset(session)
        if _is_repeat(session, asset_id, receipt, received):
            return False, []
        from airflow.models.asset import AssetModel

        asset = session.get(AssetModel, asset_id)
        event = register_event(
            asset, receipt.to_extra(received.isoformat()), session=session, callback_sink=callbacks
        )
        if event is None:
            raise StoreUnavailableError("Airflow did not create the asset event")
        session.commit()
    return True, callbacks


def _lock_asset(session: Session) -> int:
    """Find (or create) the asset's row and lock it until the transaction ends; return its id."""
    from airflow.models.asset import AssetModel
    from sqlalchemy import select, update

    uri = normalised_uri()
    where = (AssetModel.name == ASSET_NAME, AssetModel.uri == uri)
    asset_id = session.scalar(select(AssetModel.id).where(*where))
    if asset_id is None:
        log.info("Creating the asset %s (%s): no DAG has declared it yet", ASSET_NAME, uri)
        asset = AssetModel(name=ASSET_NAME, uri=uri, group="asset")
        session.add(asset)
        session.flush()  # IntegrityError if another worker just created it: the caller retries
        asset_id = asset.id
    if session.get_bind().dialect.name == "sqlite":
        # SQLite ignores FOR UPDATE; a write takes its database lock for the rest of the transaction.
        session.execute(
            update(AssetModel).where(AssetModel.id == asset_id).values(updated_at=AssetModel.updated_at)
        )
    else:
        session.execute(select(AssetModel.id).where(AssetModel.id == asset_id).with_for_update())
    return int(asset_id)


def _is_repeat(session: Session, asset_id: int, receipt: Receipt, received: datetime) -> bool:
    import sqlalchemy as sa
    from airflow.models.asset import AssetEvent
    from sqlalchemy import select

    window = DEDUP_WINDOW if receipt.resource_id else DEDUP_WINDOW_WITHOUT_ID
    # Airflow 3.0 declares the column as a JSON-in-text type without index operators: coerce it.
    extra: Any = sa.type_coerce(AssetEvent.extra, sa.JSON)
    query = (
        select(AssetEvent.id)
        .where(
            AssetEvent.asset_id == asset_id,
            AssetEvent.timestamp >= received - window,
            extra["resource_id"].as_string() == receipt.resource_id,
            extra["recipient"].as_string() == receipt.recipient,
            extra["status"].as_string() == receipt.status,
        )
        .limit(1)
    )
    return session.scalar(query) is not None


def register_event(
    asset: Any, extra: dict[str, Any], *, session: Session, callback_sink: list[Callable[[], None]]
) -> Any:
    """
    Create the asset event through ``asset_manager.register_asset_change``, as the REST API does.

    Listener notifications are deferred into ``callback_sink`` where Airflow supports it (3.3), so
    they run only after the commit.

    :param asset: The ``AssetModel`` row.
    :param extra: The event's ``extra``.
    :param session: The open session (the caller commits).
    :param callback_sink: Receives the notifications to run after the commit.
    """
    import inspect

    from airflow.assets.manager import asset_manager

    kwargs: dict[str, Any] = {"asset": asset, "extra": extra, "session": session}
    parameters = inspect.signature(asset_manager.register_asset_change).parameters
    if "callback_sink" in parameters:
        kwargs["callback_sink"] = callback_sink
    if "source_is_api" in parameters:
        kwargs["source_is_api"] = True  # from outside Airflow, like POST /api/v2/assets/events
    return asset_manager.register_asset_change(**kwargs)
