"""
The opt-out list: who said STOP, in one format shared by the receiver and the send tasks.

Each number on the list has up to two Airflow Variables, each holding an :class:`OptOutRecord` as
JSON: ``orange_sms_opt_out_<digits>`` (E.164 digits, no ``+``), written only by the receiver from
the subscriber's own replies, and ``orange_sms_opt_out_<digits>.operator``, written only by the list
operators (import, remove). The number's state is the later of the two decisions
(:func:`latest_decision`); a STOP counts there from when the receiver got it if that is later than
its ``dateTime``, so an operator's decision taken before the STOP was known never undoes it. Two
keys because the writers cannot share one safely: the receiver compares and sets in the metadata
database, but a task can only write a Variable blindly through the execution API, and a blind write
would replace a STOP that arrived while the task ran. With one writer per key, a STOP stored during
a removal is never overwritten, and the later decision wins whichever is written last.

Variables are what both sides can reach: the receiver runs in the API server and writes them in the
metadata database; send tasks run on any worker, where the Task SDK reads them through the
execution API, right before each recipient's send (so a STOP that arrives mid-batch applies from
then on). A record is never deleted by a keyword: an opt-in is stored as ``opted_out: false`` so
that the later of two concurrent keywords wins by time (:meth:`OptOutRecord.supersedes`).

Keywords are compared after :func:`normalize_keyword` (case, accents, punctuation and spacing
ignored), so ``Stop``, ``stop!``, `` ARRÊT `` and ``arret`` are the same keyword. The defaults can
be replaced in ``[orange_sms] opt_out_keywords`` / ``opt_in_keywords`` (comma-separated).

This module is pure (no Airflow import) and cheap to import.
"""

from __future__ import annotations

import functools
import json
import re
import unicodedata
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from airflow_provider_orange_sms.recipients import E164_DIGITS
from airflow_provider_orange_sms.settings import OPT_IN_KEYWORDS, OPT_OUT_KEYWORDS, SECTION

__all__ = [
    "DEFAULT_OPT_IN_KEYWORDS",
    "DEFAULT_OPT_OUT_KEYWORDS",
    "KEY_PREFIX",
    "OPERATOR_KEY_SUFFIX",
    "OPT_IN",
    "OPT_OUT",
    "OptOutRecord",
    "keyword_action",
    "keyword_lists",
    "latest_decision",
    "normalize_keyword",
    "number_of_key",
    "operator_variable_key",
    "parse_keywords",
    "reply_decided_at",
    "variable_key",
]

#: Prefix of the Variables of the opt-out list.
KEY_PREFIX = "orange_sms_opt_out_"
#: Suffix of the Variable holding the list operators' decision on a number.
OPERATOR_KEY_SUFFIX = ".operator"
#: What a keyword does: put the sender on the list.
OPT_OUT = "opt_out"
#: What a keyword does: take the sender off the list.
OPT_IN = "opt_in"
#: Replies that put their sender on the list (English, French, Arabic).
DEFAULT_OPT_OUT_KEYWORDS = (
    "STOP",
    "STOP ALL",
    "UNSUBSCRIBE",
    "ARRET",
    "ARRÊT",
    "ARRÊTER",
    "DESABONNER",
    "DÉSINSCRIRE",
    "إلغاء",
    "إلغاء الاشتراك",
    "توقف",
    "إيقاف",
)
#: Replies that take their sender off the list again.
DEFAULT_OPT_IN_KEYWORDS = ("START", "UNSTOP", "SUBSCRIBE", "YES START", "REPRENDRE", "ابدأ")
#: How far ahead of its receipt a reply's own ``dateTime`` may be: Orange's clock and ours differ a
#: little, but a reply dated in the future must not outrank every later decision.
MAX_REPLY_CLOCK_SKEW = timedelta(minutes=5)
_DIGITS = re.compile(rf"^{E164_DIGITS}$")
_NOT_WORD = re.compile(r"[\W_]+", re.UNICODE)
# Arabic tatweel only stretches a word (توقـف is توقف); it is a letter to Unicode, not a format mark.
_TATWEEL = "\u0640"
# Letters that Persian and Urdu keyboard layouts (and final-yeh spelling habits) type in place of the
# Arabic ones, which Unicode does not decompose: Farsi yeh and alef maksura are yeh, keheh is kaf,
# alef wasla is alef (ایقاف is إيقاف, الاشتراک is الاشتراك).
_ARABIC_VARIANTS = str.maketrans(
    {"\u06cc": "\u064a", "\u0649": "\u064a", "\u06a9": "\u0643", "\u0671": "\u0627"}
)


