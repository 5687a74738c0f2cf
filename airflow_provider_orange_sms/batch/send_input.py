"""What a :class:`~airflow_provider_orange_sms.operators.orange_sms.SendSMSOperator` is asked to send,
validated before anything is sent: each normalised recipient's text and sender."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider_orange_sms.recipients import check_text_as_sent, validate_messages, validate_recipients
from airflow_provider_orange_sms.segments import TRANSLITERATE, gsm7_lookalikes, to_gsm7

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from datetime import datetime

    from airflow_provider_orange_sms.batch.send_window import SendWindow
    from airflow_provider_orange_sms.client import OrangeSMSClient


def lookalike_rewrite(replace_lookalikes: bool | str) -> Callable[[str], str] | None:
    """
    Return what ``replace_lookalikes`` does to a text before it is checked and sent, if anything.

    :param replace_lookalikes: ``True``, ``False`` or ``"transliterate"`` (SendSMSOperator's).
    """
    if not replace_lookalikes:
        return None
    transliterate = replace_lookalikes == TRANSLITERATE

    def rewrite(text: str) -> str:
        # Only a text the replacement makes GSM-7: one that stays UCS-2 costs the same as written.
        if gsm7_lookalikes(text, transliterate=transliterate):
            return to_gsm7(text, transliterate=transliterate)
        return text

    return rewrite


def validated_input(
    client: OrangeSMSClient,
    *,
    recipients: str | Sequence[str] | None,
    message: str | None,
    messages: str | Sequence[Mapping[str, Any]] | None,
    sender_address: str | None,
    default_country: str | None,
    replace_lookalikes: bool | str,
    window: SendWindow | None,
    now: Callable[[], datetime],
    logger: Any,
) -> tuple[dict[str, str], dict[str, str]]:
    """
    Return the text and the sender of each normalised recipient, in order.

    :param client: The connection's client (its country, message length limit and senders).
    :param recipients: SendSMSOperator's ``recipients`` (with ``message``), or ``None``.
    :param message: The text for every recipient, or ``None``.
    :param messages: Instead: one ``{"recipient", "message"}`` row per SMS, or ``None``.
    :param sender_address: The operator's sender number, if given.
    :param default_country: Country of numbers written without a country code.
    :param replace_lookalikes: What to do with look-alike characters (see :func:`lookalike_rewrite`).
    :param window: The send window, checked for recipients it would never let through.
    :param now: The current time.
    :param logger: Where dropped duplicates and rewrites are logged.
    :raises ValueError: Naming every bad value.
    """
    country = default_country or client.country
    rewrite = lookalike_rewrite(replace_lookalikes)
    if messages is not None:
        texts = validate_messages(
            messages,
            logger,
            default_country=country,
            max_length=client.max_message_length,
            rewrite=rewrite,
        )
    else:
        text = check_text_as_sent(message, client.max_message_length, rewrite)
        addresses = validate_recipients(recipients, logger, default_country=country)
        texts = dict.fromkeys(addresses, text)
    senders: dict[str, str] = {}
    unrouted = []
    for address in texts:
        try:
            senders[address] = client.sender_for(address, sender_address)
        except ValueError as exc:
            unrouted.append(str(exc))
    if unrouted:
        raise ValueError(f"{len(unrouted)} recipient(s) without a sender: " + "; ".join(unrouted[:20]))
    if window is not None and window.per_recipient:
        # Before any send: a recipient the window never lets through would otherwise be
        # found only after the others were texted, as an error Airflow retries.
        unreachable = window.unreachable(texts, now())
        if unreachable:
            raise ValueError(
                f"Invalid send_window {window.start:%H:%M}-{window.end:%H:%M} for these "
                "recipients: " + "; ".join(unreachable[:20])
            )
    return texts, senders


def validated_release(
    client: OrangeSMSClient,
    release: str | Sequence[str] | None,
    default_country: str | None,
    texts: Mapping[str, str],
) -> frozenset[str]:
    """
    Return the normalised recipients of SendSMSOperator's ``release_uncertain``.

    :param client: The connection's client (its country).
    :param release: The (rendered) ``release_uncertain``: numbers as ``recipients`` takes them, or
        ``None``/empty for none.
    :param default_country: Country of numbers written without a country code.
    :param texts: The task's recipients: a released number must be one of them.
    :raises ValueError: Naming every invalid number, and every one the task does not send to.
    """
    if release is None or (isinstance(release, str) and release.strip() in ("", "[]", "()", "None")):
        return frozenset()
    if isinstance(release, (list, tuple, set, frozenset)) and not release:
        return frozenset()
    try:
        addresses = validate_recipients(release, default_country=default_country or client.country)
    except ValueError as exc:
        raise ValueError(f"Invalid release_uncertain: {exc}") from None
    strangers = [address for address in addresses if address not in texts]
    if strangers:
        raise ValueError(
            f"Invalid release_uncertain: {', '.join(strangers[:20])} "
            f"{'is' if len(strangers) == 1 else 'are'} not among this task's recipients"
        )
    return frozenset(addresses)
