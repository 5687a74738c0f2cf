"""How many SMS a text costs, and which characters push it out of GSM-7.

Pure functions, no Airflow and no HTTP, so an operator can tell the cost of a text before sending it.

The count follows 3GPP TS 23.038 (GSM 03.38) and TS 23.040:

* A text is GSM-7 when every character is in the default alphabet or its extension table;
  one other character makes the whole text UCS-2.
* GSM-7 counts septets: 1 per basic character, 2 per extension character (``ESC`` then the
  character: ``^ { } \\ [ ~ ] | €`` and form feed). UCS-2 counts UTF-16 code units: 1 per
  character of the Basic Multilingual Plane, 2 for one outside it (most emoji: a surrogate pair).
* One SMS carries 160 septets or 70 code units. A longer text is concatenated: the 6-byte header
  leaves 153 septets or 67 code units per segment. A segment never ends between the two septets of
  an extension character nor between the two halves of a surrogate pair, so a segment may hold 152
  septets or 66 code units and the count is not simply ``ceil(length / 153)``.

Decisions:

* **Empty text** is 1 segment, not 0: a network sends an empty SMS as one message and bills it.
  (:func:`~airflow_provider_orange_sms.recipients.messages.check_message` refuses an empty text anyway.)
* **A literal ESC** (U+001B) is not GSM-7: the septet 0x1B is the escape to the extension table,
  so it would swallow the next character instead of arriving as itself. A text holding one is UCS-2.
* **Look-alikes**: see :func:`gsm7_lookalikes` and :data:`GSM7_LOOKALIKES` (punctuation and
  spaces only); accented letters are replaced only when transliteration is asked for
  (``GSM7_TRANSLITERATIONS``).

Why hand-written: the PyPI packages checked (``gsm0338`` and ``gsmcodecs``: codecs with no segment
count; ``smsutil``: untyped, last release 2020, encodes a literal ESC as GSM-7; ``sms-counter``: a
0.0.1 on pydantic v1 that divides by 153 and so misses the unsplittable pairs) are either not
segment counters or not correct on the edge cases above, and the whole job is a few dozen lines.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Encoding names, as :func:`sms_segments` returns them.
__all__ = [
    "CONCAT_SEPTETS",
    "CONCAT_UNITS",
    "GSM7",
    "GSM7_BASIC_TABLE",
    "GSM7_EXTENSION",
    "GSM7_LOOKALIKES",
    "SINGLE_SEPTETS",
    "SINGLE_UNITS",
    "UCS2",
    "MessageCost",
    "gsm7_lookalikes",
    "is_gsm7",
    "message_cost",
    "sms_segments",
    "to_gsm7",
]

GSM7 = "GSM-7"
UCS2 = "UCS-2"

#: The GSM 03.38 default alphabet in code order (0x00-0x7F), 0x1B (ESC) included for the layout.
GSM7_BASIC_TABLE = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ"
    " !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
#: Characters of the default extension table; each is sent as ESC + a septet, so costs 2.
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")
_GSM7_BASIC = frozenset(GSM7_BASIC_TABLE) - {"\x1b"}

#: Septets in a single GSM-7 SMS, and in each segment of a concatenated one.
SINGLE_SEPTETS = 160
CONCAT_SEPTETS = 153
#: UTF-16 code units in a single UCS-2 SMS, and in each segment of a concatenated one.
SINGLE_UNITS = 70
CONCAT_UNITS = 67

#: ``replace_lookalikes`` value that also strips accents GSM-7 lacks (see ``GSM7_TRANSLITERATIONS``).
TRANSLITERATE = "transliterate"

#: Characters that make a text UCS-2 but have a GSM-7 stand-in a reader takes for the same
#: character: typographic quotes, dashes, the ellipsis, odd spaces, and invisible characters. They
#: are the punctuation and spaces Twilio's "Smart Encoding" replaces (its table is public in
#: TwilioDevEd's message-segment-calculator, ``SmartEncodingMap.ts``); where Twilio is odd we
#: differ: a no-break space becomes one space, not two, and the bullet has no stand-in. No letter is
#: here: ``sûr`` and ``sur``, ``jeûne`` and ``jeune`` are different words.
GSM7_LOOKALIKES: dict[str, str] = {
    # Quotes and apostrophes.
    "\u2018": "'",  # left single quotation mark
    "\u2019": "'",  # right single quotation mark
    "\u201a": "'",  # single low-9 quotation mark
    "\u201b": "'",  # single high-reversed-9 quotation mark
    "\u2032": "'",  # prime
    "\u02bc": "'",  # modifier letter apostrophe
    "\u00b4": "'",  # acute accent
    "`": "'",  # grave accent: not in GSM-7 despite being ASCII
    "\u201c": '"',  # left double quotation mark
    "\u201d": '"',  # right double quotation mark
    "\u201e": '"',  # double low-9 quotation mark
    "\u201f": '"',  # double high-reversed-9 quotation mark
    "\u2033": '"',  # double prime
    "\u00ab": '"',  # left-pointing double angle quotation mark
    "\u00bb": '"',  # right-pointing double angle quotation mark
    # Dashes.
    "\u2010": "-",  # hyphen
    "\u2011": "-",  # non-breaking hyphen
    "\u2012": "-",  # figure dash
    "\u2013": "-",  # en dash
    "\u2014": "-",  # em dash
    "\u2015": "-",  # horizontal bar
    "\u2212": "-",  # minus sign
    "\u2026": "...",  # horizontal ellipsis
    # Spaces.
    "\u00a0": " ",  # no-break space
    "\u2000": " ",  # en quad
    "\u2001": " ",  # em quad
    "\u2002": " ",  # en space
    "\u2003": " ",  # em space
    "\u2004": " ",  # three-per-em space
    "\u2005": " ",  # four-per-em space
    "\u2006": " ",  # six-per-em space
    "\u2007": " ",  # figure space
    "\u2008": " ",  # punctuation space
    "\u2009": " ",  # thin space
    "\u200a": " ",  # hair space
    "\u202f": " ",  # narrow no-break space (French typography before ; : ! ?)
    "\u205f": " ",  # medium mathematical space
    "\u3000": " ",  # ideographic space
    # Invisible: removed.
    "\u00ad": "",  # soft hyphen
    "\u200b": "",  # zero-width space
    "\u200c": "",  # zero-width non-joiner
    "\u200d": "",  # zero-width joiner
    "\u2060": "",  # word joiner
    "\ufeff": "",  # zero-width no-break space (BOM)
}

#: Letters whose accent GSM-7 lacks, and their plain forms: applied only when transliteration is
#: asked for (``replace_lookalikes="transliterate"``), since it changes words (``sûr`` → ``sur``).
#: à è é ì ò ù ä ö ü ñ å Ç and their GSM capitals are GSM-7 and stay as they are; ``ç`` becomes
#: ``c`` (not the GSM-7 ``Ç``: ``reÇu`` would read as a typo).
GSM7_TRANSLITERATIONS: dict[str, str] = {
    "á": "a",
    "â": "a",
    "ã": "a",
    "À": "A",
    "Á": "A",
    "Â": "A",
    "Ã": "A",
    "ç": "c",
    "ê": "e",
    "ë": "e",
    "È": "E",
    "Ê": "E",
    "Ë": "E",
    "í": "i",
    "î": "i",
    "ï": "i",
    "Ì": "I",
    "Í": "I",
    "Î": "I",
    "Ï": "I",
    "ó": "o",
    "ô": "o",
    "õ": "o",
    "Ò": "O",
    "Ó": "O",
    "Ô": "O",
    "Õ": "O",
    "ú": "u",
    "û": "u",
    "Ù": "U",
    "Ú": "U",
    "Û": "U",
    "ÿ": "y",
    "Ÿ": "Y",
    "œ": "oe",
    "Œ": "OE",
}


_ALL_STAND_INS = {**GSM7_LOOKALIKES, **GSM7_TRANSLITERATIONS}


@dataclass(frozen=True)
class MessageCost:
    """
    What a text costs before it is sent.

    :param encoding: ``"GSM-7"`` or ``"UCS-2"``.
    :param segments: SMS the network sends (and Orange bills) for it.
    :param characters: Length in Unicode code points, as ``max_message_length`` counts it.
    """

    encoding: str
    segments: int
    characters: int


def _septets(char: str) -> int | None:
    """Septets ``char`` takes in GSM-7, ``None`` when GSM-7 cannot carry it."""
    if char in _GSM7_BASIC:
        return 1
    if char in GSM7_EXTENSION:
        return 2
    return None


def is_gsm7(text: str) -> bool:
    """
    Tell whether every character of ``text`` can travel in GSM-7.

    :param text: The SMS text.
    """
    return all(_septets(char) is not None for char in text)


def _count(sizes: list[int], single: int, concat: int) -> int:
    """Segments for characters of ``sizes`` units, none split across two segments."""
    if sum(sizes) <= single:
        return 1
    segments, used = 1, 0
    for size in sizes:
        if used + size > concat:
            segments, used = segments + 1, 0
        used += size
    return segments


def sms_segments(text: str) -> tuple[str, int]:
    """
    Return the encoding of ``text`` and the number of SMS segments the network sends for it.

    :param text: The SMS text.
    :return: ``("GSM-7" | "UCS-2", segments)``; an empty text is ``("GSM-7", 1)``.
    :raises TypeError: When ``text`` is not a string.
    """
    if not isinstance(text, str):
        raise TypeError(f"Invalid SMS text {text!r}: expected a string")
    septets = [_septets(char) for char in text]
    if all(size is not None for size in septets):
        return GSM7, _count([size or 0 for size in septets], SINGLE_SEPTETS, CONCAT_SEPTETS)
    units = [2 if ord(char) > 0xFFFF else 1 for char in text]
    return UCS2, _count(units, SINGLE_UNITS, CONCAT_UNITS)


def _stand_ins(transliterate: bool) -> dict[str, str]:
    return _ALL_STAND_INS if transliterate else GSM7_LOOKALIKES


def to_gsm7(text: str, *, transliterate: bool = False) -> str:
    """
    Return ``text`` with every look-alike of :data:`GSM7_LOOKALIKES` replaced by its GSM-7 stand-in.

    Other characters are left as they are, so the result is still UCS-2 when ``text`` holds a
    character with no stand-in (Arabic, an emoji, ``û`` without ``transliterate``…): check with
    :func:`gsm7_lookalikes` first.

    :param text: The SMS text.
    :param transliterate: Also replace the letters of ``GSM7_TRANSLITERATIONS`` (``û`` → ``u``).
    """
    stand_ins = _stand_ins(transliterate)
    return "".join(stand_ins.get(char, char) for char in text)


def gsm7_lookalikes(text: str, *, transliterate: bool = False) -> list[str]:
    """
    Return the characters that alone make ``text`` UCS-2, in order of first appearance.

    Only when replacing them all (:func:`to_gsm7`) makes the text GSM-7: a text that stays UCS-2
    anyway (Arabic, an emoji, an accent GSM-7 lacks without ``transliterate``) costs the same with
    or without them, so nothing is named and the list is empty. Empty too when the text is already
    GSM-7.

    :param text: The SMS text.
    :param transliterate: Count the letters of ``GSM7_TRANSLITERATIONS`` as replaceable too.
    """
    if is_gsm7(text) or not is_gsm7(to_gsm7(text, transliterate=transliterate)):
        return []
    stand_ins = _stand_ins(transliterate)
    return list(dict.fromkeys(char for char in text if char in stand_ins))


def message_cost(text: str) -> MessageCost:
    """
    Return what sending ``text`` costs: encoding, segments and length.

    :param text: The SMS text.
    """
    encoding, segments = sms_segments(text)
    return MessageCost(encoding=encoding, segments=segments, characters=len(text))
