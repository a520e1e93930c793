"""The trainers' loop on the real index: review queue from the store, explain, eval --baseline, regressions."""

from __future__ import annotations

import json
import uuid

import pytest
from click.testing import CliRunner

from bot.cli import main
from bot.curate import REGRESSIONS_FILE
from bot.queries import read_queries

from .conftest import DATA


def cli(settings, *args, data=None, env=None):
    result = CliRunner().invoke(main, ["--data", str(data or settings.data_dir), "--index", str(settings.index_dir),
                                       *args], env=env)
    return result.exit_code, result.output


# --------------------------------------------------------------------------- explain


def test_explain_json_shows_signals_contributions_matched_text_and_status(settings, bot):
    code, out = cli(settings, "explain", "RDPのポート番号を変える意味ってある?", "--json")
    assert code == 0, out
    data = json.loads(out)
    answer = bot.ask("RDPのポート番号を変える意味ってある?")
    assert data["status"] == answer.status and data["threshold"] == round(answer.threshold, 4)
    assert [e["id"] for e in data["entries"]] == [h.entry.id for h in answer.hits]
    first, second = data["entries"][:2]
    assert first["score"] == pytest.approx(answer.confidence, abs=1e-4)
    assert data["gap"] == pytest.approx(first["score"] - second["score"], abs=1e-4)
    cal = bot.index.calibration
    used = [s for s in first["signals"] if s["contribution"] is not None]
    assert [s["name"] for s in used] == list(cal["features"])
    # contributions add up to the log-odds, whose logistic is the calibrated score
    assert sum(s["contribution"] for s in used) + data["bias"] == pytest.approx(first["log_odds"], abs=1e-3)
    assert 1 / (1 + pytest.importorskip("math").exp(-first["log_odds"])) == pytest.approx(first["score"], abs=1e-3)
    # the matched text is the entry's own text (an alternate's words, not only its field name)
    entry = bot.entries[first["id"]]
    texts = {"question": [entry.question], "question_en": [entry.question_en], "alt_ja": list(entry.alt_ja),
             "alt_en": list(entry.alt_en)}
    assert first["matched"]["text"] in texts[first["matched"]["field"]]


def test_explain_names_the_alternate_that_matched(settings, bot):
    alternate = bot.entries["qa-1"].alt_en[0]
    code, out = cli(settings, "explain", alternate)
    assert code == 0, out
    assert f'matched alt_en: "{alternate}" (cosine ' in out  # query vs passage embedding: close, not 1
    assert "Status: " in out and "threshold" in out and "bias" in out


# --------------------------------------------------------------------------- eval --baseline


def test_eval_baseline_lists_fixed_broken_unchanged_and_prints_failures(settings, bot, tmp_path):
    queries = tmp_path / "few.jsonl"
    rows = [{"q": "RDPのポートを変更する意味は？", "lang": "ja", "expect": ["qa-4"]},
            {"q": "How should we store admin passwords?", "lang": "en", "expect": ["qa-5"]},
            {"q": "今日の天気は？", "lang": "ja", "expect": []},
            {"q": "What is the weather today?", "lang": "en", "expect": ["qa-4"]}]  # mislabelled: must fail
    queries.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    code, out = cli(settings, "eval", str(queries), "--json")
    assert code == 0, out
    saved = json.loads(out)
    assert [q["q"] for q in saved["queries"]] == [r["q"] for r in rows]
    # the earlier run: the RDP question failed then, the password question passed then and the weather one failed
    saved["queries"][0].update(answered=False)
    saved["queries"][1].update(got=["qa-1"], answered=True)
    saved["queries"].append({"q": "a query since removed", "expect": ["qa-1"], "got": ["qa-1"], "answered": True})
    old = tmp_path / "old.json"
    old.write_text(json.dumps(saved, ensure_ascii=False), encoding="utf-8")

    code, out = cli(settings, "eval", str(queries), "--baseline", str(old), "--json")
    diff = json.loads(out)["baseline"]
    assert [i["q"] for i in diff["fixed"]] == ["RDPのポートを変更する意味は？", "How should we store admin passwords?"]
    assert diff["broken"] == [] and [i["q"] for i in diff["still_failing"]] == ["What is the weather today?"]
    assert [i["q"] for i in diff["still_passing"]] == ["今日の天気は？"]
    assert [i["q"] for i in diff["gone"]] == ["a query since removed"]

    saved["queries"][0].update(answered=True)  # now the other way round: a passing query breaks
    saved["queries"][3].update(got=["qa-4"], answered=True, expect=["qa-4"])
    old.write_text(json.dumps(saved, ensure_ascii=False), encoding="utf-8")
    code, out = cli(settings, "eval", str(queries), "--baseline", str(old))
    assert code == 0, out
    assert "Failing queries (1):" in out and "'What is the weather today?': expect qa-4" in out
    assert "1 broken" in out and "Broken (1):" in out


