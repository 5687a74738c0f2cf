"""
Write the opt-out list from the API server: the ONE module of this provider that touches Airflow's
``variable`` table directly (``airflow.models.Variable``); ``tests/integration/db/test_reply_store.py``
fails loudly when Airflow changes what it relies on.

The receiver records a keyword reply in the transaction that stores the reply's event, so both are
committed or neither. ``Variable.set`` cannot be used there: it has no compare-and-set, and a STOP
and a START from one number arriving together must end in the later one's state
(:meth:`~airflow_provider_orange_sms.opt_out.OptOutRecord.supersedes`), whichever transaction
commits last. So the number's row is read with ``SELECT … FOR UPDATE`` (PostgreSQL, MySQL; on
SQLite the transaction already holds the database's write lock, taken by its dedup insert), compared,
and written only when the new record supersedes it. Two first writes for one number race on the
unique key: the loser's insert fails inside a savepoint, and it reads and compares again.

It writes only the number's receiver Variable (:func:`~airflow_provider_orange_sms.opt_out.variable_key`);
the list operators write the other one (:func:`~airflow_provider_orange_sms.opt_out.operator_variable_key`),
which it only reads, to answer :data:`SUPERSEDED` when an operator's decision is later than the reply.

The value is encrypted with the Fernet key like any Variable, so workers read it with
``Variable.get`` (through the execution API) as usual.
"""

from __future__ import annotations

import dataclasses
import logging
from datetime import timezone
from typing import TYPE_CHECKING

from airflow_provider_orange_sms.opt_out import (
    OptOutRecord,
    latest_decision,
    operator_variable_key,
    variable_key,
)

if TYPE_CHECKING:
    from datetime import datetime

    from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

#: The Variable's description, shown in the UI's Variables list.
DESCRIPTION = "Orange SMS opt-out list entry (written by the reply receiver)"
#: Outcome of :func:`record_decision`: the record was written.
WRITTEN = "written"
#: Outcome of :func:`record_decision`: a later decision holds, so the number's state did not change
#: (the record is still written when it outranks the receiver's own: it may outlive the operators' decision).
SUPERSEDED = "superseded"


def record_decision(session: Session, record: OptOutRecord) -> str:
    """
    Store ``record`` as its number's Variable unless the stored record is newer.

    Returns :data:`WRITTEN` or :data:`SUPERSEDED` (a later decision is stored, by a reply or by
    the list operators: the number's state did not change). Inside the caller's transaction, which
    commits.

    A STOP counts against the operators' decisions from when it reached Airflow, and never before a
    removal already stored when it came (the API server's clock and the worker's may differ); a
    repeated STOP older than the stored one moves that one's ``received_at`` to its own delivery.

    :param session: The transaction's session.
    :param record: The decision to record.
    """
    from airflow.models.variable import Variable
    from sqlalchemy import select
    from sqlalchemy.exc import IntegrityError

    key = variable_key(record.number)
    operators_key = operator_variable_key(record.number)
    operators_row = session.scalar(select(Variable).where(Variable.key == operators_key))
    operators = None if operators_row is None else _stored_record(operators_row, operators_key)
    if record.opted_out and operators is not None and not operators.opted_out:
        # This STOP reached Airflow after that removal was stored, whatever the clocks say: it counts
        # from no earlier than the removal (API server and worker clocks may differ).
        record = _known_from(record, operators.counts_from())
    outcome = WRITTEN
    if operators is not None and latest_decision(record, operators) is not record:
        outcome = SUPERSEDED  # still stored below: it may outlive the operators' decision (erase)
    for _ in range(2):
        row = session.scalar(select(Variable).where(Variable.key == key).with_for_update())
        if row is not None:
            stored = _stored_record(row, key)
            if stored is not None and not record.supersedes(stored):
                if record.opted_out and stored.opted_out and record.known_at() > stored.known_at():
                    # A repeated STOP delivered later: the stored one keeps its dateTime, and counts
                    # against the operators' decisions from this later delivery.
                    row.set_val(_known_from(stored, record.known_at()).to_json())
                    session.flush()
                    _forget_cached(key)
                    return outcome
                return SUPERSEDED
            row.set_val(record.to_json())
            session.flush()
            _forget_cached(key)
            return outcome
        try:
            with session.begin_nested():
                session.add(Variable(key=key, val=record.to_json(), description=DESCRIPTION))
        except IntegrityError:
            continue  # another transaction wrote this number's first record: compare with it
        _forget_cached(key)
        return outcome
    raise IntegrityError(f"INSERT {key}", {}, RuntimeError("the Variable row kept changing"))


def _known_from(record: OptOutRecord, moment: datetime) -> OptOutRecord:
    """``record``, known (``received_at``) no earlier than ``moment``."""
    latest = max(record.known_at(), moment)
    return dataclasses.replace(record, received_at=latest.astimezone(timezone.utc).isoformat())


def _stored_record(row: object, key: str) -> OptOutRecord | None:
    """The stored record, or None when the Variable holds something else (it is then replaced)."""
    value = row.get_val()  # type: ignore[attr-defined]
    if value is None:
        return None
    try:
        return OptOutRecord.from_json(value)
    except ValueError:
        log.warning("Variable %s does not hold an opt-out record; taken as none", key)
        return None


def _forget_cached(key: str) -> None:
    """Drop the API server's cached copy of the Variable (``[secrets] use_cache``), if any."""
    try:
        from airflow.sdk import SecretCache

        SecretCache.invalidate_variable(key)
    except Exception:  # the cache is an optimisation; a stale entry expires on its own
        log.debug("Could not invalidate the cached Variable %s", key, exc_info=True)
