"""The "sent ledger": a durable record of every SMS a task instance may have sent.

:class:`~airflow_provider_orange_sms.operators.orange_sms.SendSMSOperator` writes to it *before*
each send (the recipient is "in flight") and after it (``sent`` with Orange's resource id,
``uncertain``, or ``failed`` when Orange certainly did not take it), and reads it at the start of
every try. A recipient whose last entry is ``sent``, ``in_flight`` or ``uncertain`` is never
texted again by a later try or a clear of the task: an interrupted try (a crash, ``kill -9``, a
failure after ``execute()`` returned) leaves at worst an ``in_flight`` entry, reported as
``uncertain``.

Layout: the ledger of one task instance is an append-only log split in chunks of about
:data:`CHUNK_SIZE` entries, one stored value per chunk, named ``orange_sms_sent_<hash>_<n>``
where ``<hash>`` is derived from ``dag_id/task_id/run_id/map_index`` and ``n`` counts from 0.
Each write rewrites only the current chunk, so ``N`` sends cost ``N + 1`` writes of bounded size.
The latest entry of a recipient wins. Reading walks the chunks ``0, 1, 2 …`` until one is
missing; a later try appends in new chunks after the existing ones and never rewrites an earlier
try's chunk. A read that fails (rather than finding nothing) raises, so an unreadable ledger never
passes for an empty one.

Ledgers are not deleted when the task succeeds (the task's own success may still fail to be
recorded, and Airflow would then run it again): they expire ``retention`` after their last write,
swept a few at a time by later successful tries (:meth:`SentLedger.expire`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from tenacity import Retrying, stop_after_attempt, wait_exponential

from airflow_provider_orange_sms.operators._strict_variables import read_variable, variable_keys

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping
    from datetime import timedelta

log = logging.getLogger(__name__)

#: Entries per stored chunk (a chunk may end one entry over it: an outcome and the next intent are
#: written together).
CHUNK_SIZE = 100
#: Prefix of the Variables holding ledgers.
KEY_PREFIX = "orange_sms_sent_"
#: Entry status: a send is about to leave (or left, and its outcome was never recorded).
IN_FLIGHT = "in_flight"
#: Entry status: Orange accepted the SMS (201 with a resource id).
SENT = "sent"
#: Entry status: the send failed in a way that leaves its outcome unknown (it may have gone out).
UNCERTAIN = "uncertain"
#: Entry status: Orange certainly did not take the SMS (refused, or the request never left).
FAILED = "failed"
#: Statuses after which a recipient is never sent to again by this task instance.
MAY_HAVE_BEEN_SENT = frozenset({IN_FLIGHT, SENT, UNCERTAIN})
_CHUNK_KEY = re.compile(rf"^{KEY_PREFIX}([0-9a-f]{{32}})_(\d+)$")


class LedgerUnavailableError(RuntimeError):
    """The ledger could not be read, or a write could not be made durable."""


class LedgerStore(Protocol):
    """Where ledger chunks live: a key-value store of JSON-serialisable values."""

    def get(self, key: str) -> Any | None:
        """
        Return the value stored under ``key``, or ``None`` only when there is none.

        :param key: Chunk name.
        :raises Exception: When the store cannot be read (never ``None`` for that).
        """

    def set(self, key: str, value: Any, description: str) -> None:
        """
        Store ``value`` (JSON-serialisable) under ``key``; return only once it is durable.

        :param key: Chunk name.
        :param value: JSON-serialisable value.
        :param description: Human-readable description of the chunk.
        """

    def delete(self, key: str) -> None:
        """
        Remove ``key`` (no error when it does not exist).

        :param key: Chunk name.
        """

    def keys(self, prefix: str) -> list[str] | None:
        """
        Return the stored keys starting with ``prefix``, or ``None`` when the store cannot list.

        :param prefix: Key prefix.
        """


class VariableLedgerStore:
    """
    Ledger chunks in Airflow Variables (inside a running task, through the execution API).

    Reads tell a missing Variable from an unreadable one (see
    :mod:`~airflow_provider_orange_sms.operators._strict_variables`). Values are JSON. Configure
    a Fernet key so Airflow encrypts them at rest: they hold phone numbers.
    """

    def get(self, key: str) -> Any | None:
        """
        Return the JSON value of Variable ``key``, or ``None`` when it does not exist.

        :param key: Variable name.
        :raises VariableReadError: When the Variable cannot be read.
        """
        raw = read_variable(key)
        return None if raw is None else json.loads(raw)

    def set(self, key: str, value: Any, description: str) -> None:
        """
        Store ``value`` as JSON in Variable ``key``.

        :param key: Variable name.
        :param value: JSON-serialisable value.
        :param description: Human-readable description shown in the Variables UI.
        """
        from airflow.sdk import Variable

        Variable.set(key, value, description=description, serialize_json=True)

    def delete(self, key: str) -> None:
        """
        Delete Variable ``key``.

        :param key: Variable name.
        """
        from airflow.sdk import Variable

        Variable.delete(key)

    def keys(self, prefix: str) -> list[str] | None:
        """
        Return the Variable keys starting with ``prefix`` (``None`` before Airflow 3.3).

        :param prefix: Key prefix.
        """
        return variable_keys(prefix)


class InMemoryLedgerStore:
    """
    Ledger chunks in a dict (tests, or a process that runs every try itself).

    Values go through a JSON round trip, as they would in Variables.
    """

    def __init__(self) -> None:
        self.values: dict[str, str] = {}
        self.descriptions: dict[str, str] = {}
        self.writes = 0

    def get(self, key: str) -> Any | None:
        """
        Return the value stored under ``key``, or ``None``.

        :param key: Entry name.
        """
        raw = self.values.get(key)
        return None if raw is None else json.loads(raw)

    def set(self, key: str, value: Any, description: str) -> None:
        """
        Store ``value`` under ``key``.

        :param key: Entry name.
        :param value: JSON-serialisable value.
        :param description: Kept in :attr:`descriptions`.
        """
        self.values[key] = json.dumps(value)
        self.descriptions[key] = description
        self.writes += 1

    def delete(self, key: str) -> None:
        """
        Remove ``key`` if present.

        :param key: Entry name.
        """
        self.values.pop(key, None)
        self.descriptions.pop(key, None)

    def keys(self, prefix: str) -> list[str] | None:
        """
        Return the stored keys starting with ``prefix``.

        :param prefix: Key prefix.
        """
        return [key for key in self.values if key.startswith(prefix)]


@dataclass(frozen=True)
class LedgerEntry:
    """
    What an earlier try recorded last for one recipient.

    :param recipient: Normalised address (``tel:+…``).
    :param resource_id: Orange's id of the SMS, ``None`` unless it was sent.
    :param status: :data:`IN_FLIGHT`, :data:`SENT`, :data:`UNCERTAIN` or :data:`FAILED`.
    """

    recipient: str
    resource_id: str | None
    status: str

    @property
    def may_have_been_sent(self) -> bool:
        """Whether the recipient may have got the SMS (then it is never sent to again)."""
        return self.status in MAY_HAVE_BEEN_SENT


def ledger_key(dag_id: str, task_id: str, run_id: str, map_index: int) -> str:
    """
    Return the key prefix of the ledger of one task instance (all its tries share it).

    :param dag_id: DAG id.
    :param task_id: Task id.
    :param run_id: DAG run id.
    :param map_index: Map index (``-1`` when the task is not mapped).
    """
    identity = f"{dag_id}/{task_id}/{run_id}/{map_index}"
    return KEY_PREFIX + hashlib.sha256(identity.encode()).hexdigest()[:32]


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
    ) -> None:
        self.key = key
        self.store = store
        self.label = label
        self.log: Any = logger or log
        self.write_attempts = write_attempts
        self.write_backoff = write_backoff
        #: How the ledger waits between write tries (replaceable in tests).
        self.sleep: Callable[[float], None] = time.sleep
        self._loaded = False
        self._chunk_index = 0
        self._current: list[list[Any]] = []

    @classmethod
    def from_context(
        cls,
        context: Mapping[str, Any],
        store: LedgerStore | None = None,
        *,
        logger: Any = None,
    ) -> SentLedger:
        """
        Build the ledger of the task instance in ``context`` (off when it has no ``ti``).

        :param context: The task context.
        :param store: Storage; Airflow Variables when ``None``.
        :param logger: Where progress and warnings go.
        """
        store = store if store is not None else VariableLedgerStore()
        ti = context.get("ti") if context else None
        if ti is None:
            return cls(None, store, logger=logger)
        try:
            dag_id, task_id, run_id = str(ti.dag_id), str(ti.task_id), str(ti.run_id)
            map_index = getattr(ti, "map_index", -1)
            map_index = -1 if map_index is None else int(map_index)
        except (AttributeError, TypeError, ValueError):
            return cls(None, store, logger=logger)
        label = f"{dag_id}.{task_id} run {run_id}" + (f" map_index {map_index}" if map_index >= 0 else "")
        return cls(ledger_key(dag_id, task_id, run_id, map_index), store, label=label, logger=logger)

    @property
    def enabled(self) -> bool:
        """Whether the ledger is in use (there is a task instance to key it on)."""
        return self.key is not None

    def _chunk_key(self, index: int) -> str:
        return f"{self.key}_{index}"

    def load(self) -> dict[str, LedgerEntry]:
        """
        Return what earlier tries recorded, the latest entry per recipient; later writes go after it.

        Where the store can list its keys (Airflow 3.3+), a chunk that is listed but reads as
        missing (e.g. a Variable that no longer decrypts after a Fernet key change) counts as
        unreadable, not as absent.

        :raises LedgerUnavailableError: When a chunk cannot be read or makes no sense.
        """
        entries: dict[str, LedgerEntry] = {}
        if self.key is None:
            self._loaded = True
            return entries
        listed = self._listed_chunks()
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
                for recipient, resource_id, status in chunk["entries"]:
                    entries[str(recipient)] = LedgerEntry(str(recipient), resource_id, str(status))
            except (KeyError, TypeError, ValueError) as exc:
                raise LedgerUnavailableError(
                    f"the sent ledger {key} is not a ledger chunk: {chunk!r:.80}"
                ) from exc
            index += 1
        self._chunk_index = index
        self._current = []
        self._loaded = True
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
        self._current.extend([recipient, resource_id, status] for recipient, resource_id, status in entries)
        key = self._chunk_key(self._chunk_index)
        value = {"version": 2, "updated_at": time.time(), "entries": self._current}
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
        if len(self._current) >= CHUNK_SIZE:
            self._chunk_index += 1
            self._current = []

    def expire(self, retention: timedelta, *, budget: int = 10, now: float | None = None) -> int:
        """
        Delete other task instances' ledgers last written more than ``retention`` ago.

        Best effort and bounded: lists the ledger keys once (Airflow 3.3 and later; older releases
        cannot list Variables from a task, and nothing is deleted), looks at up to ``budget``
        ledgers picked at random and deletes the expired ones (last chunk first). Ledgers written
        by older releases of this provider (no ``updated_at``) are left alone. Never raises.

        :param retention: How long a ledger is kept after its last write.
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
                updated_at = last.get("updated_at") if isinstance(last, dict) else None
                if not isinstance(updated_at, (int, float)) or now - updated_at <= retention.total_seconds():
                    continue
                for index in range(chunks[prefix], -1, -1):
                    self.store.delete(f"{prefix}_{index}")
                deleted += 1
        except Exception as exc:
            self.log.warning("Could not expire old sent ledgers (%s: %s)", type(exc).__name__, exc)
            return 0
        if deleted:
            self.log.info("Deleted %d sent ledger(s) last written more than %s ago", deleted, retention)
        return deleted
