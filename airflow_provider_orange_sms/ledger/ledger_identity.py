"""Which sent ledger a task instance uses, and which of its entries belong to this DAG run.

**The key.** A task instance that is not mapped keys its ledger on ``dag_id/task_id/run_id``. A
mapped one (``SendSMSOperator.partial(...).expand_kwargs(...)``) keys it on what it sends instead of
its ``map_index``: a digest of its recipients and their texts. An upstream task that returns the
same rows in another order when the run is cleared then hands each row to another map index, and
that index finds the ledger the row was sent under. Consequences: a row whose text is generated
anew on the re-run (a fresh one-time code) is a new SMS and is sent; two identical rows (same
recipients, same texts) share one ledger, so they get one SMS (two when both instances run at the
same moment).

**The incarnation.** A DAG run deleted and re-created with the same ``run_id`` must send again,
although its ledger key is the same. Each chunk therefore records a :class:`RunMark`: the run's
``run_after`` and ``clear_number``, and the task instance's ``map_index``, ``try_number`` and ``id``
(Task SDK context, Airflow 3.x). Within one incarnation of a run these only move forward:
``run_after`` never changes, ``clear_number`` only grows (each clear), and per map index
``try_number`` only grows, a new task instance ``id`` coming with each new try (a deferred task
resumes with the same try and id). A re-created run starts again (``run_after`` is the time it was
triggered, unless given; ``clear_number`` 0; try 1 with a new id), so a chunk that does not follow
the ones before it starts another incarnation: the entries before it are ignored (never deleted).
A re-created run with the same ``run_after`` whose first try wrote nothing before a later try
cannot be told from a retry (see the README).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping

#: Prefix of the Variables holding ledgers.
KEY_PREFIX = "orange_sms_sent_"


def ledger_key(dag_id: str, task_id: str, run_id: str, map_index: int | str) -> str:
    """
    Return the key prefix of the ledger of one task instance (all its tries share it).

    :param dag_id: DAG id.
    :param task_id: Task id.
    :param run_id: DAG run id.
    :param map_index: ``-1`` when the task is not mapped; for a mapped one, :func:`content_digest`.
    """
    identity = f"{dag_id}/{task_id}/{run_id}/{map_index}"
    return KEY_PREFIX + hashlib.sha256(identity.encode()).hexdigest()[:32]


def content_digest(texts: Mapping[str, str]) -> str:
    """
    Return what identifies a mapped instance's SMS: a digest of its recipients and texts, in any order.

    :param texts: Text per normalised recipient.
    """
    canonical = json.dumps(sorted(texts.items()), ensure_ascii=False, separators=(",", ":"))
    return "content:" + hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class RunMark:
    """
    Which incarnation of a DAG run, and which try, wrote a chunk (``None``: unknown).

    :param run_after: The DAG run's ``run_after`` (ISO 8601).
    :param clear_number: The DAG run's ``clear_number``.
    :param map_index: The task instance's map index (``-1`` when not mapped).
    :param try_number: The task instance's try number.
    :param ti_id: The task instance's id (new at each try).
    """

    run_after: str | None = None
    clear_number: int | None = None
    map_index: int | None = None
    try_number: int | None = None
    ti_id: str | None = None

    @classmethod
    def from_context(cls, context: Mapping[str, Any]) -> RunMark:
        """
        Read the mark of the running try from the task context (what is missing stays ``None``).

        :param context: The task context.
        """
        ti = context.get("ti")
        dag_run = context.get("dag_run")
        run_after: Any = getattr(dag_run, "run_after", None)
        ti_id: Any = getattr(ti, "id", None)
        return cls(
            run_after=run_after.isoformat() if isinstance(run_after, datetime) else None,
            clear_number=_int_or_none(getattr(dag_run, "clear_number", None)),
            map_index=_int_or_none(getattr(ti, "map_index", None)),
            try_number=_int_or_none(getattr(ti, "try_number", None)),
            ti_id=None if ti_id is None else str(ti_id),
        )

    @classmethod
    def from_json(cls, value: Any) -> RunMark | None:
        """
        Read a mark stored in a chunk; ``None`` for a chunk written before marks existed.

        :param value: The chunk's ``"run"`` value.
        """
        if not isinstance(value, dict):
            return None
        return cls(
            run_after=value.get("run_after") if isinstance(value.get("run_after"), str) else None,
            clear_number=_int_or_none(value.get("clear_number")),
            map_index=_int_or_none(value.get("map_index")),
            try_number=_int_or_none(value.get("try_number")),
            ti_id=value.get("ti_id") if isinstance(value.get("ti_id"), str) else None,
        )

    def to_json(self) -> dict[str, Any]:
        """The mark as stored in a chunk."""
        return {
            "run_after": self.run_after,
            "clear_number": self.clear_number,
            "map_index": self.map_index,
            "try_number": self.try_number,
            "ti_id": self.ti_id,
        }


def _int_or_none(value: Any) -> int | None:
    try:
        return None if value is None or isinstance(value, bool) else int(value)
    except (TypeError, ValueError):
        return None


@dataclass
class Incarnation:
    """What the chunks read so far say about the incarnation of the run that wrote them."""

    run_after: str | None = None
    clear_number: int | None = None
    tries: dict[int, tuple[int, str | None]] = field(default_factory=dict)

    def continued_by(self, mark: RunMark) -> bool:
        """
        Whether a write marked ``mark`` can come after the ones seen so far in the same incarnation.

        :param mark: The later write's mark.
        """
        if self.run_after is not None and mark.run_after is not None and mark.run_after != self.run_after:
            return False
        if (
            self.clear_number is not None
            and mark.clear_number is not None
            and mark.clear_number < self.clear_number
        ):
            return False
        earlier = self.tries.get(mark.map_index) if mark.map_index is not None else None
        if earlier is not None and mark.try_number is not None:
            try_number, ti_id = earlier
            if mark.try_number < try_number:
                return False
            if mark.try_number == try_number and None not in (ti_id, mark.ti_id) and ti_id != mark.ti_id:
                return False
        return True

    def add(self, mark: RunMark) -> None:
        """
        Take in a write marked ``mark`` (one that :meth:`continued_by` accepted).

        :param mark: The write's mark.
        """
        if mark.run_after is not None:
            self.run_after = mark.run_after
        if mark.clear_number is not None:
            self.clear_number = max(mark.clear_number, self.clear_number or 0)
        if mark.map_index is not None and mark.try_number is not None:
            self.tries[mark.map_index] = (mark.try_number, mark.ti_id)
