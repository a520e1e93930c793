"""Answer statuses end to end on the real sheet, bundled model and index: answered, no_official_answer with
see-also entries, ambiguous with choices, no_match and error — in the object and in its JSON record."""

from __future__ import annotations

import copy
import json

import pytest

from bot.answer import MESSAGES, STATUSES
from bot.search import MAX_CHOICES, Searcher, decide


def _record(answer) -> dict:
    return json.loads(json.dumps(answer.to_json(), ensure_ascii=False))


@pytest.mark.parametrize("query, expected", [
    ("RDPのポートを変更する意味は？", "qa-4"),
    ("How should we store admin passwords?", "qa-5"),
    ("ベンダーのリモート保守は時間を決めるべき？", "qa-10"),  # issue 10's examples: qa-8 looks alike
    ("Should vendor remote maintenance only be allowed at fixed hours?", "qa-10"),
])
def test_answered(bot, query, expected):
    answer = bot.ask(query)
    assert (answer.status, answer.answered, answer.entry.id) == ("answered", True, expected)
    assert answer.choices == [] and answer.see_also == [] and answer.message == ""
    record = _record(answer)
    assert record["status"] == "answered" and record["choices"] == [] and record["answer"]["see_also"] == []


@pytest.mark.parametrize("query, lang, expected", [
    ("パワポの資料はもらえますか", "ja", {"archive-2", "archive-3"}),
    ("パワポの資料と踏み台サーバーとVLANの構成図はもらえますか", "ja", {"archive-2"}),
    ("Can I get the PowerPoint with the jump server and VLAN diagram?", "en", {"archive-2"}),
])
def test_no_official_answer_shows_the_entries_that_meet_the_need(bot, query, lang, expected):
    answer = bot.ask(query)
    assert answer.status == "no_official_answer" and answer.answered and answer.entry.id in expected
    assert not answer.entry.has_answer and answer.choices == []
    assert [e.id for e in answer.see_also] == list(answer.entry.see_also) == ["archive-1", "other-1"]
    assert all(e.has_answer for e in answer.see_also)
    assert answer.message == MESSAGES["see_also"][lang]
    assert not {e.id for e in answer.related} & {"archive-1", "other-1", answer.entry.id}  # shown once
    see_also = _record(answer)["answer"]["see_also"]
    assert [s["id"] for s in see_also] == ["archive-1", "other-1"]
    assert set(see_also[0]) == {"id", "question", "question_en", "answer", "answer_en", "citations"}
    assert see_also[0]["answer"] == answer.see_also[0].answer and see_also[0]["citations"][0]["id"] == "archive-1"


@pytest.mark.parametrize("query", ["今日の天気は？", "What time is lunch?"])
def test_no_match(bot, query):
    answer = bot.ask(query)
    assert (answer.status, answer.answered, answer.entry) == ("no_match", False, None)
    assert answer.choices == [] and answer.see_also == [] and len(answer.related) == 3
    assert _record(answer)["status"] == "no_match" and _record(answer)["answer"] is None


@pytest.mark.parametrize("query", ["", "   ", "？？"])
def test_empty_question_is_an_error(bot, query):
    answer = bot.ask(query)
    assert (answer.status, answer.answered, answer.hits) == ("error", False, [])
    assert answer.error and _record(answer)["status"] == "error"


#: Two entries on vendors' remote access that both fit (qa-8: vendors' remote lines, qa-10: set hours for their work).
VENDOR_QUESTION = "How should we handle vendors?"


def test_ambiguous_offers_the_close_entries_and_answers_none(bot):
    """The real ranking of a question two entries fit, decided with an ambiguity rule: the bot offers the close
    entries instead of one. (The rule fitted on today's tune.jsonl has a gap of 0-0.02 — little ambiguity pays
    there — so the rule here is set just around this question's own top scores.)"""
    top, second = (h.score for h in bot.ask(VENDOR_QUESTION).hits[:2])
    unsure = copy.copy(bot)
    unsure.searcher = Searcher(bot.index, bot.model, calibration={
        **bot.searcher.calibration, "threshold": top + 0.01, "thresholds": {}, "ambiguity_gap": top - second + 0.01,
        "choice_floor": second - 0.01})
    answer = unsure.ask(VENDOR_QUESTION)
    assert answer.status == "ambiguous", [(h.entry.id, round(h.score, 3)) for h in answer.hits]
    assert answer.entry is None and not answer.answered and answer.citations == []
    assert 2 <= len(answer.choices) <= MAX_CHOICES and answer.choices == answer.hits[: len(answer.choices)]
    assert {h.entry.id for h in answer.choices} >= {"qa-8", "qa-10"}
    assert answer.message == MESSAGES["ambiguous"]["en"]
    assert not {h.entry.id for h in answer.choices} & {e.id for e in answer.related}
    choices = _record(answer)["choices"]
    assert [c["id"] for c in choices] == [h.entry.id for h in answer.choices]
    assert set(choices[0]) == {"id", "question", "question_en", "score"}
    assert _record(answer)["answer"] is None and _record(answer)["status"] == "ambiguous"


def test_decision_rule():
    calibration = {"threshold": 0.5, "ambiguity_gap": 0.1, "choice_floor": 0.3}
    assert decide([0.9, 0.3], calibration) == ("answer", 0)
    assert decide([0.9, 0.85], calibration) == ("answer", 0)  # a confident answer is never turned into choices
    assert decide([0.45, 0.40, 0.38, 0.37], calibration) == ("ambiguous", 3)  # at most MAX_CHOICES
    assert decide([0.45, 0.40, 0.2], calibration) == ("ambiguous", 2)
    assert decide([0.45, 0.30], calibration) == ("no_match", 0)  # not close
    assert decide([0.29, 0.28], calibration) == ("no_match", 0)  # neither plausible
    assert decide([], calibration) == ("no_match", 0)
    assert decide([0.45, 0.44], {"threshold": 0.5}) == ("no_match", 0)  # no gap fitted: never ambiguous


def test_every_status_is_documented():
    assert STATUSES == ("answered", "no_official_answer", "ambiguous", "no_match", "error")


def test_every_official_question_pasted_verbatim_gets_its_own_entry(bot):
    """Staff paste the sheet's own questions (some run to hundreds of characters): each, in Japanese and in its
    English translation, must get its own entry as the answer (or, for an entry without an official answer, that
    entry with status no_official_answer)."""
    wrong = []
    for entry in bot.entries.values():
        for text in (entry.question, entry.question_en):
            answer = bot.ask(text)
            expected = "answered" if entry.has_answer else "no_official_answer"
            got = (answer.status, answer.entry.id if answer.entry else None)
            if got != (expected, entry.id):
                wrong.append((entry.id, text[:40], got, [(h.entry.id, round(h.score, 3)) for h in answer.hits[:3]]))
    assert len(bot.entries) >= 17 and not wrong, wrong
