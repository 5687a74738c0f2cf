"""
Store a delivery receipt as an asset event. The receiver's fence around Airflow's asset models and
``asset_manager`` (the other fences are listed in ``tests/unit/test_airflow_internals.py``);
``tests/unit/receipts/test_receipts_store.py`` fails loudly when Airflow changes what it relies on.

It does what ``POST /api/v2/assets/events`` does (``asset_manager.register_asset_change``: the
event, the DAG runs it queues, the listeners it notifies), plus three things that endpoint does not:

- **the asset row is created when missing** (no DAG declares the asset yet), looked up by name and
  by the uri as ``Asset(...)`` normalises it — a row under the un-normalised uri would be a
  different asset that no DAG sees;
- **repeats are stored once**: a receipt whose ``resource_id``, ``recipient`` and ``status`` were
  stored in the last ``[orange_sms] delivery_receipts_dedup_hours`` (:data:`WINDOW_WITHOUT_ID` when
  Orange sent no ``callbackData``) is acknowledged but not stored again. The check is one insert by
  primary key into the provider's ``orange_sms_dedup`` table (:mod:`.dedup`), in the transaction
  that registers the event, so its cost does not grow with the number of stored receipts and
  concurrent repeats are settled by the database, across workers and API servers;
- **bounded waits**: each transaction waits at most :data:`LOCK_TIMEOUT` for a lock
  (PostgreSQL ``lock_timeout``, SQLite's busy timeout) and :data:`STATEMENT_TIMEOUT` for a
  statement (PostgreSQL), and the whole store gives up after about :data:`MAX_WAIT`: the receiver
  then answers 503 and Orange retries.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import logging
import math
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, TypeVar

from airflow_provider_orange_sms.receipts import ASSET_NAME, ASSET_URI, DEFAULT_DEDUP_HOURS, dedup
from airflow_provider_orange_sms.receipts.quiet_log import OnceLogger, RepeatLimiter
from airflow_provider_orange_sms.settings import DELIVERY_RECEIPTS_DEDUP_HOURS, SECTION

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from sqlalchemy.orm import Session

    from airflow_provider_orange_sms.receipts.payload import Receipt

log = logging.getLogger(__name__)

#: The ``orange_sms_dedup`` kind of delivery receipts.
KIND = "receipt"
#: The ``orange_sms_dedup`` kind of replies (the SMS subscribers send to the account).
INBOUND_KIND = "inbound"
#: The kinds whose expired rows the sweep deletes (both kept for the same retention).
SWEPT_KINDS = (KIND, INBOUND_KIND)
#: The shortest accepted retention: Orange's receipt window.
MIN_DEDUP_HOURS = 24.0
#: The same for receipts without ``callbackData``: recipient + status alone also match a later SMS
#: to the same number, so only close repeats count as one receipt.
WINDOW_WITHOUT_ID = timedelta(minutes=10)
#: Longest wait for a lock held by another transaction (then 503).
LOCK_TIMEOUT = timedelta(seconds=2)
#: Longest run of one statement (PostgreSQL).
STATEMENT_TIMEOUT = timedelta(seconds=3)
#: No further try starts once a try could end later than this after the receipt arrived.
MAX_WAIT = timedelta(seconds=4)
#: Tries when the database is busy or unreachable, before answering 503.
ATTEMPTS = 3
#: Seconds between two sweeps of expired ``orange_sms_dedup`` rows by one process.
SWEEP_INTERVAL = 60.0

#: On SQLite, the longest pause after a write during which this process writes nothing more.
SQLITE_PAUSE_MAX = timedelta(milliseconds=50)

# SQLite has one writer: this process's threads queue here rather than on the database's lock.
_SQLITE_LOCK = threading.Lock()
_sweep_lock = threading.Lock()
_last_sweep = -math.inf
_failures = RepeatLimiter(60.0)
T = TypeVar("T")


class StoreUnavailableError(RuntimeError):
    """The metadata database could not store the receipt; nothing was stored (answer 503)."""


@functools.lru_cache(maxsize=4)
def normalised_uri(name: str = ASSET_NAME, uri: str = ASSET_URI) -> str:
    """
    An asset's uri as Airflow stores it (``Asset(...)`` adds a trailing ``/``).

    :param name: The asset's name (default: the delivery receipts').
    :param uri: Its uri as written.
    """
    from airflow.sdk import Asset

    stored: str = Asset(name=name, uri=uri).uri
    if not stored.startswith(uri):  # pragma: no cover
        raise RuntimeError(f"Unexpected uri {stored!r} for the asset {name!r}")
    return stored


def dedup_retention() -> timedelta:
    """
    ``[orange_sms] delivery_receipts_dedup_hours``: how long repeats of a receipt are recognised,
    and how long its ``orange_sms_dedup`` row is kept.

    Raises :class:`StoreUnavailableError` naming the value when it is not a number of hours of at
    least :data:`MIN_DEDUP_HOURS` (receipts are then answered 503 until it is fixed: none is lost).
    """
    from airflow.configuration import conf

    raw = conf.get(SECTION, DELIVERY_RECEIPTS_DEDUP_HOURS, fallback="") or ""
    return _parse_retention(raw)


@functools.lru_cache(maxsize=4)
def _parse_retention(raw: str) -> timedelta:
    if not raw.strip():
        return timedelta(hours=DEFAULT_DEDUP_HOURS)
    try:
        hours = float(raw)
    except ValueError:
        hours = math.nan
    if not hours >= MIN_DEDUP_HOURS or math.isinf(hours):
        raise StoreUnavailableError(
            f"invalid [{SECTION}] delivery_receipts_dedup_hours {raw!r}: expected a number of hours "
            f"of at least {MIN_DEDUP_HOURS:g} (Orange sends receipts within 24 h)"
        )
    return timedelta(hours=hours)


def store_receipt(receipt: Receipt, *, now: datetime | None = None) -> bool:
    """
    Store ``receipt`` as one event of the delivery-receipts asset, unless it repeats a stored one.

    Returns True when an event was created, False for a repeat. Raises
    :class:`StoreUnavailableError` when the database failed (up to :data:`ATTEMPTS` tries within
    :data:`MAX_WAIT`); the transaction is rolled back each time, so nothing is half-stored.

    :param receipt: The validated receipt.
    :param now: The time of receipt (defaults to now, UTC).
    """
    received = now or datetime.now(timezone.utc)
    retention = dedup_retention()
    window = retention if receipt.resource_id else WINDOW_WITHOUT_ID

    def work(session: Session, callbacks: list[Callable[[], None]]) -> bool:
        parts = (receipt.resource_id, receipt.recipient, receipt.status)
        if not dedup.claim(session, KIND, parts, now=received, window=window):
            return False
        add_event(session, ASSET_NAME, ASSET_URI, receipt.to_extra(received.isoformat()), callbacks)
        return True

    return run_in_transaction(work, "delivery receipt", retention)


def run_in_transaction(
    work: Callable[[Session, list[Callable[[], None]]], T], what: str, retention: timedelta
) -> T:
    """
    Run ``work(session, callbacks)`` in one transaction with bounded waits, retried on database
    errors within :data:`MAX_WAIT`, then run the listener ``callbacks`` it collected (once committed)
    and sweep expired ``orange_sms_dedup`` rows when due.

    Raises :class:`StoreUnavailableError` when no try committed; each failed try is rolled back.

    :param work: The transaction's work; returns the caller's result.
    :param what: What is stored, for messages ("delivery receipt").
    :param retention: How long dedup rows are kept (for the sweep).
    """
    from sqlalchemy.exc import IntegrityError, SQLAlchemyError

    started = time.monotonic()
    deadline = started + MAX_WAIT.total_seconds()
    last_error: Exception | None = None
    for attempt in range(1, ATTEMPTS + 1):
        try:
            result, callbacks = _transaction_once(work, deadline)
        except IntegrityError as exc:  # another worker created the same row (asset, Variable) meanwhile
            last_error = exc
            continue
        except SQLAlchemyError as exc:  # lock timeout, busy, unreachable, failed over…
            last_error = exc
            dedup.forget_table()  # it may have been dropped (airflow db reset)
            _warn_failure(exc, attempt, what)
            backoff = 0.05 * 4**attempt
            if time.monotonic() + backoff + LOCK_TIMEOUT.total_seconds() > deadline:
                break
            time.sleep(backoff)
            continue
        else:
            for callback in callbacks:  # listeners: only once the event is committed
                try:
                    callback()
                except Exception:
                    log.exception("An asset listener failed on a %s event", what)
            _sweep_if_due(retention)
            return result
    raise StoreUnavailableError(
        f"the metadata database did not store the {what} ({type(last_error).__name__}, "
        f"{time.monotonic() - started:.1f} s)"
    )


def _warn_failure(exc: Exception, attempt: int, what: str = "delivery receipt") -> None:
    skipped = _failures.allow(type(exc).__name__)
    if skipped is None:
        return
    log.warning(
        "Cannot store a %s (attempt %d of %d): %s: %s%s",
        what,
        attempt,
        ATTEMPTS,
        type(exc).__name__,
        str(getattr(exc, "orig", exc)).strip().splitlines()[0][:200] if str(exc).strip() else "",
        f" ({skipped} more such failures in the last minute not logged)" if skipped else "",
    )


def _transaction_once(
    work: Callable[[Session, list[Callable[[], None]]], T], deadline: float
) -> tuple[T, list[Callable[[], None]]]:
    from airflow.utils.session import create_session

    callbacks: list[Callable[[], None]] = []
    with _one_writer(deadline):
        if not dedup.table_ready():
            with create_session() as session, _bounded_waits(session):
                dedup.ensure_table(session)
        with create_session() as session:
            with _bounded_waits(session):
                result = work(session, callbacks)
            session.commit()
    return result, callbacks


def add_event(
    session: Session, name: str, uri: str, extra: dict[str, Any], callbacks: list[Callable[[], None]]
) -> None:
    """
    Register one event of the asset ``name`` in ``session``, creating the asset's row if missing.

    :param session: The transaction's session (the caller commits).
    :param name: The asset's name.
    :param uri: Its uri as written in ``Asset(...)`` (normalised here).
    :param extra: The event's ``extra``.
    :param callbacks: Receives the listener notifications to run after the commit.
    """
    # Airflow looks the asset's row up by name and uri: no need to load it first.
    key = AssetKey(name, normalised_uri(name, uri))
    event = register_event(key, extra, session=session, callback_sink=callbacks)
    if event is None:  # no row yet (no DAG declares the asset): create it, then again
        _create_asset(session, key)
        event = register_event(key, extra, session=session, callback_sink=callbacks)
    if event is None:
        raise StoreUnavailableError("Airflow did not create the asset event")


@contextlib.contextmanager
def _one_writer(deadline: float) -> Iterator[None]:
    """
    On SQLite, hold the process's writer lock (waiting at most until ``deadline``), then keep it for
    as long again as the write took (at most :data:`SQLITE_PAUSE_MAX`).

    SQLite has one writer for the whole database, and a writer that finds it taken backs off for
    longer and longer (its busy handler sleeps up to 100 ms at a time): receipts stored back to back
    would keep the scheduler's and the tasks' writes (the execution API's) waiting. The pause leaves
    the database to them at least half the time; receipts are answered a little later.
    """
    from airflow import settings

    engine = getattr(settings, "engine", None)
    if engine is None or engine.dialect.name != "sqlite":
        yield
        return
    from sqlalchemy.exc import OperationalError

    if not _SQLITE_LOCK.acquire(timeout=max(0.0, deadline - time.monotonic())):
        raise OperationalError("(this process's SQLite writer lock)", {}, TimeoutError("busy"))
    started = time.monotonic()
    try:
        yield
    finally:
        try:
            time.sleep(min(time.monotonic() - started, SQLITE_PAUSE_MAX.total_seconds()))
        finally:
            _SQLITE_LOCK.release()


@contextlib.contextmanager
def _bounded_waits(session: Session) -> Iterator[None]:
    """
    Bound lock waits for the work inside: PostgreSQL ``SET LOCAL`` lock and statement timeouts
    (they end with the transaction); on SQLite a busy timeout on the connection, restored before
    the caller commits (the pooled connection is Airflow's too).
    """
    import sqlalchemy as sa

    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        session.execute(
            sa.text(
                "SELECT set_config('lock_timeout', :lock, true), set_config('statement_timeout', :run, true)"
            ),
            {
                "lock": f"{int(LOCK_TIMEOUT.total_seconds() * 1000)}ms",
                "run": f"{int(STATEMENT_TIMEOUT.total_seconds() * 1000)}ms",
            },
        )
    if dialect != "sqlite":
        yield
        return
    previous = session.execute(sa.text("PRAGMA busy_timeout")).scalar()
    session.execute(sa.text(f"PRAGMA busy_timeout = {int(LOCK_TIMEOUT.total_seconds() * 1000)}"))
    try:
        yield
    finally:
        with contextlib.suppress(Exception):
            session.execute(sa.text(f"PRAGMA busy_timeout = {int(previous or 5000)}"))


@dataclass(frozen=True)
class AssetKey:
    """
    What ``register_asset_change`` needs to find the asset's row: its name and stored uri.

    :param name: The asset's name.
    :param uri: Its uri as Airflow stores it.
    """

    name: str
    uri: str


def _create_asset(session: Session, key: AssetKey) -> None:
    """Create the asset's row: no DAG has declared the asset yet."""
    from airflow.models.asset import AssetModel
    from sqlalchemy import select

    where = (AssetModel.name == key.name, AssetModel.uri == key.uri)
    if session.scalar(select(AssetModel.id).where(*where)) is not None:
        return
    log.info("Creating the asset %s (%s): no DAG has declared it yet", key.name, key.uri)
    session.add(AssetModel(name=key.name, uri=key.uri, group="asset"))
    session.flush()  # IntegrityError if another worker just created it: the caller retries


def _sweep_if_due(retention: timedelta) -> None:
    """Start a sweep of expired ``orange_sms_dedup`` rows in the background, once a minute."""
    global _last_sweep
    now = time.monotonic()
    if now - _last_sweep < SWEEP_INTERVAL or not _sweep_lock.acquire(blocking=False):
        return
    _last_sweep = now
    threading.Thread(target=_sweep, args=(retention,), name="orange-sms-dedup-sweep", daemon=True).start()


def _sweep(retention: timedelta) -> None:
    """Delete expired rows in batches of :data:`dedup.SWEEP_BATCH` (each its own short transaction)."""
    global _last_sweep
    from airflow.utils.session import create_session

    try:
        before = datetime.now(timezone.utc) - retention
        for _ in range(10):
            deadline = time.monotonic() + MAX_WAIT.total_seconds()
            deleted = 0
            for kind in SWEPT_KINDS:
                with _one_writer(deadline), create_session() as session, _bounded_waits(session):
                    deleted = max(deleted, dedup.sweep(session, kind, before=before))
            if deleted < dedup.SWEEP_BATCH:
                return
        _last_sweep = -math.inf  # more to delete: go on after the next receipt
    except Exception as exc:
        _warn_failure(exc, 1)
    finally:
        _sweep_lock.release()


@functools.lru_cache(maxsize=1)
def _quiet_manager_class(manager_class: Any) -> Any:
    """
    A subclass of the configured asset manager class whose "Emitting event for inactive AssetModel"
    warning is logged once per process: Airflow logs it for every event of an asset no DAG declares.
    """
    return type(
        "OrangeSMSReceiptAssetManager",
        (manager_class,),
        {
            "_log": OnceLogger(
                manager_class.logger(),
                ("Emitting event for inactive AssetModel", "AssetModel %s not found"),
            )
        },
    )


def register_event(
    asset: Any, extra: dict[str, Any], *, session: Session, callback_sink: list[Callable[[], None]]
) -> Any:
    """
    Create the asset event through ``asset_manager.register_asset_change``, as the REST API does.

    Listener notifications are deferred into ``callback_sink`` where Airflow supports it (3.3), so
    they run only after the commit.

    :param asset: The asset: an ``AssetModel`` row or an :class:`AssetKey`.
    :param extra: The event's ``extra``.
    :param session: The open session (the caller commits).
    :param callback_sink: Receives the notifications to run after the commit.
    """
    register, with_sink, from_api = _registration()
    kwargs: dict[str, Any] = {"asset": asset, "extra": extra, "session": session}
    if with_sink:
        kwargs["callback_sink"] = callback_sink
    if from_api:
        kwargs["source_is_api"] = True  # from outside Airflow, like POST /api/v2/assets/events
    return register(**kwargs)


_registration_cache: dict[Any, tuple[Callable[..., Any], bool, bool]] = {}


def _registration() -> tuple[Callable[..., Any], bool, bool]:
    """
    ``register_asset_change`` of the configured asset manager (its quiet subclass when it is a
    classmethod), and whether it takes ``callback_sink`` and ``source_is_api``: worked out once per
    manager, not per receipt (``inspect.signature`` is not free).
    """
    from airflow.assets.manager import asset_manager

    manager_class: Any = type(asset_manager)
    cached = _registration_cache.get(manager_class)
    if cached is not None:
        return cached
    from sqlalchemy.orm import configure_mappers

    # Airflow 3.0's register_asset_change names backref attributes (AssetModel.aliases) that exist
    # only once the mappers are configured, which a first ORM query would have done.
    configure_mappers()
    register = asset_manager.register_asset_change
    if isinstance(inspect.getattr_static(manager_class, "register_asset_change"), classmethod):
        register = _quiet_manager_class(manager_class).register_asset_change
    parameters = inspect.signature(register).parameters
    cached = (register, "callback_sink" in parameters, "source_is_api" in parameters)
    _registration_cache[manager_class] = cached
    return cached