def normalize_keyword(text: str) -> str:
    """
    Return ``text`` as a keyword compares: accents and case dropped, punctuation and runs of
    spaces made one space, trimmed (``" Arrêt ! "`` -> ``"arret"``).

    Arabic letters with hamza compare equal to their bare forms, as accented letters do. Invisible
    characters are dropped, not made spaces: the tatweel (``توقـف`` is ``توقف``) and every format
    character (zero-width joiner and non-joiner, zero-width space, BOM, left-to-right,
    right-to-left and Arabic letter marks), so ``"ST\u200bOP"`` is ``"stop"``. The Farsi yeh,
    alef maksura, keheh and alef wasla that other keyboard layouts type compare equal to the Arabic
    yeh, kaf and alef.

    :param text: The text of a reply, or a configured keyword.
    """
    decomposed = unicodedata.normalize("NFKD", text)
    bare = "".join(
        c
        for c in decomposed
        if not unicodedata.combining(c) and c != _TATWEEL and unicodedata.category(c) != "Cf"
    )
    return _NOT_WORD.sub(" ", bare.casefold().translate(_ARABIC_VARIANTS)).strip()


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


@functools.lru_cache(maxsize=4)
def keyword_lists(out_value: str | None, in_value: str | None) -> tuple[frozenset[str], frozenset[str]]:
    """
    Read the ``[orange_sms] opt_out_keywords`` and ``opt_in_keywords`` options' values.

    :param out_value: The opt-out keywords option; ``None`` or blank gives the defaults.
    :param in_value: The opt-in keywords option; ``None`` or blank gives the defaults.
    :raises ValueError: When one is set but holds no keyword, or a keyword is in both.
    """
    out_words = parse_keywords(out_value, DEFAULT_OPT_OUT_KEYWORDS, OPT_OUT_KEYWORDS)
    in_words = parse_keywords(in_value, DEFAULT_OPT_IN_KEYWORDS, OPT_IN_KEYWORDS)
    both = out_words & in_words
    if both:
        raise ValueError(
            f"[{SECTION}] {OPT_OUT_KEYWORDS} and {OPT_IN_KEYWORDS} share {sorted(both)}: a keyword "
            "cannot both add and remove a number"
        )
    return out_words, in_words


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


def reply_decided_at(sent_at: datetime | None, received_at: datetime) -> datetime:
    """
    Return when a keyword reply decided: its own ``dateTime``; its receipt when it has none, or when
    it claims to be more than :data:`MAX_REPLY_CLOCK_SKEW` after its receipt (a reply dated in the
    future must not outrank every later decision). An old ``dateTime`` stays: Orange may deliver
    replies late.

    :param sent_at: The reply's ``dateTime`` (aware), if it had one.
    :param received_at: When the receiver accepted it (aware).
    """
    if sent_at is None or sent_at > received_at + MAX_REPLY_CLOCK_SKEW:
        return received_at
    return sent_at


def variable_key(number: str) -> str:
    """
    Return the Variable key of ``number`` on the list.

    :param number: E.164 with or without ``+`` or ``tel:`` (``+2250700000001``).
    :raises ValueError: When ``number`` is not an E.164 number.
    """
    digits = number.removeprefix("tel:").removeprefix("+")
    if not _DIGITS.fullmatch(digits):
        raise ValueError(f"Invalid phone number for the opt-out list: {number!r} (E.164 expected)")
    return KEY_PREFIX + digits


def operator_variable_key(number: str) -> str:
    """
    Return the key of the Variable holding the list operators' decision on ``number``.

    :param number: E.164 with or without ``+`` or ``tel:`` (``+2250700000001``).
    :raises ValueError: When ``number`` is not an E.164 number.
    """
    return variable_key(number) + OPERATOR_KEY_SUFFIX


