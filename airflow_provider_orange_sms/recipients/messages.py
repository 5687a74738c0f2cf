"""Per-recipient messages: ``SendSMSOperator(messages=[{"recipient": …, "message": …}, …])``.

Parsed and validated before anything is sent, like recipients (:mod:`.recipient_lists`): every bad row is
named by its position and value.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Mapping
from typing import Any

from airflow_provider_orange_sms.recipients.addresses import normalize_recipient, short_repr
from airflow_provider_orange_sms.recipients.recipient_lists import load_literal

#: Longest SMS text accepted by default, in characters. Orange does not document its maximum. Long
#: texts travel as concatenated SMS, and a common operator cap is 10 segments: 10 x 153 = 1,530
#: GSM-7 characters (only 670 for texts needing UCS-2, which Orange refuses itself with SVC0280).
#: The point is to stop a runaway text (a pasted log) before it costs units, not to second-guess
#: Orange: raise or lift it with the connection extra ``max_message_length``.
DEFAULT_MAX_MESSAGE_LENGTH = 1530
# Characters that render as nothing: a text made only of these (and whitespace) is empty to the
# reader. Format characters (category Cf: U+200B-U+200F, U+2060, U+FEFF…) plus the Hangul fillers.
_INVISIBLE_EXTRA = frozenset("\u115f\u1160\u3164\uffa0\u2800")
_ALLOWED_CONTROLS = frozenset("\n\r\t")

#: Longest rendered ``messages`` text parsed (a list of rows as an XCom template renders it).
MAX_MESSAGES_TEXT = 50_000_000
#: Errors listed in one failure message; the rest are counted.
_MAX_ERRORS_SHOWN = 20


def _is_invisible(char: str) -> bool:
    return char.isspace() or unicodedata.category(char) == "Cf" or char in _INVISIBLE_EXTRA


def check_message(message: object, max_length: int | None = DEFAULT_MAX_MESSAGE_LENGTH) -> str:
    """
    Return ``message`` unchanged after checking it is a text an SMS can carry.

    :param message: The SMS text (any Unicode).
    :param max_length: Longest text accepted, in characters (Unicode code points); ``None`` for no
        limit. Orange does not document its maximum: see :data:`DEFAULT_MAX_MESSAGE_LENGTH`.
    :raises ValueError: When it is not a string; is empty, blank or made only of invisible
        characters (zero-width spaces and joiners, word joiner, BOM…); contains a control character
        other than newline, carriage return and tab (NUL…); or is longer than ``max_length``.
    """
    if not isinstance(message, str):
        raise ValueError(f"Invalid message {short_repr(message)}: expected a string")
    if not message.strip():
        raise ValueError(f"Invalid message {short_repr(message)}: the SMS text is empty")
    for index, char in enumerate(message):
        # Category Cc: C0 controls (NUL…), DEL and C1 controls; no phone displays them.
        if unicodedata.category(char) == "Cc" and char not in _ALLOWED_CONTROLS:
            raise ValueError(
                f"Invalid message {short_repr(message)}: control character U+{ord(char):04X} at "
                f"position {index} (only newline, carriage return and tab are allowed)"
            )
    if all(_is_invisible(char) for char in message):
        raise ValueError(
            f"Invalid message {short_repr(message)}: the SMS text is empty (only invisible characters "
            "such as zero-width spaces)"
        )
    if max_length is not None and len(message) > max_length:
        raise ValueError(
            f"Invalid message {short_repr(message)}: {len(message)} characters, longer than the limit "
            f"of {max_length} (the connection extra max_message_length sets it)"
        )
    return message


def check_text_as_sent(
    message: object,
    max_length: int | None = DEFAULT_MAX_MESSAGE_LENGTH,
    rewrite: Callable[[str], str] | None = None,
) -> str:
    """
    Return the text that will be sent, checked: ``rewrite`` (e.g. look-alike replacement) first,
    then :func:`~airflow_provider_orange_sms.recipients.messages.check_message`, so the length limit applies
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
