"""Lists of recipients as callers pass them: a list, a rendered template, a comma-separated string.

Parsed without ``eval`` (JSON, else a Python literal), then each number normalised by
:mod:`.addresses`; every bad value is named before anything is sent.
"""

from __future__ import annotations

import ast
import json
import re
from typing import TYPE_CHECKING, Any

from airflow_provider_orange_sms.recipients.addresses import (
    normalize_country,
    normalize_recipient,
    short_repr,
)

if TYPE_CHECKING:
    from collections.abc import Iterable

_LIST_SEPARATORS = re.compile(r"[,;\n]")
# A rendered recipients string bigger than this is not a list of phone numbers (a list of 20,000
# numbers is about 400 kB); refusing it keeps json/ast from chewing on megabytes.
MAX_RECIPIENTS_TEXT = 1_000_000


def _nesting_depth(text: str) -> int:
    """Deepest bracket nesting of ``text``, outside quoted strings (stops counting past 2)."""
    depth = deepest = 0
    quote = ""
    escaped = False
    for char in text:
        if quote:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == quote:
                quote = ""
        elif char in "'\"":
            quote = char
        elif char in "[(":
            depth += 1
            deepest = max(deepest, depth)
            if deepest > 2:
                break
        elif char in "])":
            depth -= 1
    return deepest


def load_literal(text: str) -> object:
    """
    Parse ``text`` as JSON, else as a Python literal (what a template renders for a list), never
    with ``eval``.

    :param text: The rendered text.
    :raises ValueError: Naming the kind of parse failure, when it is neither.
    """
    try:
        return json.loads(text)
    except ValueError:
        pass
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError) as exc:
        raise ValueError(type(exc).__name__) from None


def _parse_list_text(value: str, text: str) -> list[object] | None:
    """
    ``text`` parsed as a list (``[…]``, JSON or Python) or a tuple (``(…, …)``); ``None`` when it is
    not list syntax after all, such as ``(+225) 07 00 00 00 01``.
    """
    if len(text) > MAX_RECIPIENTS_TEXT:
        raise ValueError(
            f"Invalid recipients {short_repr(value)}: {len(text)} characters, more than the "
            f"{MAX_RECIPIENTS_TEXT} accepted"
        )
    if _nesting_depth(text) > 1:
        raise ValueError(
            f"Invalid recipients {short_repr(value)}: nested lists are not accepted (a recipient must "
            "be a phone number string)"
        )
    parsed: object = None
    if text.startswith("["):
        try:
            parsed = load_literal(text)
        except ValueError as exc:
            raise ValueError(
                f"Invalid recipients {short_repr(value)}: it looks like a list but cannot be parsed ({exc})"
            ) from None
        if not isinstance(parsed, list):
            raise ValueError(f"Invalid recipients {short_repr(value)}: expected a list of phone numbers")
        return parsed
    # "(": a Python tuple as a rendered template shows one, or a number with its country code in
    # parentheses. Only a literal that evaluates to a tuple is a list.
    try:
        parsed = ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None
    if isinstance(parsed, tuple):
        return list(parsed)
    if isinstance(parsed, int):
        return None  # "(+2250700000001)"
    raise ValueError(f"Invalid recipients {short_repr(value)}: expected a list of phone numbers")


def parse_recipients(value: object) -> list[str]:
    """
    Turn a (rendered) ``recipients`` value into a list of raw phone numbers, in order.

    Accepts a list or tuple of strings; a string that looks like a list
    (``"['+2250700000001', '+2250700000002']"``, as ``{{ ti.xcom_pull(...) }}`` renders one, or
    JSON; a tuple ``"('+225…', '+225…')"``); a comma-, semicolon- or newline-separated string; a
    single number (``"(+225) 07 00 00 00 01"`` is one number, not a tuple). Integers are turned
    into strings. Nested lists are refused. Nothing is validated here: see
    :func:`validate_recipients`.

    :param value: The ``recipients`` argument after template rendering.
    :raises ValueError: When the value is empty or has an unusable shape; the message shows it.
    """
    items: Iterable[object]
    if isinstance(value, str):
        text = value.strip()
        parsed = _parse_list_text(value, text) if text[:1] in ("[", "(") else None
        items = parsed if parsed is not None else _LIST_SEPARATORS.split(text)
    elif isinstance(value, (list, tuple, set, frozenset)):
        items = value
    else:
        raise ValueError(
            f"Invalid recipients {short_repr(value)}: expected a phone number, a comma-separated string "
            "or a list"
        )
    recipients: list[str] = []
    for item in items:
        if isinstance(item, int) and not isinstance(item, bool):
            item = str(item)
        if isinstance(item, str):
            if item.strip():
                recipients.append(item.strip())
            continue
        nested = " (a recipient must be a string: nested lists are not accepted)"
        raise ValueError(
            f"Invalid recipient {short_repr(item)} in {short_repr(value)}: expected a phone number "
            f"string{nested if isinstance(item, (list, tuple, set, frozenset)) else ''}"
        )
    if not recipients:
        raise ValueError(f"Invalid recipients {short_repr(value)}: no phone number given")
    return recipients


def validate_recipients(value: object, logger: Any = None, default_country: str | None = None) -> list[str]:
    """
    Parse, normalise (``tel:+…``) and de-duplicate ``recipients``, keeping the first occurrence's order.

    Shared by ``SendSMSOperator`` and ``OrangeSMSNotifier``. Every number is checked before the caller
    sends anything.

    :param value: The ``recipients`` argument after template rendering (see :func:`parse_recipients`).
    :param logger: Logs one line per duplicate dropped.
    :param default_country: ISO 3166 code of numbers written without a country code (see
        :func:`normalize_recipient`); ``None`` refuses them.
    :raises ValueError: Naming every invalid number, or the unusable value.
    """
    if default_country is not None:
        default_country = normalize_country(default_country)
    unique: dict[str, str] = {}
    invalid: list[str] = []
    for raw in parse_recipients(value):
        try:
            address = normalize_recipient(raw, default_country)
        except ValueError as exc:
            invalid.append(str(exc))
            continue
        if address in unique:
            if logger is not None:
                logger.info(
                    "Recipient %r is the same number as %r (%s): sending to it once",
                    raw,
                    unique[address],
                    address,
                )
            continue
        unique[address] = raw
    if invalid:
        raise ValueError(f"{len(invalid)} invalid recipient(s), nothing was sent: " + "; ".join(invalid))
    return list(unique)
