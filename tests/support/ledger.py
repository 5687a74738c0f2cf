"""The sent ledger in tests: a store whose reads or writes fail on cue."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from airflow_provider_orange_sms.ledger.ledger_stores import InMemoryLedgerStore


class FaultyStore(InMemoryLedgerStore):
    """
    An in-memory ledger store whose reads or writes fail when told to (as the execution API or a
    locked metadata database would).

    :param fail_reads: 1-based numbers of the ``get`` calls that fail.
    :param fail_writes: 1-based numbers of the ``set`` calls that fail.
    :param fail_writes_from: Every ``set`` call from this number on fails.
    """

    def __init__(
        self,
        *,
        fail_reads: Iterable[int] = (),
        fail_writes: Iterable[int] = (),
        fail_writes_from: int | None = None,
    ) -> None:
        super().__init__()
        self.fail_reads, self.fail_writes, self.fail_writes_from = (
            set(fail_reads),
            set(fail_writes),
            fail_writes_from,
        )
        self.reads = self.write_calls = 0

    def get(self, key: str) -> Any:
        self.reads += 1
        if self.reads in self.fail_reads:
            raise RuntimeError("injected: execution API unavailable")
        return super().get(key)

    def set(self, key: str, value: Any, description: str) -> None:
        self.write_calls += 1
        if self.write_calls in self.fail_writes or (
            self.fail_writes_from is not None and self.write_calls >= self.fail_writes_from
        ):
            raise RuntimeError("injected: database is locked")
        super().set(key, value, description)
