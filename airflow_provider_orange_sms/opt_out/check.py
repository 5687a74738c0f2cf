"""Honouring the opt-out list when sending: each recipient's record, read right before its send.

The list holds up to two Airflow Variables per number, the receiver's and the list operators'
(:mod:`airflow_provider_orange_sms.opt_out`); the later decision holds. Right before each
recipient's send, a send task asks which of the number's Variables exist (one execution-API request,
``Variable.keys`` with the number's key as prefix) and reads those (most recipients have none), so a
STOP that arrives mid-batch applies to every later recipient (a dry run reads them all once, in its
planning pass, and sends nothing).

A read that fails is an error, never "not opted out": the strict reader of
:mod:`~airflow_provider_orange_sms.strict_variables` tells "no such Variable" (not on the list)
from "could not ask" (the task stops before that recipient's send). The API server also answers
"no such Variable" for a Variable it cannot decrypt (another Fernet key): a key that is listed
but reads as missing is unreadable, and the recipient is not sent to. Airflow 3.0 to 3.2 cannot
list Variables from a task: there both keys are read, and an undecryptable record reads as absent.

``Variable.keys`` lists the metadata database only. Where a record may come from elsewhere (an
``AIRFLOW_VAR_ORANGE_SMS_OPT_OUT_…`` environment variable or a secrets backend configured for
tasks), both keys are read as well, as ``Variable.get`` looks there first; the listing still tells
an undecryptable record from a missing one.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from airflow_provider_orange_sms.opt_out import (
    KEY_PREFIX,
    OptOutRecord,
    latest_decision,
    operator_variable_key,
    variable_key,
)
from airflow_provider_orange_sms.strict_variables import (
    VariableReadError,
    can_read_variables,
    read_variable,
    variable_keys,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

__all__ = [
    "OPTED_OUT",
    "OptOutCheck",
    "OptOutListUnreadableError",
    "listing_sees_every_record",
    "opted_out_entry",
]

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


def listing_sees_every_record() -> bool:
    """
    Whether listing Variables (``Variable.keys``: the metadata database only) finds every opt-out
    record a task can read: not when ``Variable.get`` may find one first in an environment variable
    (``AIRFLOW_VAR_ORANGE_SMS_OPT_OUT_…``) or in a secrets backend configured for tasks
    (``[workers] secrets_backend`` or ``[secrets] backend``).
    """
    from airflow_provider_orange_sms.version_compat import conf

    prefix = f"AIRFLOW_VAR_{KEY_PREFIX}".upper()
    if any(name.upper().startswith(prefix) for name in os.environ):
        return False
    return not any(
        (conf.get(section, option, fallback="") or "").strip()
        for section, option in (("workers", "secrets_backend"), ("secrets", "backend"))
    )


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
    :param list_keys: Returns the Variable keys starting with a prefix, ``None`` when this Airflow
        cannot list them; without it, a record that cannot be decrypted reads as absent.
    :param read_unlisted: Read both of a number's keys even when the listing has neither (a record
        may live where the listing does not look: :func:`listing_sees_every_record`).
    """

    def __init__(
        self,
        read: Callable[[str], str | None] | None,
        reason_off: str = "",
        list_keys: Callable[[str], list[str] | None] | None = None,
        *,
        read_unlisted: bool = False,
    ) -> None:
        self.read = read
        self.reason_off = reason_off
        self.list_keys = list_keys
        self.read_unlisted = read_unlisted
        #: Execution-API requests made so far (listings and reads).
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
        return cls(read_variable, list_keys=variable_keys, read_unlisted=not listing_sees_every_record())

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
        listed = self._existing_keys(address)
        keys = _both(address) if listed is None or self.read_unlisted else listed
        records = [self._record(address, key, listed=listed is not None and key in listed) for key in keys]
        record = latest_decision(*records)
        return record if record is not None and record.opted_out else None

    def _existing_keys(self, address: str) -> list[str] | None:
        """The number's keys that exist, or ``None`` when this Airflow cannot list them."""
        if self.list_keys is None:
            return None
        self.reads += 1
        try:
            listed = self.list_keys(variable_key(address))
        except Exception as exc:
            raise OptOutListUnreadableError(
                f"the opt-out list could not be read for {address} (listing its Variables: "
                f"{type(exc).__name__}: {exc})",
                retryable=True,
            ) from exc
        if listed is None:
            self.list_keys = None
            return None
        return [key for key in _both(address) if key in listed]

    def _still_listed(self, address: str, key: str) -> bool:
        """Whether ``key``, listed but read as missing, still exists (it may have been erased since)."""
        assert self.list_keys is not None
        self.reads += 1
        try:
            return key in (self.list_keys(key) or [])
        except Exception as exc:
            raise VariableReadError(f"cannot list Variable {key}: {type(exc).__name__}: {exc}") from exc

    def _record(self, address: str, key: str, *, listed: bool) -> OptOutRecord | None:
        """One of ``address``'s records, ``None`` when it has none under ``key``."""
        assert self.read is not None
        self.reads += 1
        try:
            raw = self.read(key)
            unreadable = raw is None and listed and self._still_listed(address, key)
        except VariableReadError as exc:
            raise OptOutListUnreadableError(
                f"the opt-out list could not be read for {address} ({exc})", retryable=True
            ) from exc
        if unreadable:
            raise OptOutListUnreadableError(
                f"Variable {key} exists but the API server could not read it (is it encrypted with another "
                f"Fernet key?); {address} is not sent to until it is readable or deleted",
                retryable=False,
            )
        if raw is None:
            return None
        try:
            return OptOutRecord.from_json(raw)
        except ValueError as exc:
            raise OptOutListUnreadableError(
                f"Variable {key} is not an opt-out record ({exc}); fix or delete it", retryable=False
            ) from None

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


def _both(address: str) -> list[str]:
    """Both of a number's keys: its replies' and the operators'."""
    return [variable_key(address), operator_variable_key(address)]
