"""SMS segment counting, GSM-7 look-alikes and the cost of a text before sending."""

from __future__ import annotations

import dataclasses
import unicodedata

import pytest

from airflow_provider_orange_sms.segments import (
    GSM7_BASIC_TABLE,
    GSM7_EXTENSION,
    GSM7_LOOKALIKES,
    GSM7_TRANSLITERATIONS,
    MessageCost,
    gsm7_lookalikes,
    is_gsm7,
    message_cost,
    sms_segments,
    to_gsm7,
)

EMOJI = "\U0001f600"  # outside the BMP: a surrogate pair, 2 UTF-16 code units
A = "a"  # 1 septet
EURO = "€"  # extension table: 2 septets
AA = "á"  # not GSM-7, 1 code unit
ARABIC = "\u0645\u0631\u062d\u0628\u0627"  # marhaba

BASIC = GSM7_BASIC_TABLE.replace("\x1b", "")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("", ("GSM-7", 1), id="empty-is-one-sms"),
        pytest.param("Hello", ("GSM-7", 1), id="ascii"),
        pytest.param(BASIC, ("GSM-7", 1), id="whole-basic-table-127"),
        pytest.param("".join(sorted(GSM7_EXTENSION)), ("GSM-7", 1), id="whole-extension-table"),
        # GSM-7 length boundaries.
        pytest.param(A * 160, ("GSM-7", 1), id="160-septets"),
        pytest.param(A * 161, ("GSM-7", 2), id="161-septets"),
        pytest.param(A * 306, ("GSM-7", 2), id="153x2-septets"),
        pytest.param(A * 307, ("GSM-7", 3), id="307-septets"),
        # Extension characters cost 2 septets.
        pytest.param(EURO, ("GSM-7", 1), id="euro"),
        pytest.param("^", ("GSM-7", 1), id="caret"),
        pytest.param("{", ("GSM-7", 1), id="brace"),
        pytest.param("\f", ("GSM-7", 1), id="form-feed"),
        pytest.param(EURO * 80, ("GSM-7", 1), id="80-euros-160-septets"),
        pytest.param("{" * 81, ("GSM-7", 2), id="81-braces-162-septets"),
        pytest.param(A * 159 + "^", ("GSM-7", 2), id="159-plus-caret-161-septets"),
        # 153 euros are 306 septets, but a segment holds 76 of them (152 septets): 3, not 2.
        pytest.param(EURO * 153, ("GSM-7", 3), id="153-euros-unsplittable"),
        # Extension character on the 153rd septet: ESC would end segment 1, so the pair moves on.
        pytest.param(A * 152 + EURO + A * 152, ("GSM-7", 3), id="euro-straddles-153"),
        pytest.param(A * 151 + EURO + A * 153, ("GSM-7", 2), id="euro-ends-at-153"),
        # Which characters are GSM-7.
        pytest.param("Ç", ("GSM-7", 1), id="capital-c-cedilla-gsm"),
        pytest.param("ç", ("UCS-2", 1), id="small-c-cedilla-not-gsm"),
        pytest.param("é", ("GSM-7", 1), id="e-acute-gsm"),
        pytest.param("É", ("GSM-7", 1), id="capital-e-acute-gsm"),
        pytest.param("à", ("GSM-7", 1), id="a-grave-gsm"),
        pytest.param("á", ("UCS-2", 1), id="a-acute-not-gsm"),
        pytest.param("È", ("UCS-2", 1), id="capital-e-grave-not-gsm"),
        pytest.param("ê", ("UCS-2", 1), id="e-circumflex-not-gsm"),
        pytest.param("\u2018hi\u2019", ("UCS-2", 1), id="curly-single-quotes"),
        pytest.param("\u201chi\u201d", ("UCS-2", 1), id="curly-double-quotes"),
        pytest.param("`", ("UCS-2", 1), id="backtick-not-gsm"),
        pytest.param("\t", ("UCS-2", 1), id="tab-not-gsm"),
        pytest.param("\x1b", ("UCS-2", 1), id="literal-esc-not-gsm"),
        pytest.param("a\x1b(", ("UCS-2", 1), id="literal-esc-is-not-an-escape"),
        pytest.param(ARABIC, ("UCS-2", 1), id="arabic"),
        pytest.param(A * 200 + "ç", ("UCS-2", 3), id="one-non-gsm-makes-all-ucs2"),
        # UCS-2 length boundaries, in code units.
        pytest.param(AA * 70, ("UCS-2", 1), id="70-units"),
        pytest.param(AA * 71, ("UCS-2", 2), id="71-units"),
        pytest.param(AA * 134, ("UCS-2", 2), id="67x2-units"),
        pytest.param(AA * 135, ("UCS-2", 3), id="135-units"),
        pytest.param(EURO * 70 + AA, ("UCS-2", 2), id="euro-is-1-unit-in-ucs2"),
        # Emoji are surrogate pairs.
        pytest.param(EMOJI, ("UCS-2", 1), id="emoji"),
        pytest.param(EMOJI * 35, ("UCS-2", 1), id="35-emoji-70-units"),
        pytest.param(EMOJI * 35 + A, ("UCS-2", 2), id="35-emoji-plus-1-71-units"),
        # 67 emoji are 134 units, but a segment holds 33 of them (66 units): 3, not 2.
        pytest.param(EMOJI * 67, ("UCS-2", 3), id="67-emoji-unsplittable"),
        # Surrogate pair on the 67th unit: the high surrogate would end segment 1, so the pair moves on.
        pytest.param(AA * 66 + EMOJI + AA * 66, ("UCS-2", 3), id="emoji-straddles-67"),
        pytest.param(AA * 65 + EMOJI + AA * 67, ("UCS-2", 2), id="emoji-ends-at-67"),
    ],
)
def test_sms_segments(text, expected):
    assert sms_segments(text) == expected