def test_eval_counts_the_test_parts_failures_without_listing_them(settings, built_index, data_copy, tmp_path):
    """The test part is never tuned on: its table says how many failed, not which (--show-failures lists them)."""
    test_part = data_copy / "eval" / "test.jsonl"
    rows = [{"q": "RDPのポートを変更する意味は？", "lang": "ja", "expect": ["qa-4"]},
            {"q": "What is the weather today?", "lang": "en", "expect": ["qa-4"]}]  # mislabelled: must fail
    test_part.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    code, out = cli(settings, "eval", str(test_part), data=data_copy)
    assert code == 0, out
    assert "Failing queries: 1, not listed" in out and "weather" not in out
    code, saved = cli(settings, "eval", str(test_part), "--json", data=data_copy)  # --json lists them on purpose
    assert code == 0 and "What is the weather today?" in saved
    old = tmp_path / "old.json"
    old.write_text(saved, encoding="utf-8")
    code, out = cli(settings, "eval", str(test_part), "--baseline", str(old), data=data_copy)
    assert code == 0 and "1 still failing" in out and "weather" not in out
    code, out = cli(settings, "eval", str(test_part), "--show-failures", data=data_copy)
    assert code == 0 and "Failing queries (1):" in out and "'What is the weather today?': expect qa-4" in out
    # another file is listed as before (the baseline test above)


def test_eval_refuses_a_baseline_that_is_not_an_eval_json(settings, built_index, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"metrics": {}}', encoding="utf-8")
    code, out = cli(settings, "eval", str(DATA / "eval" / "test.jsonl"), "--baseline", str(bad))
    assert code == 1 and "not a saved `faqbot eval --json` output" in out


def test_eval_reads_the_regressions_file(settings, built_index, data_copy, tmp_path):
    path = data_copy / REGRESSIONS_FILE
    path.write_text(json.dumps({"q": "RDPのポートを変更する意味は？", "lang": "ja", "expect": ["qa-4"]}) + "\n"
                    + json.dumps({"q": "Does changing the RDP port help?", "lang": "en", "expect": ["qa-9"]}) + "\n",
                    encoding="utf-8")
    few = tmp_path / "one.jsonl"
    few.write_text(json.dumps({"q": "今日の天気は？", "lang": "ja", "expect": []}) + "\n", encoding="utf-8")
    code, out = cli(settings, "eval", str(few), data=data_copy)
    assert code == 0, out
    assert "Regressions" in out and "1 of 2 still fixed" in out and "Broken again (1):" in out
    assert "'Does changing the RDP port help?': expect qa-9" in out


def test_every_regression_query_stays_fixed(bot):
    """CI: each question a trainer fixed (data/eval/regressions.jsonl) is still answered with its entry."""
    path = DATA / REGRESSIONS_FILE
    assert path.is_file(), "data/eval/regressions.jsonl is where accepted fixes are kept"
    for q in read_queries(path, set(bot.entries)):
        answer = bot.ask(q.q)
        got = answer.entry.id if answer.entry else None
        assert (got in q.expect) if q.expect else got is None, f"{path}:{q.line}: {q.q!r} now gives {got}"


# --------------------------------------------------------------------------- review


@pytest.fixture
def feedback(tmp_path):
    """A real SQLite store with the outcomes and votes the page would record."""
    from bot.store import open_store

    path = tmp_path / "feedback.sqlite3"
    store = open_store(path)

    def outcome(question, status, top, confidence=0.1, margin=None, lang="ja"):
        key = uuid.uuid4().hex
        store.record_outcome({"key": key, "session": "s", "lang": lang, "question": question, "status": status,
                              "entry_id": top[0] if status == "answered" else "", "confidence": confidence,
                              "margin": margin, "top": [{"id": t, "score": 0.1} for t in top], "build": "b"})
        return key

    for q in ["今日の天気は?", "今日の天気は？", "今日の天気は?", "今日の 天気は"]:  # one question, four spellings
        outcome(q, "no_match", ["qa-1"])
    outcome("RDPのポート番号を変えるのは意味ある", "no_match", ["qa-4"])
    outcome("Does changing the RDP port help?", "answered", ["qa-4", "qa-5"], confidence=0.99, margin=0.9, lang="en")
    outcome("パスワードの保管どうする", "answered", ["qa-5", "qa-4"], confidence=0.3, margin=0.5)
    key = outcome("バックアップはどこに置くべき", "answered", ["qa-9"], confidence=0.95, margin=0.8)
    store.set_vote({"key": key, "session": "s", "rating": "down", "reason": "wrong", "comment": "",
                    "question": "バックアップはどこに置くべき", "entry_id": "qa-9", "lang": "ja", "confidence": 0.95,
                    "status": "answered"})
    assert store.flush(10)
    store.close()
    return path


