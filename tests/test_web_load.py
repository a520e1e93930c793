"""Load: many API clients at once get exactly their own answers, every outcome and acknowledged vote is kept —
on one server with SQLite, and on two `faqbot serve` replicas sharing one PostgreSQL. The load benchmark's
short run (`bot.loadtest.run_load`) is checked where `faqbot bench --short` runs it: tests/test_bench.py.

Clients speak Gradio's plain two-step HTTP protocol (`bot.loadtest.ApiClient`), each with its own session.
Latency and throughput are printed, not asserted: CI machines differ.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from bot.childserver import serving
from bot.loadtest import ApiClient, labelled_questions, run_phase
from bot.store import open_store
from bot.text import normalize

from .conftest import running_app

CLIENTS = 16
QUESTIONS_PER_CLIENT = 3
OUT_OF_SCOPE = ("今日の天気は？", None)


def question_table(bot) -> list[tuple[str, str | None]]:
    """(question, expected entry id): each entry's own question in both languages, and one out of scope."""
    table = [(e.question, e.id) for e in bot.index.entries if e.has_answer]
    table += [(e.question_en, e.id) for e in bot.index.entries if e.question_en and e.has_answer]
    return table + [OUT_OF_SCOPE]


def settle(read, expected: int, seconds: float = 30.0) -> list:
    """Rows from `read()` once there are `expected` (the servers' writers drain behind the answers)."""
    deadline = time.monotonic() + seconds
    rows = read()
    while len(rows) < expected and time.monotonic() < deadline:
        time.sleep(0.3)
        rows = read()
    return rows


@pytest.fixture(scope="module")
def load_settings(settings, tmp_path_factory):
    return settings.with_(feedback_db=tmp_path_factory.mktemp("load") / "feedback.sqlite3")


@pytest.fixture(scope="module")
def load_url(bot, load_settings):
    yield from running_app(bot, load_settings)


def run_client(url: str, number: int, table: list, start: threading.Barrier) -> dict:
    """One user: ask a few questions, then rate the first answer; returns what it saw."""
    client = ApiClient(url)
    picks = [table[(number * QUESTIONS_PER_CLIENT + i) % len(table)] for i in range(QUESTIONS_PER_CLIENT)]
    start.wait(timeout=120)
    seen = []
    for question, expected in picks:
        answer = client.call("ask", question, None)
        seen.append((question, expected, answer["answer"]["id"] if answer["answered"] else None))
    vote = client.call("feedback", picks[0][0], "up" if number % 2 else "down", None)
    client.close()
    assert vote["session"] == client.session  # the session the server stores is the client's own
    return {"seen": seen, "vote": vote, "session": client.session}


@pytest.mark.slow
def test_concurrent_clients_get_their_own_answers_and_lose_nothing(bot, load_url, load_settings):
    table = question_table(bot)
    start = threading.Barrier(CLIENTS)
    with ThreadPoolExecutor(max_workers=CLIENTS) as pool:
        results = list(pool.map(lambda n: run_client(load_url, n, table, start), range(CLIENTS), timeout=600))

    wrong = [(q, want, got) for r in results for q, want, got in r["seen"] if want != got]
    assert wrong == [], f"answers that don't belong to their question: {wrong}"
    assert len({r["session"] for r in results}) == CLIENTS
    with open_store(load_settings.feedback_db, create=False) as store:
        votes = {v["key"]: (v["session"], v["rating"], v["entry_id"]) for v in store.votes()}
        sent = {r["vote"]["key"]: (r["session"], r["vote"]["rating"], r["seen"][0][2] or "") for r in results}
        assert votes == sent  # acknowledged = durable: no waiting needed
        # every question's outcome (the feedback post asks too), once each, with its own session
        outcomes = settle(store.outcomes, CLIENTS * (QUESTIONS_PER_CLIENT + 1))
    asked = sorted((r["session"], normalize(q)) for r in results for q, _, _ in [*r["seen"], r["seen"][0]])
    assert sorted((o["session"], o["question"]) for o in outcomes) == asked


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_two_replicas_on_one_postgresql_lose_and_duplicate_nothing(settings, built_index, pg_database, capsys):
    questions = labelled_questions(settings.data_dir)
    with serving(settings, pg_database) as first, serving(settings, pg_database) as second:
        tally = run_phase([first, second], clients=8, seconds=4, questions=questions)
    with capsys.disabled():
        print(f"\ntwo replicas: {tally.summary()}, {len(tally.acked)} votes")
    assert tally.errors == [] and len(tally.acked) > 0
    with open_store(pg_database, create=False) as store:
        outcomes = settle(store.outcomes, len(tally.latencies_ms))
        votes = store.votes()
    # every answered call (asks and feedback posts alike) recorded exactly once, every acknowledged vote kept:
    # each numbered question is asked once, and a vote asks again the question its client was just answered
    assert len(outcomes) == len(tally.latencies_ms)
    per_question = Counter(o["question"] for o in outcomes)
    assert len(per_question) == len(tally.kind_ms["ask"]) and set(per_question.values()) <= {1, 2}
    assert sum(n == 2 for n in per_question.values()) == len(tally.acked)
    assert sorted(v["key"] for v in votes) == sorted(tally.acked)