def test_basic_table_is_the_gsm_03_38_default_alphabet():
    assert len(GSM7_BASIC_TABLE) == 128
    assert len(set(GSM7_BASIC_TABLE)) == 128
    # Spot checks of positions where look-alike tables usually go wrong.
    assert GSM7_BASIC_TABLE[0x00] == "@"
    assert GSM7_BASIC_TABLE[0x09] == "Ç"
    assert GSM7_BASIC_TABLE[0x1B] == "\x1b"
    assert GSM7_BASIC_TABLE[0x24] == "¤"
    assert GSM7_BASIC_TABLE[0x40] == "¡"
    assert GSM7_BASIC_TABLE[0x5F] == "§"
    assert GSM7_BASIC_TABLE[0x60] == "¿"
    assert GSM7_BASIC_TABLE[0x7F] == "à"
    assert set(GSM7_EXTENSION) == set("\f^{}\\[~]|€")
    assert not set(GSM7_EXTENSION) & set(GSM7_BASIC_TABLE)


def test_ascii_outside_gsm7_is_only_backtick_and_controls():
    printable = {chr(c) for c in range(0x20, 0x7F)}
    assert {c for c in printable if not is_gsm7(c)} == {"`"}


@pytest.mark.parametrize("value", [None, 42, b"hello"])
def test_sms_segments_rejects_non_text(value):
    with pytest.raises(TypeError, match=repr(value)):
        sms_segments(value)


