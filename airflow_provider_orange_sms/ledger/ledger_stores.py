"""Where the sent ledger's chunks live: Airflow Variables, or a dict (tests).

Reads tell a missing value from an unreadable one: the ledger must never take "cannot read who
was texted" for "nobody was texted".
"""

from __future__ import annotations

import json
from typing import Any, Protocol

from airflow_provider_orange_sms.strict_variables import read_variable, variable_keys


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
    :mod:`~airflow_provider_orange_sms.strict_variables`). Values are JSON. Configure
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
        :param description: Kept in ``descriptions``.
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
