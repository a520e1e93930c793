"""Evaluation: metric plumbing on a hand-made case with known answers, then the real bot against its targets."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from bot.ablation import ABLATIONS, ASKS, COMPANION, DENSE, INTENT, LEXICAL, SignalCache, ablation
from bot.entries import TUNE_FILE, Entry
from bot.eval_report import format_report
from bot.evaluate import (
    METRICS,
    OUT_OF_SCOPE,
    Report,
    confusions,
    encode,
    evaluate,
    search_rows,
    threshold_sweep,
)
from bot.queries import LabelledQuery, read_queries
from bot.search import FEATURES, Hit, SearchResult

ROOT = Path(__file__).resolve().parents[1]
TEST_FILE = ROOT / "data" / "eval" / "test.jsonl"

# --------------------------------------------------------------------------- a fake bot whose rankings are fixed

#: query -> (ranked entry ids, confidence of the first); the threshold is 0.5.
RANKINGS = {
    "right first": (["a", "b", "c"], 0.9),  # expects a: rank 1, answered, correct
    "right second": (["a", "b", "c"], 0.6),  # expects b: rank 2, answered with the wrong entry
    "alternative fifth": (["a", "b", "e", "f", "d"], 0.3),  # expects c or d: rank 5, not answered
    "off topic answered": (["a"], 0.7),  # out of scope, answered: a false answer
    "off topic declined": (["b"], 0.2),  # out of scope, declined
    "torn between": (["a", "b"], 0.55),  # expects b: the bot offers a and b ("which did you mean?")
    "entry without answer": (["n"], 0.8),  # expects n, which has no official answer: status no_official_answer
}
AMBIGUOUS = {"torn between"}
QUERIES = [
    LabelledQuery("right first", "ja", ("a",), 1),
    LabelledQuery("right second", "ja", ("b",), 2),
    LabelledQuery("alternative fifth", "en", ("c", "d"), 3),
    LabelledQuery("off topic answered", "en", (), 4, "near"),
    LabelledQuery("off topic declined", "ja", (), 5, "far"),
    LabelledQuery("torn between", "en", ("b",), 6, "confusable"),
    LabelledQuery("entry without answer", "ja", ("n",), 7),
]


def _entry(entry_id: str) -> Entry:
    answer = "" if entry_id == "n" else f"answer of {entry_id}"
    return Entry(id=entry_id, section="s", section_en="s", number=1, question=entry_id, answer=answer, source="f",
                 line=1)


class FakeSearcher:
    calibration = {"threshold": 0.5}
    index = SimpleNamespace(entries=[_entry(i) for i in "abcdefn"])

    def search(self, query: str, k: int = 5, vector: np.ndarray | None = None) -> SearchResult:
        ids, confidence = RANKINGS[query]
        hits = [Hit(entry=_entry(i), score=confidence / (n + 1), cosine=0.8, bm25=0.0, matched="question")
                for n, i in enumerate(ids[:k])]
        decision = "ambiguous" if query in AMBIGUOUS else "answer" if confidence >= 0.5 else "no_match"
        return SearchResult(query=query, lang="en", hits=hits, answered=decision == "answer", confidence=confidence,
                            threshold=0.5, decision=decision, choices=hits[:2] if decision == "ambiguous" else [])


class FakeBot:
    searcher = FakeSearcher()


@pytest.fixture(scope="module")
def fake_report() -> Report:
    return evaluate(FakeBot(), QUERIES, vectors=np.zeros((len(QUERIES), 1), dtype=np.float32), source="fake")


NDCG_SECOND = 1 / math.log2(3)  # one relevant entry at rank 2
NDCG_FIFTH_OF_TWO = (1 / math.log2(6)) / (1 + 1 / math.log2(3))  # one of two relevant entries, at rank 5


@pytest.mark.parametrize("group, expected", [
    ("all", {"n_queries": 7, "n_in_scope": 5, "n_out_of_scope": 2, "n_near": 1, "n_far": 1,
             "Recall@1": 2 / 5, "Recall@3": 4 / 5, "Recall@5": 1.0, "MRR@10": (1 + 1 / 2 + 1 / 5 + 1 / 2 + 1) / 5,
             "nDCG@10": (1 + NDCG_SECOND + NDCG_FIFTH_OF_TWO + NDCG_SECOND + 1) / 5,
             "answered_rate": 3 / 5, "correct_answer_rate": 2 / 5, "wrong_answer_rate": 1 / 5,
             "ambiguous_rate": 1 / 5, "choices_hold_right_rate": 1.0, "no_official_answer_rate": 1.0,
             "false_answer_rate": 1 / 2, "false_answer_near": 1.0, "false_answer_far": 0.0}),
    ("ja", {"n_queries": 4, "n_in_scope": 3, "n_out_of_scope": 1, "n_near": 0, "n_far": 1,
            "Recall@1": 2 / 3, "Recall@3": 1.0, "Recall@5": 1.0, "MRR@10": (1 + 1 / 2 + 1) / 3,
            "nDCG@10": (1 + NDCG_SECOND + 1) / 3,
            "answered_rate": 1.0, "correct_answer_rate": 2 / 3, "wrong_answer_rate": 1 / 3,
            "ambiguous_rate": 0.0, "choices_hold_right_rate": None, "no_official_answer_rate": 1.0,
            "false_answer_rate": 0.0, "false_answer_near": None, "false_answer_far": 0.0}),
    ("en", {"n_queries": 3, "n_in_scope": 2, "n_out_of_scope": 1, "n_near": 1, "n_far": 0,
            "Recall@1": 0.0, "Recall@3": 1 / 2, "Recall@5": 1.0, "MRR@10": (1 / 5 + 1 / 2) / 2,
            "nDCG@10": (NDCG_FIFTH_OF_TWO + NDCG_SECOND) / 2,
            "answered_rate": 0.0, "correct_answer_rate": 0.0, "wrong_answer_rate": 0.0,
            "ambiguous_rate": 1 / 2, "choices_hold_right_rate": 1.0, "no_official_answer_rate": None,
            "false_answer_rate": 1.0, "false_answer_near": 1.0, "false_answer_far": None}),
])
def test_metrics_of_known_rankings(fake_report, group, expected):
    got = fake_report.metrics[group]
    assert set(got) == set(expected)
    for name, value in expected.items():
        assert got[name] == (None if value is None else pytest.approx(value)), name


def test_rows_failures_and_confusions(fake_report):
    assert [r.rank for r in fake_report.rows] == [1, 2, 5, None, None, 2, 1]
    assert [r.status for r in fake_report.rows] == ["answered", "answered", "no_match", "answered", "no_match",
                                                    "ambiguous", "no_official_answer"]
    assert [r.q for r in fake_report.failures] == ["right second", "alternative fifth", "off topic answered",
                                                   "torn between"]
    assert confusions(fake_report.rows) == [("b", "a", 2), ("c | d", "a", 1), (OUT_OF_SCOPE, "a", 1)]
    assert list(fake_report.metrics) == ["all", "ja", "en"]


def test_threshold_sweep(fake_report):
    by_t = {round(p["threshold"], 2): p for p in threshold_sweep(fake_report.rows)}
    assert len(by_t) == 101
    assert by_t[0.0] == {"threshold": 0.0, "answered_rate": 1.0, "precision": pytest.approx(2 / 5),
                         "correct_answer_rate": pytest.approx(2 / 5), "false_answer_rate": 1.0}
    assert by_t[0.5] == {"threshold": 0.5, "answered_rate": pytest.approx(4 / 5), "precision": 0.5,
                         "correct_answer_rate": pytest.approx(2 / 5), "false_answer_rate": 0.5}
    assert by_t[1.0] == {"threshold": 1.0, "answered_rate": 0.0, "precision": None, "correct_answer_rate": 0.0,
                         "false_answer_rate": 0.0}


def test_json_and_table(fake_report):
    record = json.loads(json.dumps(fake_report.to_json()))
    assert record["threshold"] == 0.5
    assert set(METRICS) <= set(record["metrics"]["en"])
    assert record["queries"][2]["got"] == ["a", "b", "e", "f", "d"] and record["queries"][2]["rank"] == 5
    assert record["confusions"][0] == {"expected": "b", "ranked_first": "a", "count": 2}
    assert record["queries"][5]["status"] == "ambiguous" and record["queries"][5]["choices"] == ["a", "b"]
    assert record["queries"][3]["kind"] == "near"
    text = format_report(fake_report)
    assert "Recall@1" in text and "False answer (out of scope)" in text and "0.333" in text
    assert "False answer, near-domain" in text and "1 near-domain, 1 far" in text
    assert "b -> a x2" in text


def test_no_out_of_scope_queries_means_no_false_answer_rate():
    report = evaluate(FakeBot(), QUERIES[:3], vectors=np.zeros((3, 1)))
    assert report.metrics["all"]["false_answer_rate"] is None
    text = format_report(report)
    assert "False answer" not in text and "Correct answer" in text  # a metric no group has is left out


# --------------------------------------------------------------------------- the real bot


@pytest.mark.parametrize("query", [
    "警察に機器を回収されるまで何をしておけばいいですか",
    "Does changing the RDP port help?",
    "今日の天気は？",
    "ｐｐｔ　の資料はもらえますか？",  # full-width: normalised as the page does
])
def test_evaluation_sees_what_ask_answers(bot, query):
    row = evaluate(bot, [LabelledQuery(query, "ja", (), 1)]).rows[0]
    answer = bot.ask(query)
    assert list(row.got[:5]) == [h.entry.id for h in answer.hits]
    assert (row.answered, row.confidence) == (answer.answered, pytest.approx(answer.confidence))


@pytest.mark.slow
def test_cli_eval_meets_targets_on_test_queries(settings, built_index, cli):
    # in process with the session's model (tests/conftest.py `cli`); test_cli.py runs the CLI as a real process
    run = cli("--data", settings.data_dir, "--index", settings.index_dir, "eval", TEST_FILE, "--json")
    assert run.exit_code == 0, run.stderr
    report = json.loads(run.stdout)
    assert list(report["metrics"]) == ["all", "ja", "en"]
    for lang in ("ja", "en"):
        values = report["metrics"][lang]
        assert set(METRICS) <= set(values)
        assert values["Recall@1"] >= 0.95, (lang, values)
        assert values["Recall@3"] == 1.0, (lang, values)
        # issue 10's targets are >= 0.97 right and <= 0.03 near; the engine measures (docs/evaluation.md, round 11)
        # right 0.992 / 0.977, near-domain false answers 0.000 / 0.000. The right-answer floor sits three questions
        # under the target, so a data change that costs one or two is a trainer's call, not a red CI
        assert values["n_near"] >= 60 and values["false_answer_near"] <= 0.03, (lang, values)
        assert values["correct_answer_rate"] >= 0.95, (lang, values)
        assert values["ambiguous_rate"] <= 0.03 and values["false_answer_far"] <= 0.03, (lang, values)
    kinds = {q["kind"] for q in report["queries"]}
    assert kinds == {"in", "confusable", "near", "far"}
    assert len(report["queries"]) == sum(1 for line in TEST_FILE.read_text(encoding="utf-8").splitlines() if line)


def test_signal_families_cover_every_feature():
    """A new signal in search.FEATURES must be put in one family, or the ablation misreads it."""
    assert sorted(DENSE + LEXICAL + ASKS + COMPANION + INTENT) == sorted(FEATURES)
    assert all(set(features) <= set(FEATURES) for features in ABLATIONS.values())


@pytest.fixture(scope="module")
def labelled(bot) -> SimpleNamespace:
    """tune.jsonl and test.jsonl encoded once, and one signal cache: each refit below reuses both."""
    known = set(bot.entries)
    tune = read_queries(ROOT / "data" / TUNE_FILE, known)
    test = read_queries(TEST_FILE, known)
    return SimpleNamespace(tune=tune, tune_vectors=encode(bot, tune), test=test, test_vectors=encode(bot, test),
                           cache=SignalCache(bot))


def test_encode_reuses_the_builds_tuning_vectors_and_writes_no_cache(bot, settings, labelled, monkeypatch):
    """The build encoded tune.jsonl's queries into the index's vector cache: `encode` reads them from there (the
    same vectors) and sends only other questions to the model, without writing the cache."""
    import bot.evaluate as evaluate_module
    from bot.embed import encode_queries
    from bot.evaluate import as_asked
    from bot.vectorcache import CACHE_DIR

    cache_files = {p: (p.stat().st_size, p.stat().st_mtime_ns) for p in (settings.index_dir / CACHE_DIR).iterdir()}
    tune, test = labelled.tune[:20], labelled.test[:5]
    sent: list[str] = []

    def spy(model, texts):
        sent.extend(texts)
        return encode_queries(model, texts)

    monkeypatch.setattr(evaluate_module, "encode_queries", spy)
    vectors = encode(bot, tune + test)
    assert sent == [as_asked(q.q) for q in test]  # the tuning queries came from the cache
    fresh = encode_queries(bot.model, [as_asked(q.q) for q in tune + test])
    assert np.allclose(vectors, fresh, atol=1e-5)
    assert {p: (p.stat().st_size, p.stat().st_mtime_ns) for p in (settings.index_dir / CACHE_DIR).iterdir()} \
        == cache_files


@pytest.fixture(scope="module")
def ablated(bot, labelled) -> dict[str, Report]:
    names = ("all signals", "without asks_other", "without use_knn", "without intent", "dense only")
    subsets = {name: ABLATIONS[name] for name in names}
    return ablation(bot, labelled.test, labelled.test_vectors, tune=labelled.tune, tune_vectors=labelled.tune_vectors,
                    subsets=subsets, cache=labelled.cache)


def test_cached_signals_rank_as_the_bot_does(bot, labelled):
    """The cache only saves work: with the bot's calibration it gives the same rows as a fresh search."""
    queries, vectors = labelled.test[::10], labelled.test_vectors[::10]
    cached = search_rows(labelled.cache.with_calibration(bot.searcher.calibration), queries, vectors)
    assert cached == search_rows(bot.searcher, queries, vectors)
    assert {r.status for r in cached} >= {"answered", "no_match"}


def test_refit_on_tune_reproduces_the_built_calibration(bot, ablated):
    """`faqbot build` fits on tune.jsonl with every signal: the ablation's "all signals" refit is that fit (which
    also shows the held-out alternates, recomputed here from scratch, come out the same on every run)."""
    assert ablated["all signals"].threshold == pytest.approx(bot.searcher.calibration["threshold"])


def test_each_signal_family_pays(ablated):
    """Refitted on tune.jsonl only, measured on test.jsonl: the dense signals alone answer fewer questions
    right than all signals together, the asks_other signal (what the question asks for against what the entry
    gives), the companion encoder's neighbourhood vote (use_knn) and the intent classifier (intent) each add right
    answers."""
    score = {name: r.metrics["all"]["correct_answer_rate"] for name, r in ablated.items()}
    assert score["all signals"] > score["dense only"], score
    # measured (round 11): 0.985 vs without asks_other 0.977, without use_knn 0.981, without intent 0.970,
    # dense only 0.739 (round 10's data had asks_other and use_knn tie or lose on this part; round 11's
    # counter-examples made them pay again)
    assert score["all signals"] > score["without asks_other"], score
    assert score["all signals"] > score["without use_knn"], score
    assert score["all signals"] > score["without intent"], score
