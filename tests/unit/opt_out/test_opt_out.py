"""The opt-out list's shared format: keywords, Variable keys, records and which one wins."""

from __future__ import annotations

import pytest

from airflow_provider_orange_sms.opt_out import (
    DEFAULT_OPT_IN_KEYWORDS,
    DEFAULT_OPT_OUT_KEYWORDS,
    OPT_IN,
    OPT_OUT,
    OptOutRecord,
    keyword_action,
    normalize_keyword,
    parse_keywords,
    variable_key,
)

OUT = parse_keywords(None, DEFAULT_OPT_OUT_KEYWORDS, "opt_out_keywords")
IN = parse_keywords(None, DEFAULT_OPT_IN_KEYWORDS, "opt_in_keywords")


@pytest.mark.parametrize(
    "reply",
    [
        "STOP",
        "stop",
        "Stop!",
        "  STOP  ",
        "stop all",
        "STOP   ALL",
        "Unsubscribe.",
        "ARRET",
        "Arrêt",
        "arrêt !",
        "DESABONNER",
        "désabonner",
        "إلغاء",
        "الغاء",
        "توقف",
    ],
)
def test_opt_out_keywords_ignore_case_accents_punctuation_and_spacing(reply):
    assert keyword_action(reply, OUT, IN) == OPT_OUT


@pytest.mark.parametrize("reply", ["START", "start", "Unstop"])
def test_opt_in_keywords(reply):
    assert keyword_action(reply, OUT, IN) == OPT_IN


@pytest.mark.parametrize("reply", ["stop sending me ads", "STOPS", "YES", "", "st op"])
def test_a_reply_that_is_not_exactly_a_keyword_does_nothing(reply):
    assert keyword_action(reply, OUT, IN) is None


def test_configured_keywords_replace_the_defaults():
    mine = parse_keywords("Halte, FIN ", DEFAULT_OPT_OUT_KEYWORDS, "opt_out_keywords")
    assert keyword_action("fin", mine, IN) == OPT_OUT
    assert keyword_action("STOP", mine, IN) is None


def test_a_set_but_empty_keyword_option_is_refused_naming_it():
    with pytest.raises(ValueError, match=r"opt_out_keywords=' , '"):
        parse_keywords(" , ", DEFAULT_OPT_OUT_KEYWORDS, "opt_out_keywords")


@pytest.mark.parametrize("number", ["+2250700000001", "tel:+2250700000001", "2250700000001"])
def test_the_variable_key_is_the_e164_digits(number):
    assert variable_key(number) == "orange_sms_opt_out_2250700000001"


@pytest.mark.parametrize("number", ["0700000001x", "+0123", "", "tel:+12"])
def test_a_bad_number_is_refused_naming_it(number):
    with pytest.raises(ValueError, match="Invalid phone number"):
        variable_key(number)


def test_records_round_trip_and_the_later_decision_wins():
    stop = OptOutRecord("+2250700000001", True, "2026-02-10T14:30:00Z", "inbound", "stop", "m1")
    start = OptOutRecord("+2250700000001", False, "2026-02-10T14:31:00+00:00", "inbound", "start", None)
    assert OptOutRecord.from_json(stop.to_json()) == stop
    assert start.supersedes(stop)
    assert not stop.supersedes(start)  # a STOP written after a later START does not win
    assert stop.supersedes(None)


def test_a_value_that_is_not_a_record_is_refused():
    with pytest.raises(ValueError, match="Not an opt-out record"):
        OptOutRecord.from_json('{"number": "+2250700000001"}')
    with pytest.raises(ValueError, match="without 'at'"):
        OptOutRecord.from_json('{"number": "+1", "opted_out": true, "source": "import"}')


@pytest.mark.parametrize(
    "text", ["توقـف", "\u200fتوقف\u061c", "\ufeffSTOP", "ST\u200bOP", "S\u200dTO\u200cP", "\u200eStop\u00ad"]
)
def test_invisible_characters_do_not_split_or_hide_a_keyword(text):
    assert keyword_action(text, frozenset({"stop", "توقف"}), frozenset()) == OPT_OUT
    assert normalize_keyword(text) in {"stop", "توقف"}
