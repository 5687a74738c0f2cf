"""
The opt-out list: who said STOP, in one format shared by the receiver and the send tasks.

Each number on the list has its own Airflow Variable, ``orange_sms_opt_out_<digits>`` (E.164
digits, no ``+``), holding an :class:`OptOutRecord` as JSON. Variables are what both sides can
reach: the receiver runs in the API server and writes them in the metadata database; send tasks run
on any worker, where the Task SDK reads them through the execution API, one request per recipient,
right before its send (so a STOP that arrives mid-batch applies from then on). A record is never
deleted by a keyword: an opt-in is stored as ``opted_out: false`` so that the later of two
concurrent keywords wins by time (:meth:`OptOutRecord.supersedes`), whichever is written last.

Keywords are compared after :func:`normalize_keyword` (case, accents, punctuation and spacing
ignored), so ``Stop``, ``stop!``, `` ARRÊT `` and ``arret`` are the same keyword. The defaults can
be replaced in ``[orange_sms] opt_out_keywords`` / ``opt_in_keywords`` (comma-separated).

This module is pure (no Airflow import) and cheap to import.
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import Any

__all__ = [
    "DEFAULT_OPT_IN_KEYWORDS",
    "DEFAULT_OPT_OUT_KEYWORDS",
    "KEY_PREFIX",
    "OPT_IN",
    "OPT_OUT",
    "OptOutRecord",
    "keyword_action",
    "normalize_keyword",
    "parse_keywords",
    "variable_key",
]

#: Prefix of the Variables of the opt-out list.
KEY_PREFIX = "orange_sms_opt_out_"
#: What a keyword does: put the sender on the list, or take it off.
OPT_OUT = "opt_out"
OPT_IN = "opt_in"
#: Replies that put their sender on the list (English, French, Arabic).
DEFAULT_OPT_OUT_KEYWORDS = (
    "STOP",
    "STOP ALL",
    "UNSUBSCRIBE",
    "ARRET",
    "ARRÊT",
    "DESABONNER",
    "إلغاء",
    "توقف",
)
#: Replies that take their sender off the list again.
DEFAULT_OPT_IN_KEYWORDS = ("START", "UNSTOP", "SUBSCRIBE", "YES START", "REPRENDRE", "ابدأ")
_DIGITS = re.compile(r"^[1-9][0-9]{6,14}$")
_NOT_WORD = re.compile(r"[\W_]+", re.UNICODE)
# Arabic tatweel only stretches a word (توقـف is توقف); it is a letter to Unicode, not a format mark.
_TATWEEL = "\u0640"


def normalize_keyword(text: str) -> str:
    """
    Return ``text`` as a keyword compares: accents and case dropped, punctuation and runs of
    spaces made one space, trimmed (``" Arrêt ! "`` -> ``"arret"``).

    Arabic letters with hamza compare equal to their bare forms, as accented letters do. Invisible
    characters are dropped, not made spaces: the tatweel (``توقـف`` is ``توقف``) and every format
    character (zero-width joiner and non-joiner, zero-width space, BOM, left-to-right,
    right-to-left and Arabic letter marks), so ``"ST\u200bOP"`` is ``"stop"``.

    :param text: The text of a reply, or a configured keyword.
    """
    decomposed = unicodedata.normalize("NFKD", text)
    bare = "".join(
        c
        for c in decomposed
        if not unicodedata.combining(c) and c != _TATWEEL and unicodedata.category(c) != "Cf"
    )
    return _NOT_WORD.sub(" ", bare.casefold()).strip()


def parse_keywords(value: str | None, default: tuple[str, ...], option: str) -> frozenset[str]:
    """
    Read a comma-separated keyword option into normalised keywords.

    :param value: The option's text; ``None`` or blank gives ``default``.
    :param default: The keywords when the option is not set.
    :param option: The option's name, for the error.
    :raises ValueError: When the option is set but holds no keyword.
    """
    if value is None or not value.strip():
        return frozenset(normalize_keyword(k) for k in default)
    keywords = frozenset(k for k in (normalize_keyword(part) for part in value.split(",")) if k)
    if not keywords:
        raise ValueError(f"[orange_sms] {option}={value!r} holds no keyword")
    return keywords


def keyword_action(message: str, opt_out: frozenset[str], opt_in: frozenset[str]) -> str | None:
    """
    Return :data:`OPT_OUT` or :data:`OPT_IN` when the whole reply is one of the keywords, else
    ``None`` (``"stop sending me ads"`` is a reply, not a keyword).

    :param message: The reply's text.
    :param opt_out: Normalised opt-out keywords (:func:`parse_keywords`).
    :param opt_in: Normalised opt-in keywords.
    """
    word = normalize_keyword(message)
    if word in opt_out:
        return OPT_OUT
    if word in opt_in:
        return OPT_IN
    return None


def variable_key(number: str) -> str:
    """
    Return the Variable key of ``number`` on the list.

    :param number: E.164 with or without ``+`` or ``tel:`` (``+2250700000001``).
    :raises ValueError: When ``number`` is not an E.164 number.
    """
    digits = number.removeprefix("tel:").removeprefix("+")
    if not _DIGITS.match(digits):
        raise ValueError(f"Invalid phone number for the opt-out list: {number!r} (E.164 expected)")
    return KEY_PREFIX + digits


@dataclass(frozen=True)
class OptOutRecord:
    """
    One number's state on the opt-out list.

    :param number: E.164 with ``+``.
    :param opted_out: Whether sends to it are refused.
    :param at: When it was decided (the reply's ``dateTime`` for a keyword, else when it was
        written), ISO 8601 in UTC.
    :param source: What decided it: ``inbound`` (a reply), ``import``, ``operator``.
    :param keyword: The reply's text, normalised, for a keyword; else ``None``.
    :param message_id: The reply's ``messageId``, when Orange gave one.
    """

    number: str
    opted_out: bool
    at: str
    source: str
    keyword: str | None = None
    message_id: str | None = None

    def to_json(self) -> str:
        """Return the record as the Variable's value."""
        return json.dumps(asdict(self), ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_json(cls, value: str | dict[str, Any]) -> OptOutRecord:
        """
        Read a record written by :meth:`to_json`.

        :param value: The Variable's value (text, or already parsed).
        :raises ValueError: When it is not such a record.
        """
        data = json.loads(value) if isinstance(value, str) else value
        if not isinstance(data, dict) or not isinstance(data.get("opted_out"), bool):
            raise ValueError(f"Not an opt-out record: {str(value)[:80]!r}")
        try:
            return cls(
                number=str(data["number"]),
                opted_out=data["opted_out"],
                at=str(data["at"]),
                source=str(data["source"]),
                keyword=data.get("keyword"),
                message_id=data.get("message_id"),
            )
        except KeyError as exc:
            raise ValueError(f"Opt-out record without {exc.args[0]!r}: {str(value)[:80]!r}") from None

    def decided_at(self) -> datetime:
        """Return :attr:`at` as an aware datetime."""
        moment = datetime.fromisoformat(self.at.replace("Z", "+00:00"))
        return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)

    def supersedes(self, other: OptOutRecord | None) -> bool:
        """
        Whether this record should replace ``other``: it is newer (ties: the later writer wins).

        :param other: The stored record, if any.
        """
        return other is None or self.decided_at() >= other.decided_at()