def number_of_key(key: str) -> str | None:
    """
    Return the number (E.164 with ``+``) whose opt-out Variable ``key`` is, or ``None`` for another key.

    :param key: A Variable key (either of a number's two keys).
    """
    digits = key.removeprefix(KEY_PREFIX).removesuffix(OPERATOR_KEY_SUFFIX)
    if not key.startswith(KEY_PREFIX) or not _DIGITS.fullmatch(digits):
        return None
    return "+" + digits


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
    :param received_at: For a reply, when the receiver got it, ISO 8601 in UTC (``None`` in records
        written before it was kept, and for the operators' decisions).
    """

    number: str
    opted_out: bool
    at: str
    source: str
    keyword: str | None = None
    message_id: str | None = None
    received_at: str | None = None

    def to_json(self) -> str:
        """Return the record as the Variable's value."""
        return json.dumps(asdict(self), ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_json(cls, value: str | dict[str, Any]) -> OptOutRecord:
        """
        Read a record written by :meth:`to_json`.

        :param value: The Variable's value (text, or already parsed).
        :raises ValueError: When it is not such a record (its ``at`` included).
        """
        data = json.loads(value) if isinstance(value, str) else value
        if not isinstance(data, dict) or not isinstance(data.get("opted_out"), bool):
            raise ValueError(f"Not an opt-out record: {str(value)[:80]!r}")
        try:
            record = cls(
                number=str(data["number"]),
                opted_out=data["opted_out"],
                at=data["at"],
                source=str(data["source"]),
                keyword=data.get("keyword"),
                message_id=data.get("message_id"),
                received_at=data.get("received_at"),
            )
        except KeyError as exc:
            raise ValueError(f"Opt-out record without {exc.args[0]!r}: {str(value)[:80]!r}") from None
        record.decided_at()  # an unreadable time makes it no record, rather than an error later
        record.known_at()
        return record

    @classmethod
    def from_reply(
        cls,
        action: str,
        number: str,
        message: str,
        *,
        message_id: str | None,
        sent_at: datetime | None,
        received_at: datetime,
    ) -> OptOutRecord:
        """
        The decision of a keyword reply, dated by :func:`reply_decided_at`.

        :param action: :data:`OPT_OUT` or :data:`OPT_IN` (:func:`keyword_action`).
        :param number: The sender, E.164 with ``+``.
        :param message: The reply's text.
        :param message_id: Orange's ``messageId``, if any.
        :param sent_at: The reply's ``dateTime`` (aware), if it had one.
        :param received_at: When the receiver accepted it (aware).
        """
        return cls(
            number=number,
            opted_out=action == OPT_OUT,
            at=reply_decided_at(sent_at, received_at).astimezone(timezone.utc).isoformat(),
            source="inbound",
            keyword=normalize_keyword(message),
            message_id=message_id or None,
            received_at=received_at.astimezone(timezone.utc).isoformat(),
        )

    def decided_at(self) -> datetime:
        """
        Return :attr:`at` as an aware datetime in UTC.

        :raises ValueError: When :attr:`at` is not an ISO 8601 time that UTC can hold.
        """
        return _utc(self.at, "at")

    def known_at(self) -> datetime:
        """
        Return when the decision became known: :attr:`received_at` for a reply that has it, else
        :meth:`decided_at`.

        :raises ValueError: When :attr:`received_at` is not an ISO 8601 time that UTC can hold.
        """
        return self.decided_at() if self.received_at is None else _utc(self.received_at, "received_at")

    def counts_from(self, now: datetime | None = None) -> datetime:
        """
        Return the time this decision counts from against the operators' decisions: :attr:`at`; for a
        STOP, when the receiver got it if that is later (Orange may hold a reply back: a removal or
        an erase made before the STOP reached Airflow was made without it, and must not undo it); and
        ``now`` when that is further ahead of ``now`` than :data:`MAX_REPLY_CLOCK_SKEW` (a record
        dated in the future, as earlier versions could store, does not outrank every later decision).

        A START counts from its own ``dateTime`` only: a late START does not outrank an import made
        after it was sent. Between a number's own replies, :meth:`supersedes` orders by ``dateTime``.

        :param now: The present (defaults to now, UTC).
        """
        now = now or datetime.now(timezone.utc)
        at = max(self.decided_at(), self.known_at()) if self.opted_out else self.decided_at()
        return now if at > now + MAX_REPLY_CLOCK_SKEW else at

    def supersedes(self, other: OptOutRecord | None) -> bool:
        """
        Whether this record should replace ``other``: it is newer (ties: the later writer wins).

        A stored record dated further ahead than :data:`MAX_REPLY_CLOCK_SKEW` (written by an
        earlier version) was stored before this one came: it is replaced.

        :param other: The stored record, if any.
        """
        if other is None:
            return True
        if other.decided_at() > datetime.now(timezone.utc) + MAX_REPLY_CLOCK_SKEW:
            return True
        return self.decided_at() >= other.decided_at()


def latest_decision(*records: OptOutRecord | None) -> OptOutRecord | None:
    """
    Return the decision that holds among a number's records: the latest; on a tie, an opt-out.

    Each counts from :meth:`OptOutRecord.counts_from` (never far in the future; a STOP from when it
    was known, if later than when it was sent). The list operators
    record their decisions to the whole second, as Orange dates replies: a STOP sent in the second
    an operator's decision counts from ties with it, and the opt-out holds.

    :param records: The number's records (the receiver's and the operators'), ``None`` when absent.
    """
    present = [r for r in records if r is not None]
    if not present:
        return None
    now = datetime.now(timezone.utc)
    return max(present, key=lambda r: (r.counts_from(now), r.opted_out))


def _utc(value: str, name: str) -> datetime:
    """``value`` (ISO 8601) as an aware datetime in UTC; naive times are UTC."""
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        if moment.tzinfo is None:
            return moment.replace(tzinfo=timezone.utc)
        return moment.astimezone(timezone.utc)
    except (AttributeError, TypeError, ValueError, OverflowError):
        raise ValueError(f"Opt-out record with an unreadable time {name}={value!r}") from None
