"""Honouring the opt-out list when sending: each recipient's record, read right before its send.

The list is one Airflow Variable per number (:mod:`airflow_provider_orange_sms.opt_out`). A send
task reads the recipient's Variable once, right before that recipient's send, so a STOP that
arrives mid-batch applies to every later recipient, and the cost is one execution-API request per
recipient (a dry run reads them all once, in its planning pass, and sends nothing).

A read that fails is an error, never "not opted out": the strict reader of
:mod:`._strict_variables` tells "no such Variable" (not on the list) from "could not ask" (the task
stops before that recipient's send).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider_orange_sms.operators._strict_variables import (
    VariableReadError,
    can_read_variables,
    read_variable,
)
from airflow_provider_orange_sms.opt_out import OptOutRecord, variable_key

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

__all__ = ["OPTED_OUT", "OptOutCheck", "OptOutListUnreadableError", "opted_out_entry"]

#: Result status of a recipient that was not sent because it is on the opt-out list.
OPTED_OUT = "opted_out"


class OptOutListUnreadableError(RuntimeError):
    """
    A recipient's opt-out record could not be read, or is not a record: do not send to it.

    :param message: What failed, naming the recipient.
    :param retryable: Whether a later try may read it (``False`` for a malformed record).
    """

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


def opted_out_entry(address: str, record: OptOutRecord) -> dict[str, Any]:
    """
    Return how an opted-out recipient is listed in a dry run's plan.

    :param address: Normalised address (``tel:+…``).
    :param record: Its opt-out record.
    """
    return {"recipient": address, "at": record.at, "source": record.source}


class OptOutCheck:
    """
    Reads recipients' opt-out records (one Variable read each).

    :param read: Returns a Variable's raw value, ``None`` only when it does not exist, and raises
        :class:`VariableReadError` when it cannot tell; ``None`` turns the check off.
    :param reason_off: Why the check is off, for the warning (when ``read`` is ``None``).
    """

    def __init__(self, read: Callable[[str], str | None] | None, reason_off: str = "") -> None:
        self.read = read
        self.reason_off = reason_off
        #: Variable reads made so far.
        self.reads = 0

    @classmethod
    def for_task(cls, *, respect: bool, logger: Any = None) -> OptOutCheck:
        """
        The check for a task or callback: on when ``respect`` and Airflow's supervisor runs this
        process (the execution API can be asked); off otherwise (``op.execute(context={})``).

        :param respect: The operator's ``respect_opt_out``.
        :param logger: Where to say that the check is off, and why.
        """
        if not respect:
            check = cls(None, "respect_opt_out=False")
            if logger is not None:
                logger.info(
                    "respect_opt_out=False: recipients on the opt-out list are texted too (transactional "
                    "messages they asked for only, never marketing)"
                )
            return check
        if not can_read_variables():
            check = cls(None, "not run by Airflow: no execution API to read Airflow Variables through")
            if logger is not None:
                logger.warning("Opt-out list not checked (%s)", check.reason_off)
            return check
        return cls(read_variable)

    @property
    def enabled(self) -> bool:
        """Whether recipients are checked."""
        return self.read is not None

    def opted_out(self, address: str) -> OptOutRecord | None:
        """
        Return ``address``'s record when it is opted out, ``None`` when it may be sent to.

        :param address: Normalised address (``tel:+…``).
        :raises OptOutListUnreadableError: When its record cannot be read or is not a record.
        """
        if self.read is None:
            return None
        key = variable_key(address)
        self.reads += 1
        try:
            raw = self.read(key)
        except VariableReadError as exc:
            raise OptOutListUnreadableError(
                f"the opt-out list could not be read for {address} ({exc})", retryable=True
            ) from exc
        if raw is None:
            return None
        try:
            record = OptOutRecord.from_json(raw)
        except ValueError as exc:
            raise OptOutListUnreadableError(
                f"Variable {key} is not an opt-out record ({exc}); fix or delete it", retryable=False
            ) from None
        return record if record.opted_out else None

    def opted_out_among(self, addresses: Iterable[str]) -> dict[str, OptOutRecord]:
        """
        Return the records of the opted-out recipients among ``addresses`` (one read each).

        :param addresses: Normalised addresses.
        :raises OptOutListUnreadableError: When a record cannot be read.
        """
        found: dict[str, OptOutRecord] = {}
        for address in addresses:
            record = self.opted_out(address)
            if record is not None:
                found[address] = record
        return found
