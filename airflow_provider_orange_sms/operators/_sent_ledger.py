"""The "sent ledger": which recipients of one task instance already got (or may have got) the SMS.

A retry of :class:`~airflow_provider_orange_sms.operators.orange_sms.SendSMSOperator` reads it to
skip them, so a task that failed half-way through a batch never texts anyone twice.

Storage is pluggable (:class:`LedgerStore`): Airflow Variables in production
(:class:`VariableLedgerStore`), a dict in unit tests (:class:`InMemoryLedgerStore`).

Layout: the ledger of one task instance is an append-only log split in chunks of
:data:`CHUNK_SIZE` entries, one Variable per chunk, named ``orange_sms_sent_<hash>_<n>`` where
``<hash>`` is derived from ``dag_id/task_id/run_id/map_index`` and ``n`` counts from 0. Each
accepted send rewrites only the current chunk (at most :data:`CHUNK_SIZE` entries), so a batch of
``N`` recipients costs ``N`` writes of bounded size, never one ever-growing value. Reading walks the
chunks ``0, 1, 2 …`` until one is missing. A later try appends in new chunks after the existing
ones. The chunks are deleted from the last to the first, so an interrupted deletion still leaves
a readable prefix.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from collections.abc import Mapping

log = logging.getLogger(__name__)

#: Entries (recipients) per stored chunk.
CHUNK_SIZE = 100
#: Prefix of the Variables holding ledgers.
KEY_PREFIX = "orange_sms_sent_"
#: Entry status: Orange accepted the SMS.
SENT = "sent"
#: Entry status: the send failed in a way that leaves its outcome unknown (it may have gone out).
UNCERTAIN = "uncertain"


class LedgerStore(Protocol):
    """Where ledger chunks live: a key-value store of JSON-serialisable values."""

    def get(self, key: str) -> Any | None:
        """
        Return the value stored under ``key``, or ``None`` when there is none.

        :param key: Chunk name.
        """

    def set(self, key: str, value: Any, description: str) -> None:
        """
        Store ``value`` (JSON-serialisable) under ``key``.

        :param key: Chunk name.
        :param value: JSON-serialisable value.
        :param description: Human-readable description of the chunk.
        """

    def delete(self, key: str) -> None:
        """
        Remove ``key`` (no error when it does not exist).

        :param key: Chunk name.
        """


class VariableLedgerStore:
    """
    Ledger chunks in Airflow Variables (works inside a running task, through the execution API).

    Values are JSON. Configure a Fernet key so Airflow encrypts them at rest: they hold phone numbers.
    """

    def get(self, key: str) -> Any | None:
        """
        Return the JSON value of Variable ``key``, or ``None`` when it does not exist.

        :param key: Variable name.
        """
        from airflow.sdk import Variable

        return Variable.get(key, default=None, deserialize_json=True)

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


@dataclass(frozen=True)
class LedgerEntry:
    """
    What an earlier try recorded for one recipient.

    :param recipient: Normalised address (``tel:+…``).
    :param resource_id: Orange's id of the SMS, ``None`` when the outcome is unknown.
    :param status: :data:`SENT` or :data:`UNCERTAIN`.
    """

    recipient: str
    resource_id: str | None
    status: str


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
    The sent ledger of one task instance; every storage failure disables it with a warning.

    :param key: Key prefix from :func:`ledger_key`; ``None`` disables the ledger (nothing to key on).
    :param store: Storage for the chunks.
    :param label: Human-readable task instance name for logs and Variable descriptions.
    :param logger: Where warnings go.
    """

    def __init__(
        self,
        key: str | None,
        store: LedgerStore,
        *,
        label: str = "",
        logger: Any = None,
    ) -> None:
        self.key = key
        self._active = key is not None
        self.store = store
        self.label = label
        self.log: Any = logger or log
        self._chunk_index = 0
        self._current: list[list[Any]] = []
        self._chunks_written: set[int] = set()

    @classmethod
    def from_context(
        cls,
        context: Mapping[str, Any],
        store: LedgerStore | None = None,
        *,
        logger: Any = None,
    ) -> SentLedger:
        """
        Build the ledger of the task instance in ``context`` (disabled when it has no ``ti``).

        :param context: The task context.
        :param store: Storage; Airflow Variables when ``None``.
        :param logger: Where warnings go.
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
        """Whether the ledger is in use (a key to store under, and storage that works)."""
        return self._active

    def _disable(self, action: str, exc: BaseException) -> None:
        self.log.warning(
            "Cannot %s the sent ledger (%s: %s): continuing WITHOUT the retry guard, so a retry of this "
            "task may send the SMS again to recipients that already got it",
            action,
            type(exc).__name__,
            exc,
        )
        self._active = False

    def _chunk_key(self, index: int) -> str:
        return f"{self.key}_{index}"

    def load(self) -> dict[str, LedgerEntry]:
        """Return what earlier tries recorded, by recipient; new entries go after them."""
        entries: dict[str, LedgerEntry] = {}
        if not self._active:
            return entries
        index = 0
        try:
            while True:
                chunk = self.store.get(self._chunk_key(index))
                if chunk is None:
                    break
                for recipient, resource_id, status in chunk.get("entries", []):
                    entries[recipient] = LedgerEntry(recipient, resource_id, status)
                self._chunks_written.add(index)
                index += 1
        except Exception as exc:
            self._disable("read", exc)
            return {}
        self._chunk_index = index
        return entries

    def record(self, recipient: str, resource_id: str | None, status: str) -> None:
        """
        Append one entry, writing the current chunk right away.

        :param recipient: Normalised address.
        :param resource_id: Orange's id of the SMS, ``None`` when unknown.
        :param status: :data:`SENT` or :data:`UNCERTAIN`.
        """
        if not self._active:
            return
        self._current.append([recipient, resource_id, status])
        description = f"Orange SMS sent ledger (retry guard) of {self.label}, part {self._chunk_index}"
        try:
            self.store.set(
                self._chunk_key(self._chunk_index), {"version": 1, "entries": self._current}, description
            )
        except Exception as exc:
            self._disable("write", exc)
            return
        self._chunks_written.add(self._chunk_index)
        if len(self._current) >= CHUNK_SIZE:
            self._chunk_index += 1
            self._current = []

    def clear(self) -> None:
        """
        Delete every chunk (last first); called when the task succeeded.

        Also tried when the ledger was disabled after a storage failure, for the chunks written before.
        """
        if self.key is None or not self._chunks_written:
            return
        try:
            for index in sorted(self._chunks_written, reverse=True):
                self.store.delete(self._chunk_key(index))
        except Exception as exc:
            self.log.warning(
                "Could not delete the sent ledger %s_* (%s: %s); delete those Variables by hand",
                self.key,
                type(exc).__name__,
                exc,
            )
            return
        self._chunks_written.clear()
        self._current = []
        self._chunk_index = 0
