"""The opt-out list's shared format: keywords, Variable keys, records and which one wins."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from airflow_provider_orange_sms.opt_out import (
    DEFAULT_OPT_IN_KEYWORDS,
    DEFAULT_OPT_OUT_KEYWORDS,
    OPT_IN,
    OPT_OUT,
    OptOutRecord,
    keyword_action,
    latest_decision,
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
        "Arrêter",
        "arreter !",
        "Désinscrire",
        "إيقاف",
        "ايقاف",
        "إلغاء الاشتراك",
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


NUMBER = "+2250700000001"
SENT = datetime(2026, 2, 10, 14, 30, tzinfo=timezone.utc)


def _reply(action: str, sent: datetime, received: datetime) -> OptOutRecord:
    return OptOutRecord.from_reply(
        action,
        NUMBER,
        "STOP" if action == OPT_OUT else "START",
        message_id="m",
        sent_at=sent,
        received_at=received,
    )


def _operators(opted_out: bool, at: datetime) -> OptOutRecord:
    return OptOutRecord(NUMBER, opted_out, at.isoformat(), "operator" if not opted_out else "import")


def test_a_stop_that_reached_airflow_after_a_removal_outranks_it_though_sent_before():
    """Orange held the STOP back: the removal was made without it, and must not undo it."""
    stop = _reply(OPT_OUT, sent=SENT, received=SENT + timedelta(minutes=5))
    removal = _operators(False, SENT + timedelta(minutes=2))
    assert latest_decision(stop, removal) is stop
    assert latest_decision(removal, stop) is stop
    assert stop.decided_at() == SENT  # still dated when it was sent
    assert stop.counts_from() == SENT + timedelta(minutes=5)


def test_a_removal_made_after_the_stop_was_known_outranks_it():
    stop = _reply(OPT_OUT, sent=SENT, received=SENT + timedelta(seconds=3))
    removal = _operators(False, SENT + timedelta(minutes=2))
    assert latest_decision(stop, removal) is removal


def test_a_late_start_counts_from_when_it_was_sent_so_an_import_made_since_holds():
    start = _reply(OPT_IN, sent=SENT, received=SENT + timedelta(minutes=5))
    imported = _operators(True, SENT + timedelta(minutes=2))
    assert latest_decision(start, imported) is imported


def test_between_replies_the_date_time_orders_them_however_late_one_arrives():
    stop = _reply(OPT_OUT, sent=SENT, received=SENT + timedelta(minutes=5))
    start = _reply(OPT_IN, sent=SENT + timedelta(minutes=1), received=SENT + timedelta(minutes=2))
    assert not stop.supersedes(start)  # the subscriber's last word was START


def test_when_a_reply_was_received_is_kept_and_older_records_without_it_still_read():
    stop = _reply(OPT_OUT, sent=SENT, received=SENT + timedelta(minutes=5))
    assert stop.received_at == (SENT + timedelta(minutes=5)).isoformat()
    assert OptOutRecord.from_json(stop.to_json()) == stop
    old = OptOutRecord.from_json(
        json.dumps({"number": NUMBER, "opted_out": True, "at": SENT.isoformat(), "source": "inbound"})
    )
    assert old.received_at is None
    assert old.counts_from() == SENT
    with pytest.raises(ValueError, match="received_at='yesterday'"):
        OptOutRecord.from_json(json.dumps({**json.loads(stop.to_json()), "received_at": "yesterday"}))


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


@pytest.mark.parametrize(
    ("typed", "keyword"),
    [
        ("\u0627\u06cc\u0642\u0627\u0641", "إيقاف"),  # Farsi yeh
        ("الغاء الاشتراک", "إلغاء الاشتراك"),  # keheh
        ("\u0671\u0644\u063a\u0627\u0621", "إلغاء"),  # alef wasla
    ],
)
def test_arabic_letters_other_keyboard_layouts_type_still_opt_out(typed, keyword):
    assert normalize_keyword(typed) == normalize_keyword(keyword)
    assert keyword_action(typed, OUT, IN) == OPT_OUT
