"""The "sent ledger": a durable record of every SMS a task instance may have sent.

:class:`~airflow_provider_orange_sms.operators.orange_sms.SendSMSOperator` writes to it right
before each request leaves (the recipient is "in flight": after the token fetch and the limiter
wait, so an interrupted wait leaves nothing to report), each time with the outcome of the send
before it (``sent`` with Orange's resource id, ``uncertain``, or ``failed`` when Orange certainly
did not take it; the last one at the end of the batch), and
reads it at the start of every try. A recipient whose last entry is ``sent``, ``in_flight`` or
``uncertain`` is never texted again by a later try or a clear of the task: an interrupted try (a
crash, ``kill -9``, a failure after ``execute()`` returned) leaves at worst an ``in_flight``
entry, reported as ``uncertain``.

Layout: the ledger of one task instance is an append-only log split in chunks of about
:data:`CHUNK_SIZE` entries, one stored value per chunk, named ``orange_sms_sent_<hash>_<n>``
where ``<hash>`` is derived from ``dag_id/task_id/run_id`` (and, for a mapped task, what the
instance sends) and ``n`` counts from 0. Each write rewrites only the current chunk, so ``N`` sends
cost between ``N + 1`` and ``2 N`` writes of bounded size (an outcome goes with the next "in flight"
entry when the limiter's wait leaves no time to write it on its own).
The latest entry of a recipient wins. Reading walks the chunks ``0, 1, 2 …`` until one is
missing; a later try appends in new chunks after the existing ones and never rewrites an earlier
try's chunk. A read that fails (rather than finding nothing) raises, so an unreadable ledger never
passes for an empty one.

Which ledger a task instance uses, and which of its chunks belong to this incarnation of the DAG
run, is :mod:`.ledger_identity`'s concern: each chunk records the :class:`RunMark` of the try that
wrote it, and entries of another incarnation of the same ``run_id`` are ignored.

Ledgers are not deleted when the task succeeds (the task's own success may still fail to be
recorded, and Airflow would then run it again). Each chunk carries its ledger's own retention and
its write time; a ledger expires its retention after its last write (or after the end of a hold,
written when its task defers), and is swept a few at a time by later successful tries of any task
(:meth:`SentLedger.expire`), each ledger by its own retention.
"""

from __future__ import annotations

import logging
import random
import re
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from tenacity import Retrying, stop_after_attempt, wait_exponential