@pytest.mark.parametrize(
    ("text", "lookalikes", "converted"),
    [
        pytest.param("Hello", [], "Hello", id="already-gsm"),
        pytest.param("", [], "", id="empty"),
        pytest.param(
            "It\u2019s \u201cfine\u201d \u2013 really\u2026",
            ["\u2019", "\u201c", "\u201d", "\u2013", "\u2026"],
            'It\'s "fine" - really...',
            id="smart-punctuation",
        ),
        pytest.param("\u2018a\u2019b\u2018", ["\u2018", "\u2019"], "'a'b'", id="first-appearance-once"),
        pytest.param("\u201ea\u201f", ["\u201e", "\u201f"], '"a"', id="low-and-reversed-double-quotes"),
        pytest.param("\u201aa\u201b", ["\u201a", "\u201b"], "'a'", id="low-and-reversed-single-quotes"),
        pytest.param("\u00abSalut\u00bb", ["\u00ab", "\u00bb"], '"Salut"', id="guillemets"),
        pytest.param("1\u20142\u22123", ["\u2014", "\u2212"], "1-2-3", id="em-dash-and-minus"),
        pytest.param("`code`\u00b4", ["`", "\u00b4"], "'code''", id="backtick-and-acute"),
        pytest.param("5\u00a0000\u202fF", ["\u00a0", "\u202f"], "5 000 F", id="unicode-spaces"),
        pytest.param("a\u200bb\ufeffc\u00ad", ["\u200b", "\ufeff", "\u00ad"], "abc", id="invisible-removed"),
        # Letters are not look-alikes: sûr is not sur (transliteration is separate, see below).
        pytest.param("reçu, sûr, jeûne", [], "reçu, sûr, jeûne", id="letters-kept"),
        pytest.param("C\u2019est sûr", [], "C'est sûr", id="letters-keep-the-text-ucs2"),
        # Nothing named when the text stays UCS-2 anyway: the look-alikes cost nothing extra.
        pytest.param("\u201c" + ARABIC + "\u201d", [], '"' + ARABIC + '"', id="arabic-stays-ucs2"),
        pytest.param("Hi \u2013 " + EMOJI, [], "Hi - " + EMOJI, id="emoji-stays-ucs2"),
        pytest.param("\u2022 item", [], "\u2022 item", id="bullet-has-no-gsm-form"),
        pytest.param("\u2019\x1b", [], "'\x1b", id="literal-esc-stays-ucs2"),
    ],
)
def test_lookalikes_and_to_gsm7(text, lookalikes, converted):
    assert gsm7_lookalikes(text) == lookalikes
    assert to_gsm7(text) == converted
    if lookalikes:
        assert is_gsm7(converted)


@pytest.mark.parametrize(
    ("text", "lookalikes", "converted"),
    [
        pytest.param("reçu", ["ç"], "recu", id="small-c-cedilla-to-c"),
        pytest.param("Déjà là, São", ["ã"], "Déjà là, Sao", id="only-accents-gsm-lacks"),
        pytest.param("Ça coûte où ?", ["û"], "Ça coute où ?", id="french"),
        pytest.param("C\u2019est sûr", ["\u2019", "û"], "C'est sur", id="punctuation-and-letters"),
        pytest.param("Árbol señor", ["Á"], "Arbol señor", id="spanish"),
        pytest.param("œuvre", ["œ"], "oeuvre", id="ligature-to-two-letters"),
        pytest.param("jeûne " + EMOJI, [], "jeune " + EMOJI, id="emoji-stays-ucs2"),
    ],
)
def test_transliteration_when_asked(text, lookalikes, converted):
    assert gsm7_lookalikes(text, transliterate=True) == lookalikes
    assert to_gsm7(text, transliterate=True) == converted
    if lookalikes:
        assert is_gsm7(converted)


@pytest.mark.parametrize("table", [GSM7_LOOKALIKES, GSM7_TRANSLITERATIONS])
def test_lookalike_table_maps_non_gsm_characters_to_gsm_text(table):
    for char, stand_in in table.items():
        assert len(char) == 1, char
        assert not is_gsm7(char), f"U+{ord(char):04X} is GSM-7 already"
        assert is_gsm7(stand_in), f"U+{ord(char):04X} maps to non-GSM {stand_in!r}"


def test_no_letter_is_a_lookalike():
    """Look-alikes are punctuation, spaces and invisible characters: a letter changes a word."""
    letters = [char for char in GSM7_LOOKALIKES if unicodedata.category(char) in ("Lu", "Ll", "Lt", "Lo")]
    assert letters == []  # U+02BC, a modifier letter (Lm), is an apostrophe


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("", MessageCost("GSM-7", 1, 0), id="empty"),
        pytest.param(EURO, MessageCost("GSM-7", 1, 1), id="euro-1-char-2-septets"),
        pytest.param(EMOJI, MessageCost("UCS-2", 1, 1), id="emoji-1-char-2-units"),
        pytest.param(A * 161, MessageCost("GSM-7", 2, 161), id="161"),
        pytest.param("It\u2019s" * 40, MessageCost("UCS-2", 3, 160), id="curly-apostrophe-ucs2"),
        pytest.param(to_gsm7("It\u2019s" * 40), MessageCost("GSM-7", 1, 160), id="after-to-gsm7"),
    ],
)
def test_message_cost(text, expected):
    assert message_cost(text) == expected


def test_message_cost_is_frozen():
    cost = message_cost("hi")
    with pytest.raises(dataclasses.FrozenInstanceError):
        cost.segments = 0
