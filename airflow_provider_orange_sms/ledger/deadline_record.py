"""The record of one missed deadline's SMS: who may have been texted, kept in an Airflow Variable.

A Deadline Alert's callback runs in the triggerer, with no task instance, so the sent ledger (keyed
by task instance) cannot serve it. A triggerer killed after a request left is restarted, and its
triggers (the callback among them) run again; in a high-availability setup another triggerer takes
them over once the first stops heart-beating. The record, one Variable per deadline (Airflow's
deadline id), makes that second run text nobody twice:

1. It is read first: a recipient whose entry says the SMS is ``in_flight``, ``sent`` or
   ``uncertain`` is never texted again (an ``in_flight`` left by a killed run means "may have been
   sent"). ``failed`` (Orange certainly did not take it) may be tried again.
2. A run *claims* the record before its first send: it writes its own owner id, waits
   :data:`CLAIM_SETTLE` seconds and reads the record back; only the run whose id is still there goes
   on (Fischer's mutual exclusion: a Variable write has no compare-and-set, but every run that read
   the record before this write has written its own claim within that time, and the last writer
   wins). The wait is at least :data:`CLAIM_SETTLE` and twice as long as the claim's own write
   took. A run that lost says so and sends nothing.
3. Right before each request leaves, the owner checks that the record is still its own, then writes
   the recipient ``in_flight``; its outcome, ``sent`` (with Orange's resource id), ``uncertain`` or
   ``failed``, goes with the next recipient's write, or with ``done`` at the end.
4. A run that finds the record owned by a run that is not done and wrote within
   :data:`OWNER_SILENCE` seconds, or that lost the claim, waits for the owner's ``done`` and reports
   its outcome (Airflow ends the callback with whichever run answers first). If the owner writes nothing for
   :data:`OWNER_SILENCE` seconds (its triggerer died), the waiting run claims the record and texts
   whoever is left; the owner, if it was only slow, sees the new owner before its next send and
   stops.

Records are kept :data:`RETENTION` after their last write; each run that finished sending deletes a
few of the oldest (:meth:`DeadlineRecord.sweep`, on Airflow 3.3, which can list Variables).

Each Variable read or write is one round trip to the triggerer's supervisor, which answers once per
loop (a fraction of a second, seconds on a loaded database): the record costs the first SMS three of
them and the claim's settle.

A triggerer cannot reach the metadata database (Airflow blocks it in trigger code); Variables go
through the triggerer's supervisor, the Task SDK's own route.

The shape of the context Airflow gives a deadline's callback (``deadline.id``, ``dag_run``) is read
here only (:meth:`DeadlineRecord.for_context`); its guards are Airflow's own ``CallbackTrigger``
running the notifier in tests/unit/notifications/test_deadline_notifier.py and a real scheduler and
triggerer in tests/integration/processes/test_deadline_alerts.py.
"""

from __future__ import annotations

import logging
import time
import uuid
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from airflow_provider_orange_sms.ledger.ledger_stores import VariableLedgerStore
from airflow_provider_orange_sms.ledger.sent_ledger import FAILED, IN_FLIGHT, SENT, UNCERTAIN

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from airflow_provider_orange_sms.ledger.ledger_stores import LedgerStore

__all__ = ["CLAIM_SETTLE", "DeadlineRecord", "DeadlineRecordSupersededError", "deadline_record_key"]

log = logging.getLogger(__name__)

#: Variable name prefix of the records (one per missed deadline).
KEY_PREFIX = "orange_sms_deadline_"
#: Seconds a claim is left to settle before it is read back: far above the time between another
#: run's read of the record and its own write landing (one Variable write).
CLAIM_SETTLE = 1.0
#: Seconds after a claim is read back during which its first send skips a second look.
FRESH_CLAIM = 5.0
#: Seconds without a write after which the record's owner counts as gone (its triggerer died): the
#: next run claims the record and texts whoever is left. A live owner writes before every send.
OWNER_SILENCE = 30.0
#: How long a record is kept after its last write.
RETENTION = timedelta(days=7)
#: The most records one finished run reads to delete old ones.
SWEEP_LIMIT = 5
#: Statuses after which a recipient is never texted again for this deadline.
MAY_HAVE_BEEN_SENT = frozenset({IN_FLIGHT, SENT, UNCERTAIN})


def _silence(record: Mapping[str, Any]) -> float:
    """Seconds since ``record`` was last written (:data:`OWNER_SILENCE` when it does not say)."""
    try:
        updated = datetime.fromisoformat(str(record.get("updated_at")))
        return (datetime.now(timezone.utc) - updated).total_seconds()
    except (TypeError, ValueError):
        return OWNER_SILENCE


class DeadlineRecordSupersededError(RuntimeError):
    """Another run (a second triggerer) claimed the record: this one must not send."""