from airflow_provider_orange_sms.ledger.ledger_identity import (
    KEY_PREFIX,
    Incarnation,
    RunMark,
    content_digest,
    ledger_key,
)
from airflow_provider_orange_sms.ledger.ledger_stores import (
    InMemoryLedgerStore,
    LedgerStore,
    VariableLedgerStore,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

__all__ = [
    "KEY_PREFIX",
    "InMemoryLedgerStore",
    "LedgerStore",
    "RunMark",
    "SentLedger",
    "VariableLedgerStore",
    "content_digest",
    "ledger_key",
]

log = logging.getLogger(__name__)

#: Entries per stored chunk.
CHUNK_SIZE = 100
#: How long a ledger is kept after its last write, by default (SendSMSOperator's ``ledger_retention``).
DEFAULT_LEDGER_RETENTION = timedelta(days=7)
#: Entry status: a send is about to leave (or left, and its outcome was never recorded).
IN_FLIGHT = "in_flight"
#: Entry status: Orange accepted the SMS (201 with a resource id).
SENT = "sent"
#: Entry status: the send failed in a way that leaves its outcome unknown (it may have gone out).
UNCERTAIN = "uncertain"
#: Entry status: Orange certainly did not take the SMS (refused, or the request never left).
FAILED = "failed"
#: Entry status: the user released an uncertain recipient (SendSMSOperator's ``release_uncertain``):
#: the next send to it goes out.
RELEASED = "released"
#: Statuses after which a recipient is never sent to again by this task instance.
MAY_HAVE_BEEN_SENT = frozenset({IN_FLIGHT, SENT, UNCERTAIN})
_CHUNK_KEY = re.compile(rf"^{KEY_PREFIX}([0-9a-f]{{32}})_(\d+)$")


class LedgerUnavailableError(RuntimeError):
    """The ledger could not be read, or a write could not be made durable."""


@dataclass(frozen=True)
class LedgerEntry:
    """
    What an earlier try recorded last for one recipient.

    :param recipient: Normalised address (``tel:+…``).
    :param resource_id: Orange's id of the SMS, ``None`` unless it was sent.
    :param status: :data:`IN_FLIGHT`, :data:`SENT`, :data:`UNCERTAIN`, :data:`FAILED` or
        :data:`RELEASED`.
    :param in_flight_at: Unix time (the worker's clock) its last "in flight" entry was written, while
        its outcome is unknown (``None`` otherwise, or for a chunk written before times were kept).
    """

    recipient: str
    resource_id: str | None
    status: str
    in_flight_at: float | None = None

    @property
    def may_have_been_sent(self) -> bool:
        """Whether the recipient may have got the SMS (then it is never sent to again)."""
        return self.status in MAY_HAVE_BEEN_SENT


class SentLedger:
    """
    The sent ledger of one task instance.

    :param key: Key prefix from :func:`ledger_key`; ``None`` turns the ledger off (nothing to key
        on): reads find nothing and writes are skipped.
    :param store: Storage for the chunks.
    :param label: Human-readable task instance name for logs and Variable descriptions.
    :param logger: Where progress and warnings go.
    :param write_attempts: Tries per write before the ledger counts as unavailable.
    :param write_backoff: First wait in seconds between write tries (doubled each time, at most 2 s).
    :param retention: How long this ledger is kept after its last write (stored in every chunk, so
        any task's sweep applies it); ``None`` keeps it until deleted by hand.
    :param run: The mark of the running try (which incarnation of the DAG run, which try).
    """

    def __init__(
        self,
        key: str | None,
        store: LedgerStore,
        *,
        label: str = "",
        logger: Any = None,
        write_attempts: int = 4,
        write_backoff: float = 0.25,
        retention: timedelta | None = DEFAULT_LEDGER_RETENTION,
        run: RunMark | None = None,
    ) -> None:
        self.key = key
        self.store = store
        self.label = label
        self.log: Any = logger or log
        self.write_attempts = write_attempts
        self.write_backoff = write_backoff
        self.retention = retention
        self.run = run or RunMark()
        #: How the ledger waits between write tries (replaceable in tests).
        self.sleep: Callable[[float], None] = time.sleep
        self._loaded = False
        self._chunk_index = 0
        self._current: list[list[Any]] = []
        # When each "in flight" entry of the current chunk was written (settling needs it).
        self._in_flight_at: dict[str, float] = {}

    @classmethod
    def from_context(
        cls,
        context: Mapping[str, Any],
        store: LedgerStore | None = None,
        *,
        logger: Any = None,
        texts: Mapping[str, str] | None = None,
        retention: timedelta | None = DEFAULT_LEDGER_RETENTION,
    ) -> SentLedger:
        """
        Build the ledger of the task instance in ``context`` (off when it has no ``ti``).

        :param context: The task context.
        :param store: Storage; Airflow Variables when ``None``.
        :param logger: Where progress and warnings go.
        :param texts: What the task instance sends (text per recipient): a mapped instance's ledger
            is keyed on it instead of its map index (see :mod:`.ledger_identity`).
        :param retention: How long the ledger is kept after its last write (``None``: until deleted).
        """
        store = store if store is not None else VariableLedgerStore()
        ti = context.get("ti") if context else None
        if ti is None:
            return cls(None, store, logger=logger, retention=retention)
        try:
            dag_id, task_id, run_id = str(ti.dag_id), str(ti.task_id), str(ti.run_id)
            map_index = getattr(ti, "map_index", -1)
            map_index = -1 if map_index is None else int(map_index)
        except (AttributeError, TypeError, ValueError):
            return cls(None, store, logger=logger, retention=retention)
        label = f"{dag_id}.{task_id} run {run_id}" + (f" map_index {map_index}" if map_index >= 0 else "")
        identity: int | str = map_index if map_index < 0 or texts is None else content_digest(texts)
        return cls(
            ledger_key(dag_id, task_id, run_id, identity),
            store,
            label=label,
            logger=logger,
            retention=retention,
            run=RunMark.from_context(context),
        )

    @property
    def enabled(self) -> bool:
        """Whether the ledger is in use (there is a task instance to key it on)."""
        return self.key is not None

    def _chunk_key(self, index: int) -> str:
        return f"{self.key}_{index}"

    def load(self) -> dict[str, LedgerEntry]:
        """
        Return what earlier tries of this run recorded, the latest entry per recipient; later writes
        go after it.

        Chunks of another incarnation of the run (deleted and re-created with the same ``run_id``)
        are ignored, and the first time this is seen an empty chunk marks where this incarnation
        begins (so that its later tries ignore them too). Where the store can list its keys
        (Airflow 3.3+), a chunk that is listed but reads as missing (e.g. a Variable that no longer
        decrypts after a Fernet key change) counts as unreadable, not as absent.

        :raises LedgerUnavailableError: When a chunk cannot be read or makes no sense, or the mark
            of a new incarnation cannot be written.
        """
        entries: dict[str, LedgerEntry] = {}
        if self.key is None:
            self._loaded = True
            return entries
        listed = self._listed_chunks()
        incarnation = Incarnation()
        ignored = 0
        index = 0
        while True:
            key = self._chunk_key(index)
            try:
                chunk = self.store.get(key)
            except Exception as exc:
                raise LedgerUnavailableError(
                    f"cannot read the sent ledger {key} ({type(exc).__name__}: {exc})"
                ) from exc
            if chunk is None:
                if listed is not None and listed > index:
                    raise LedgerUnavailableError(
                        f"cannot read the sent ledger {key}: it exists but reads as missing (a Variable "
                        "that does not decrypt with this Fernet key?)"
                    )
                break
            try:
                mark = RunMark.from_json(chunk.get("run"))
                if mark is not None and not incarnation.continued_by(mark):
                    ignored, entries, incarnation = index, {}, Incarnation()
                times = in_flight_times(chunk)
                for recipient, resource_id, status in chunk["entries"]:
                    entries[str(recipient)] = _next_entry(
                        entries.get(str(recipient)), str(recipient), resource_id, str(status), times
                    )
            except (AttributeError, KeyError, TypeError, ValueError) as exc:
                raise LedgerUnavailableError(
                    f"the sent ledger {key} is not a ledger chunk: {chunk!r:.80}"
                ) from exc
            if mark is not None:
                incarnation.add(mark)
            index += 1
        self._chunk_index = index
        self._current = []
        self._in_flight_at = {}
        self._loaded = True
        if not incarnation.continued_by(self.run):
            ignored = index
        if ignored:
            self.log.warning(
                "Sent ledger %s: its first %d part(s) were written for another DAG run with the same "
                "run_id (deleted and re-created): ignored, not deleted",
                self.key,
                ignored,
            )
        if ignored == index and index:
            self.append([])  # marks where this incarnation begins, for its later tries
            return {}
        return entries

    def _listed_chunks(self) -> int | None:
        """How many chunks the store lists for this ledger, or ``None`` when it cannot list."""
        try:
            keys = self.store.keys(f"{self.key}_")
        except Exception as exc:
            raise LedgerUnavailableError(
                f"cannot list the sent ledger {self.key}_* ({type(exc).__name__}: {exc})"
            ) from exc
        if keys is None:
            return None
        own = [key for key in keys if key.startswith(f"{self.key}_")]
        indexes = [int(match.group(2)) for match in map(_CHUNK_KEY.match, own) if match]
        return max(indexes, default=-1) + 1

    def append(self, entries: Iterable[tuple[str, str | None, str]]) -> None:
        """
        Append ``entries`` and make them durable in one write of the current chunk.

        A failed write is tried again a few times, briefly; the entries are durable when this
        returns.

        :param entries: ``(recipient, resource_id, status)`` tuples, written together.
        :raises LedgerUnavailableError: When the write still fails.
        """
        if self.key is None:
            return
        if not self._loaded:
            raise RuntimeError("SentLedger.load() must be called before append()")
        now = time.time()
        for recipient, resource_id, status in entries:
            self._current.append([recipient, resource_id, status])
            if status == IN_FLIGHT:
                self._in_flight_at[recipient] = now
        self._write()
        if len(self._current) >= CHUNK_SIZE:
            self._chunk_index += 1
            self._current = []
            self._in_flight_at = {}

    def hold(self, until: float | None) -> None:
        """
        Keep this ledger from expiring before ``until`` (while its task is deferred, e.g. overnight).

        Rewrites the current chunk with the hold; the next write of a later try (after the task
        resumes) ends it. Nothing is written when the ledger is empty.

        :param until: Unix time the hold ends (its retention runs from then), or ``None`` to hold
            it until the task writes again.
        :raises LedgerUnavailableError: When the write fails.
        """
        if self.key is None or not self._loaded or (self._chunk_index == 0 and not self._current):
            return
        self._write(held_until=until)

    def _write(self, **extra: Any) -> None:
        key = self._chunk_key(self._chunk_index)
        value = {
            "version": 3,
            "updated_at": time.time(),
            "retention": None if self.retention is None else self.retention.total_seconds(),
            "run": self.run.to_json(),
            "entries": self._current,
            **({"in_flight_at": self._in_flight_at} if self._in_flight_at else {}),
            **extra,
        }
        description = f"Orange SMS sent ledger of {self.label}, part {self._chunk_index}"
        retrying = Retrying(
            stop=stop_after_attempt(self.write_attempts),
            wait=wait_exponential(multiplier=self.write_backoff, max=2.0),
            sleep=lambda seconds: self.sleep(seconds),
            reraise=True,
        )
        try:
            retrying(self.store.set, key, value, description)
        except Exception as exc:
            raise LedgerUnavailableError(
                f"cannot write the sent ledger {key} after {self.write_attempts} tries "
                f"({type(exc).__name__}: {exc})"
            ) from exc

    def expire(self, *, budget: int = 10, now: float | None = None) -> int:
        """
        Delete other task instances' ledgers whose own retention has run out since their last write.

        Each ledger's last chunk says how long it is kept (``retention``, ``None``: never swept) and
        may hold it past a deferral (``held_until``). Ledgers written by earlier releases of this
        provider without a retention are kept :data:`DEFAULT_LEDGER_RETENTION` (or this ledger's
        own retention when longer); those without a write time are left alone. Best effort and
        bounded: lists the ledger keys once (Airflow 3.3 and later; older releases cannot list
        Variables from a task, and nothing is deleted), looks at up to ``budget`` ledgers picked at
        random and deletes the expired ones (last chunk first). Never raises.

        :param budget: Ledgers looked at in this call.
        :param now: Current Unix time (defaults to ``time.time()``).
        :return: How many ledgers were deleted.
        """
        now = time.time() if now is None else now
        try:
            keys = self.store.keys(KEY_PREFIX)
            if keys is None:
                return 0
            chunks: dict[str, int] = {}
            for key in keys:
                match = _CHUNK_KEY.match(key)
                if match:
                    prefix = KEY_PREFIX + match.group(1)
                    chunks[prefix] = max(chunks.get(prefix, -1), int(match.group(2)))
            chunks.pop(self.key or "", None)
            deleted = 0
            for prefix in random.sample(sorted(chunks), min(budget, len(chunks))):
                last = self.store.get(f"{prefix}_{chunks[prefix]}")
                expires_at = self._expiry(last) if isinstance(last, dict) else None
                if expires_at is None or now <= expires_at:
                    continue
                for index in range(chunks[prefix], -1, -1):
                    self.store.delete(f"{prefix}_{index}")
                deleted += 1
        except Exception as exc:
            self.log.warning("Could not expire old sent ledgers (%s: %s)", type(exc).__name__, exc)
            return 0
        if deleted:
            self.log.info("Deleted %d sent ledger(s) whose retention ran out", deleted)
        return deleted

    def _expiry(self, last: dict[str, Any]) -> float | None:
        """When a ledger whose last chunk is ``last`` expires (``None``: never, or cannot tell)."""
        updated_at = last.get("updated_at")
        if not isinstance(updated_at, (int, float)):
            return None
        if "retention" in last:
            retention = last["retention"]
            if not isinstance(retention, (int, float)):
                return None  # kept until deleted by hand
        else:  # written before ledgers carried their retention: never shorter than the default
            own = self.retention or DEFAULT_LEDGER_RETENTION
            retention = max(DEFAULT_LEDGER_RETENTION, own).total_seconds()
        start = updated_at
        if "held_until" in last:
            held_until = last["held_until"]
            if not isinstance(held_until, (int, float)):
                return None  # held until its task writes again
            start = max(start, held_until)
        return float(start + retention)


def in_flight_times(chunk: Mapping[str, Any]) -> dict[str, float]:
    """
    When each "in flight" entry of a chunk was written (Unix time, the writer's clock); empty for a
    chunk written before times were kept.

    :param chunk: A ledger chunk.
    """
    times = chunk.get("in_flight_at")
    if not isinstance(times, dict):
        return {}
    return {
        str(recipient): float(at)
        for recipient, at in times.items()
        if isinstance(at, (int, float)) and not isinstance(at, bool)
    }


def _next_entry(
    earlier: LedgerEntry | None, recipient: str, resource_id: Any, status: str, times: Mapping[str, float]
) -> LedgerEntry:
    """A recipient's entry after ``earlier``: an outcome still unknown keeps its "in flight" time."""
    if status == IN_FLIGHT:
        return LedgerEntry(recipient, resource_id, status, times.get(recipient))
    if status == UNCERTAIN and earlier is not None and earlier.status in (IN_FLIGHT, UNCERTAIN):
        return LedgerEntry(recipient, resource_id, status, earlier.in_flight_at)
    return LedgerEntry(recipient, resource_id, status)
