"""
Recognise repeated callbacks at a cost that does not grow with history: the ``orange_sms_dedup`` table.

Orange may post the same callback more than once. Each distinct callback is one row of the
provider's own table in Airflow's metadata database, keyed by ``(kind, key_digest)``:

- ``kind``: what the row is about, ``"receipt"`` for delivery receipts, ``"inbound"`` for replies
- ``key_digest``: the SHA-256 of the callback's identifying fields (for a receipt: resource id,
  recipient, status);
- ``seen_at``: when it was stored (Unix seconds), indexed for the sweep.

:func:`claim` is one ``INSERT … ON CONFLICT DO UPDATE … WHERE seen_at < <window start>`` by primary
key: the database settles concurrent repeats (the second waits for the first's transaction, then
finds the row), whatever the number of workers or API servers, and no global lock is taken. The
caller stores the event in the same transaction only when the claim took, so a rollback undoes both.

The table is created on first use, idempotently (``checkfirst``), under a PostgreSQL advisory lock so
that API servers starting together do not race on ``CREATE TABLE``; elsewhere a lost race is
tolerated (the table exists afterwards). Rows older than the retention are deleted by :func:`sweep`
in bounded batches; a row past its window but not yet swept already counts as absent, so sweeping
never changes an answer.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import threading
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import datetime, timedelta

    from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

TABLE_NAME = "orange_sms_dedup"
#: Most rows one :func:`sweep` deletes (plus the rows sharing the last one's second).
SWEEP_BATCH = 2000
#: Key of the PostgreSQL advisory lock that serialises the table's creation across API servers.
_CREATE_LOCK_KEY = 0x6F72616E6765  # "orange"

_ready = threading.Event()


@functools.lru_cache(maxsize=1)
def dedup_table() -> sa.Table:
    """The ``orange_sms_dedup`` table, in Airflow's metadata schema (``[database] sql_alchemy_schema``)."""
    from airflow.models.base import metadata as airflow_metadata

    metadata = sa.MetaData(schema=airflow_metadata.schema)
    return sa.Table(
        TABLE_NAME,
        metadata,
        sa.Column("kind", sa.String(32), primary_key=True),
        sa.Column("key_digest", sa.String(64), primary_key=True),
        sa.Column("seen_at", sa.BigInteger, nullable=False),
        sa.Index(f"{TABLE_NAME}_kind_seen_at", "kind", "seen_at"),
    )


def key_digest(parts: Sequence[str]) -> str:
    """
    The digest identifying a callback: SHA-256 (hex) of its fields, unambiguously joined.

    :param parts: The identifying fields, e.g. ``(resource_id, recipient, status)``.
    """
    return hashlib.sha256(json.dumps(list(parts)).encode()).hexdigest()


def ensure_table(session: Session) -> None:
    """
    Create the table and its index if missing (once per process; safe with several API servers).

    Commits ``session``: call it before the work of a transaction.

    :param session: An open session on Airflow's metadata database.
    """
    if _ready.is_set():
        return
    from sqlalchemy.exc import SQLAlchemyError

    table = dedup_table()
    connection = session.connection()
    try:
        if connection.dialect.name == "postgresql":
            # Two concurrent CREATE TABLE IF NOT EXISTS can still collide on the row type's name.
            session.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _CREATE_LOCK_KEY})
        table.metadata.create_all(connection, checkfirst=True)
        session.commit()
    except SQLAlchemyError:
        session.rollback()
        # Another process created it between our check and our CREATE: fine if it is there now.
        if not sa.inspect(session.connection()).has_table(TABLE_NAME, schema=table.schema):
            raise
        table.metadata.create_all(session.connection(), checkfirst=True)  # its index, if missing
        session.commit()
    _ready.set()


def table_ready() -> bool:
    """Whether this process has created or found the table already."""
    return _ready.is_set()


def forget_table() -> None:
    """Check the table again on next use (after a database error: it may have been dropped)."""
    _ready.clear()


def claim(session: Session, kind: str, parts: Sequence[str], *, now: datetime, window: timedelta) -> bool:
    """
    Record the callback ``(kind, parts)`` as seen at ``now``, unless it was seen within ``window``.

    Returns True when the callback is new (or its last record is older than ``window``): the caller
    stores it in the same transaction. False for a repeat. Inside the caller's transaction; a
    concurrent claim of the same key waits for this transaction to end.

    :param session: The session of the caller's transaction (the caller commits).
    :param kind: What the callback is, e.g. ``"receipt"``.
    :param parts: Its identifying fields.
    :param now: When it arrived.
    :param window: How long a stored callback makes a repeat of it a duplicate.
    """
    table = dedup_table()
    seen_at = int(now.timestamp())
    cutoff = seen_at - int(window.total_seconds())
    values = {"kind": kind, "key_digest": key_digest(parts), "seen_at": seen_at}
    dialect = session.get_bind().dialect.name
    if dialect in ("postgresql", "sqlite"):
        from sqlalchemy.dialects import postgresql, sqlite

        insert: Any = postgresql.insert if dialect == "postgresql" else sqlite.insert
        statement = insert(table).values(**values)
        statement = statement.on_conflict_do_update(
            index_elements=[table.c.kind, table.c.key_digest],
            set_={"seen_at": statement.excluded.seen_at},
            where=table.c.seen_at < cutoff,
        )
        return _rowcount(session.execute(statement)) == 1
    return _claim_portably(session, values, cutoff)


def _claim_portably(session: Session, values: dict[str, object], cutoff: int) -> bool:
    """:func:`claim` for other databases (MySQL): an insert in a savepoint, else an update by key."""
    from sqlalchemy.exc import IntegrityError

    table = dedup_table()
    try:
        with session.begin_nested():
            session.execute(sa.insert(table).values(**values))
        return True
    except IntegrityError:
        pass
    expired = session.execute(
        sa.update(table)
        .where(
            table.c.kind == values["kind"],
            table.c.key_digest == values["key_digest"],
            table.c.seen_at < cutoff,
        )
        .values(seen_at=values["seen_at"])
    )
    return _rowcount(expired) == 1


def sweep(session: Session, kind: str, *, before: datetime, batch: int = SWEEP_BATCH) -> int:
    """
    Delete up to about ``batch`` rows of ``kind`` seen before ``before``, oldest first.

    Returns the number deleted; call again while it returns ``batch`` or more. Bounded by the
    index on ``(kind, seen_at)``: the boundary is the ``batch``-th oldest expired row, and rows
    sharing its second go with it (so each call makes progress).

    :param session: An open session (the caller commits).
    :param kind: Which rows, e.g. ``"receipt"``.
    :param before: Rows seen before this instant are deleted.
    :param batch: Most rows to delete (plus ties).
    """
    table = dedup_table()
    cutoff = int(before.timestamp())
    boundary = session.scalar(
        sa.select(table.c.seen_at)
        .where(table.c.kind == kind, table.c.seen_at < cutoff)
        .order_by(table.c.seen_at)
        .offset(batch - 1)
        .limit(1)
    )
    condition = table.c.seen_at <= boundary if boundary is not None else table.c.seen_at < cutoff
    result = session.execute(sa.delete(table).where(table.c.kind == kind, condition))
    return _rowcount(result)


def _rowcount(result: Any) -> int:
    """Rows an INSERT/UPDATE/DELETE changed (a ``CursorResult``; typed as ``Result`` by sessions)."""
    return int(result.rowcount or 0)