def test_review_json_groups_near_identical_questions_most_frequent_first(settings, bot, feedback):
    code, out = cli(settings, "review", "--json", env={"FAQBOT_FEEDBACK_DB": str(feedback)})
    assert code == 0, out
    groups = [json.loads(line) for line in out.splitlines()]
    assert all({"kind", "questions", "count", "suggested", "status"} <= set(g) for g in groups)
    first = groups[0]
    assert first["kind"] == "no_match" and first["count"] == 4 and first["status"] == "no_match"
    assert sorted(first["questions"]) == sorted(["今日の天気は?", "今日の 天気は"])  # normalised duplicates merged
    kinds = {g["questions"][0]: g for g in groups}
    assert kinds["RDPのポート番号を変えるのは意味ある"]["suggested"]["id"] == "qa-4"
    assert kinds["RDPのポート番号を変えるのは意味ある"]["suggested"]["question"] == bot.entries["qa-4"].question
    assert kinds["パスワードの保管どうする"]["kind"] == "low_confidence"
    down = kinds["バックアップはどこに置くべき"]
    assert down["kind"] == "downvoted" and down["suggested"]["id"] != "qa-9"  # never the entry voted down
    assert "Does changing the RDP port help?" not in kinds  # confident answers are not in the queue
    assert [g["count"] for g in groups] == sorted((g["count"] for g in groups), reverse=True)
    code, out = cli(settings, "review", "--since", "2999-01-01", env={"FAQBOT_FEEDBACK_DB": str(feedback)})
    assert code == 0 and "Nothing to review (0 outcomes, 0 votes read)" in out
    code, out = cli(settings, "review", env={"FAQBOT_FEEDBACK_DB": str(feedback.parent / "none.sqlite3")})
    assert code == 0 and "nothing to review" in out and not (feedback.parent / "none.sqlite3").exists()


def test_review_accept_adds_the_alternate_and_a_regression_reject_hides(settings, bot, feedback, data_copy):
    env = {"FAQBOT_FEEDBACK_DB": str(feedback)}
    code, out = cli(settings, "review", "--json", env=env, data=data_copy)
    groups = [json.loads(line) for line in out.splitlines()]
    number = next(g["group"] for g in groups if g["questions"][0] == "RDPのポート番号を変えるのは意味ある")
    code, out = cli(settings, "review", "--accept", str(number), env=env, data=data_copy)
    assert code == 0, out
    assert "added 'RDPのポート番号を変えるのは意味ある' to qa-4.alt_ja" in out and "faqbot build" in out
    yaml_text = (data_copy / "bilingual.yaml").read_text(encoding="utf-8")
    assert '      - "RDPのポート番号を変えるのは意味ある"' in yaml_text
    regression = [json.loads(x) for x in (data_copy / REGRESSIONS_FILE).read_text(encoding="utf-8").splitlines()]
    assert regression == [{"q": "RDPのポート番号を変えるのは意味ある", "lang": "ja", "expect": ["qa-4"]}]

    code, out = cli(settings, "review", "--reject", "1", env=env, data=data_copy)
    assert code == 0 and "Rejected group 1 (no_match, 4 question(s))" in out
    code, out = cli(settings, "review", "--json", env=env, data=data_copy)
    assert "the index is older than the data" in out  # accepted, not yet rebuilt: still reviewable
    left = [json.loads(line)["questions"][0] for line in out.splitlines() if line.startswith("{")]
    assert "RDPのポート番号を変えるのは意味ある" not in left and "今日の天気は?" not in left and left
    state = (feedback.parent / "review.json").read_text(encoding="utf-8")
    assert "天気" not in state and "RDP" not in state  # decisions keep hashes, never the questions
    code, out = cli(settings, "review", "--accept", "99", env=env, data=data_copy)
    assert code == 2 and "there is no group 99" in out
