"""Per-recipient messages: ``SendSMSOperator(messages=[{"recipient": …, "message": …}, …])``.

Parsed and validated before anything is sent, like recipients (:mod:`.addresses`): every bad row is
named by its position and value.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from airflow_provider_orange_sms.addresses import (
    DEFAULT_MAX_MESSAGE_LENGTH,
    check_message,
    load_literal,
    normalize_recipient,
    short_repr,
)

#: Longest rendered ``messages`` text parsed (a list of rows as an XCom template renders it).
MAX_MESSAGES_TEXT = 50_000_000
#: Errors listed in one failure message; the rest are counted.
_MAX_ERRORS_SHOWN = 20


def check_text_as_sent(
    message: object,
    max_length: int | None = DEFAULT_MAX_MESSAGE_LENGTH,
    rewrite: Callable[[str], str] | None = None,
) -> str:
    """
    Return the text that will be sent, checked: ``rewrite`` (e.g. look-alike replacement) first,
    then :func:`~airflow_provider_orange_sms.addresses.check_message`, so the length limit applies
    to what is sent (``…`` becomes ``...``: a text at the limit grows past it).

    :param message: The text as written.
    :param max_length: Longest text accepted, in characters.
    :param rewrite: Turns the written text into the one sent; ``None`` sends it as written.
    :raises ValueError: Naming the text, and its length as written when the rewrite changed it.
    """
    if rewrite is None or not isinstance(message, str):
        return check_message(message, max_length)
    sent = rewrite(message)
    try:
        return check_message(sent, max_length)
    except ValueError as exc:
        if sent == message:
            raise
        raise ValueError(
            f"{exc}; that is the text as sent, after replace_lookalikes ({len(message)} characters "
            "as written)"
        ) from None


def parse_messages(value: object) -> list[Mapping[str, Any]]:
    """
    Turn a (rendered) ``messages`` value into its rows.

    :param value: A list of mappings with ``recipient`` and ``message``, or its JSON or Python text
        (what ``{{ ti.xcom_pull(...) }}`` renders).
    :raises ValueError: When it is not a non-empty list of mappings.
    """
    if isinstance(value, str):
        text = value.strip()
        if len(text) > MAX_MESSAGES_TEXT:
            raise ValueError(f"Invalid messages: {len(text)} characters, more than {MAX_MESSAGES_TEXT}")
        try:
            value = load_literal(text)
        except ValueError as exc:
            raise ValueError(
                f"Invalid messages {short_repr(value)}: expected a list of "
                f'{{"recipient": …, "message": …}} rows ({exc})'
            ) from None
    if isinstance(value, tuple):
        value = list(value)
    if not isinstance(value, list) or not value:
        raise ValueError(
            f'Invalid messages {short_repr(value)}: expected a non-empty list of {{"recipient": …, '
            '"message": …}} rows'
        )
    for index, row in enumerate(value):
        if not isinstance(row, Mapping):
            raise ValueError(
                f'Invalid messages row {index} {short_repr(row)}: expected {{"recipient": …, "message": …}}'
            )
    return value


def validate_messages(
    value: object,
    logger: Any = None,
    *,
    default_country: str | None = None,
    max_length: int | None = DEFAULT_MAX_MESSAGE_LENGTH,
    rewrite: Callable[[str], str] | None = None,
) -> dict[str, str]:
    """
    Return ``{normalised recipient: text}`` in row order, after checking every row.

    Other keys of a row (a database row's own fields) are ignored. A recipient given twice with
    the same text is sent once; with different texts it is refused
    (one task sends one SMS per recipient, which is what makes its retries safe).

    :param value: The ``messages`` argument after template rendering (see :func:`parse_messages`).
    :param logger: Logs one line per duplicate row dropped.
    :param default_country: Country of numbers written without a country code.
    :param max_length: Longest text accepted, in characters (of the text as sent).
    :param rewrite: Turns each text into the one sent, before it is checked (see
        :func:`check_text_as_sent`); the returned texts are the rewritten ones.
    :raises ValueError: Naming every bad row (up to 20, then a count), nothing sent.
    """
    rows = parse_messages(value)
    texts: dict[str, str] = {}
    errors: list[str] = []
    for index, row in enumerate(rows):
        raw = row.get("recipient")
        try:
            address = normalize_recipient(str(raw) if isinstance(raw, int) else raw, default_country)
            text = check_text_as_sent(row.get("message"), max_length, rewrite)
        except ValueError as exc:
            errors.append(f"row {index}: {exc}")
            continue
        if address in texts:
            if texts[address] != text:
                errors.append(f"row {index}: {address} already has a different message in an earlier row")
            elif logger is not None:
                logger.info("Row %d repeats the message to %s: sending it once", index, address)
            continue
        texts[address] = text
    if errors:
        shown = "; ".join(errors[:_MAX_ERRORS_SHOWN])
        more = f"; and {len(errors) - _MAX_ERRORS_SHOWN} more" if len(errors) > _MAX_ERRORS_SHOWN else ""
        raise ValueError(f"{len(errors)} invalid row(s) in messages, nothing was sent: {shown}{more}")
    return texts