def deadline_record_key(deadline_id: str) -> str:
    """
    The Variable holding the record of deadline ``deadline_id``.

    :param deadline_id: Airflow's id of the deadline (a UUID; ``context["deadline"]["id"]``).
    :raises ValueError: When ``deadline_id`` is not a UUID.
    """
    try:
        return KEY_PREFIX + uuid.UUID(str(deadline_id)).hex
    except ValueError:
        raise ValueError(f"Invalid deadline id {deadline_id!r}: expected Airflow's deadline UUID") from None


class DeadlineRecord:
    """
    The record of the SMS sent for one missed deadline (see the module's docstring).

    :param deadline_id: Airflow's id of the deadline.
    :param about: What the record describes (DAG id, run id, deadline time), stored beside the entries
        for whoever reads the Variable.
    :param store: Where the record lives: Airflow Variables by default.
    :param settle: Seconds a claim settles before it is read back (:data:`CLAIM_SETTLE` by default).
    :param sleep: How to wait (tests replace it).
    """

    def __init__(
        self,
        deadline_id: str,
        about: Mapping[str, Any] | None = None,
        *,
        store: LedgerStore | None = None,
        settle: float | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.key = deadline_record_key(deadline_id)
        self.deadline_id = str(deadline_id)
        self.about = dict(about or {})
        self.store: LedgerStore = store if store is not None else VariableLedgerStore()
        self.settle = CLAIM_SETTLE if settle is None else settle
        self.sleep = sleep
        #: This run's owner id, written by :meth:`claim`.
        self.owner = uuid.uuid4().hex
        self._entries: dict[str, dict[str, Any]] = {}
        self._verified_at = float("-inf")
        self._unwritten = False
        self._done = False
        self._found: dict[str, Any] | None = None
        #: Whether another run owns the record (see :meth:`claim` and :meth:`owner_outcome`).
        self.lost = False

    @classmethod
    def for_context(cls, context: Mapping[str, Any], **kwargs: Any) -> DeadlineRecord | None:
        """
        The record of the deadline a Deadline Alert's callback runs for, ``None`` for any other callback.

        :param context: The callback's context (Airflow passes ``deadline`` and ``dag_run``).
        :param kwargs: Passed to the constructor.
        """
        deadline = context.get("deadline")
        if not isinstance(deadline, dict) or not deadline.get("id"):
            return None
        dag_run = context.get("dag_run")
        about: dict[str, Any] = {"deadline_time": str(deadline.get("deadline_time", ""))}
        if isinstance(dag_run, dict):
            run_id = dag_run.get("dag_run_id") or dag_run.get("run_id")
            about.update(dag_id=dag_run.get("dag_id"), run_id=run_id)
        return cls(str(deadline["id"]), about, **kwargs)

    # -- reading ---------------------------------------------------------------------------------

    def _read(self) -> dict[str, Any]:
        value = self.store.get(self.key)
        if value is None:
            return {}
        if not isinstance(value, dict) or not isinstance(value.get("recipients", {}), dict):
            raise ValueError(f"Variable {self.key} is not a deadline record: {str(value)[:200]!r}")
        return value

    def earlier(self, address: str) -> str | None:
        """
        What an earlier run recorded for ``address`` when it may have been texted, else ``None``.

        :param address: Normalised address (``tel:+…``).
        """
        status = self._entries.get(address, {}).get("status")
        return status if status in MAY_HAVE_BEEN_SENT else None

    # -- writing ---------------------------------------------------------------------------------

    def _write(self, value: dict[str, Any]) -> None:
        self.store.set(
            self.key,
            value,
            description=f"Orange SMS sent for missed deadline {self.deadline_id} "
            f"({self.about.get('dag_id') or 'unknown DAG'})",
        )

    def _value(self) -> dict[str, Any]:
        return {
            **self.about,
            "deadline_id": self.deadline_id,
            "owner": self.owner,
            "done": self._done,
            "updated_at": datetime.now(timezone.utc).isoformat(),
            "recipients": self._entries,
        }

    def load(self) -> None:
        """
        Read the record (:meth:`claim` does it when not done before; reading it early, beside the
        connection, spares the first SMS a round trip).

        :raises Exception: When the record cannot be read.
        """
        self._found = self._read()

    def claim(self, addresses: list[str], meanwhile: Callable[[], None] | None = None) -> bool:
        """
        Claim the record; ``False`` when nothing is left to send, or when another run owns it (then
        :attr:`lost` is true: see :meth:`owner_outcome`).

        :param addresses: The recipients this run would text (normalised).
        :param meanwhile: Work to do while the claim settles (e.g. the opt-out reads).
        :raises Exception: When the record cannot be read or written (then nothing is sent).
        """
        found = self._found if self._found is not None else self._read()
        self._found = None
        self._entries = {k: dict(v) for k, v in found.get("recipients", {}).items()}
        if found and all(self.earlier(a) for a in addresses):
            log.info("Deadline %s: every recipient was already texted by an earlier run", self.deadline_id)
            return False
        if found.get("owner") and not found.get("done") and _silence(found) < OWNER_SILENCE:
            return self._lose()
        started = time.monotonic()
        self._write(self._value())
        # Another run's write takes about as long as this one did: leave it twice that to land.
        settle = max(self.settle, 2 * (time.monotonic() - started))
        started = time.monotonic()
        if meanwhile is not None:
            meanwhile()
        self.sleep(max(0.0, settle - (time.monotonic() - started)))
        settled = self._read()
        if settled.get("owner") != self.owner:
            return self._lose()
        self._entries = {k: dict(v) for k, v in settled.get("recipients", {}).items()}
        self._verified_at = time.monotonic()
        return True

    def _lose(self) -> bool:
        log.warning(
            "Deadline %s: another run (a second triggerer) is sending this notification; waiting for it",
            self.deadline_id,
        )
        self.lost = True
        return False

    def before_send(self, address: str) -> Callable[[], None]:
        """
        What to call right before the request to ``address`` leaves: check the claim, write ``in_flight``.

        :param address: Normalised address (``tel:+…``).
        """

        def in_flight() -> None:
            # Right after the claim was read back, no other run can have taken it over (a takeover
            # waits for OWNER_SILENCE): the first send spares a round trip.
            fresh = time.monotonic() - self._verified_at < FRESH_CLAIM
            if not fresh and self._read().get("owner") != self.owner:
                raise DeadlineRecordSupersededError(
                    f"deadline {self.deadline_id}: another run took the record over before {address}"
                )
            self._verified_at = float("-inf")
            self._entries[address] = {"status": IN_FLIGHT}
            self._write(self._value())
            self._unwritten = False

        return in_flight

    def outcome(self, address: str, status: str, resource_id: str | None = None) -> None:
        """
        Note how the send to ``address`` ended (after :meth:`before_send` ran for it); it is written
        with the next recipient's ``in_flight`` entry, or by :meth:`finish`. Until then the recipient
        reads ``in_flight``: never texted again either way.

        :param address: Normalised address.
        :param status: ``sent``, ``uncertain`` or ``failed``.
        :param resource_id: Orange's id of the SMS when ``sent``.
        """
        if status not in (SENT, UNCERTAIN, FAILED):
            raise ValueError(f"Invalid outcome {status!r}")
        entry: dict[str, Any] = {"status": status}
        if resource_id is not None:
            entry["resource_id"] = resource_id
        self._entries[address] = entry
        self._unwritten = True

    def finish(self) -> None:
        """Write the outcomes not written yet, and that this run is done."""
        self._done = True
        self._write(self._value())
        self._unwritten = False

    def owner_outcome(self) -> dict[str, dict[str, Any]] | None:
        """
        For a run that lost its claim: the entries once the owner is done; ``None`` while it is not.

        When the owner has written nothing for :data:`OWNER_SILENCE` seconds (its triggerer died),
        this run claims the record in its place and sends what is left (:attr:`lost` turns false).

        :raises Exception: When the record cannot be read.
        """
        current = self._read()
        if current.get("done"):
            return {k: dict(v) for k, v in current.get("recipients", {}).items()}
        silence = _silence(current)
        if silence >= OWNER_SILENCE:
            log.warning(
                "Deadline %s: the run sending this notification wrote nothing for %.0f s; taking over",
                self.deadline_id,
                silence,
            )
            self.lost = False
        return None

    def sweep(self, retention: timedelta = RETENTION, limit: int = SWEEP_LIMIT) -> int:
        """
        Delete the oldest records untouched for ``retention`` (``limit`` at most).

        Deadline ids are time-ordered (UUID7), so the oldest records come first; the sweep stops at
        the first one still kept. Needs a store that lists keys (Airflow 3.3's ``Variable.keys``).

        :param retention: How long a record is kept after its last write.
        :param limit: The most records read.
        :return: How many were deleted.
        """
        keys = self.store.keys(KEY_PREFIX)
        removed = 0
        for key in sorted(keys or [])[:limit]:
            if key == self.key:
                continue
            value = self.store.get(key)
            if (
                not isinstance(value, dict)
                or not value.get("done")
                or _silence(value) < retention.total_seconds()
            ):
                break
            self.store.delete(key)
            removed += 1
        return removed

    def was_in_flight(self, address: str) -> bool:
        """
        Whether this run wrote ``address`` in flight (its request may have left).

        :param address: Normalised address.
        """
        return self._entries.get(address, {}).get("status") == IN_FLIGHT
