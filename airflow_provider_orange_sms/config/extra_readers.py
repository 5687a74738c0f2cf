"""How each connection extra is read: a reader gets the extra's name and its value (never ``None``
or ``""``; those mean the default) and returns the value the config holds, or raises ValueError
naming the extra and the value."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from airflow_provider_orange_sms.limit import MAX_RATE_PER_SECOND, MIN_RATE_PER_SECOND
from airflow_provider_orange_sms.recipients import (
    normalize_country,
    normalize_sender,
    normalize_sender_addresses,
)

if TYPE_CHECKING:
    from collections.abc import Callable


def invalid(name: str, value: object, expected: str) -> ValueError:
    return ValueError(f"Invalid connection extra {name}={value!r}: {expected}")


def as_text(name: str, value: object) -> str | None:
    if not isinstance(value, str):
        raise invalid(name, value, "expected a string")
    return value.strip() or None


def as_number(minimum: float = 0) -> Callable[[str, object], float]:
    def read(name: str, value: object) -> float:
        try:
            number = float(value) if not isinstance(value, bool) else float("nan")  # type: ignore[arg-type]
        except (TypeError, ValueError, OverflowError):
            number = float("nan")
        if not number >= minimum or not math.isfinite(number):  # NaN fails the first test
            raise invalid(name, value, f"expected a finite number >= {minimum:g}")
        return number

    return read


def as_whole_number(minimum: int, truncate: bool = False) -> Callable[[str, object], int]:
    def read(name: str, value: object) -> int:
        number = as_number(minimum)(name, value)
        if not truncate and not number.is_integer():
            raise invalid(name, value, "expected a whole number")
        return int(number)

    return read


def as_choice(choices: tuple[str, ...]) -> Callable[[str, object], str | None]:
    def read(name: str, value: object) -> str | None:
        text = as_text(name, value)
        choice = text.lower() if text is not None else None
        if choice is not None and choice not in choices:
            raise invalid(name, value, f"expected one of {', '.join(choices)}")
        return choice

    return read


def as_rate(name: str, value: object) -> float:
    rate = as_number()(name, value)
    if rate and not MIN_RATE_PER_SECOND <= rate <= MAX_RATE_PER_SECOND:
        raise invalid(
            name, value, f"expected {MIN_RATE_PER_SECOND:g} to {MAX_RATE_PER_SECOND:g}, or 0 for no limit"
        )
    return rate


def as_country(name: str, value: object) -> str | None:
    text = as_text(name, value)
    try:
        return normalize_country(text) if text is not None else None
    except ValueError as exc:
        raise invalid(name, text, str(exc)) from None


def as_sender(name: str, value: object) -> str | None:
    # A JSON number (2250000) is its digits; a float or a bool is refused as not a string.
    text = str(value) if isinstance(value, int) and not isinstance(value, bool) else as_text(name, value)
    try:
        return normalize_sender(text) if text is not None else None
    except ValueError as exc:
        raise invalid(name, text, str(exc)) from None


def as_sender_map(name: str, value: object) -> dict[str, str]:
    try:
        return normalize_sender_addresses(value)
    except ValueError as exc:
        raise ValueError(f"Invalid connection extra {name}: {exc}") from None
