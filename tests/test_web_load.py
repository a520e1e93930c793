"""Load: many API clients at once get exactly their own answers, and every feedback write is kept.

Each client has its own Gradio session and asks its own slice of questions (every entry's official
question in Japanese and in English, plus an out-of-scope one), so an answer delivered to the wrong
session shows up as a wrong entry id. Latency is printed, not asserted: CI machines differ.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from gradio_client import Client

from bot.feedback import FeedbackStore

from .conftest import running_app

CLIENTS = 24
QUESTIONS_PER_CLIENT = 3
OUT_OF_SCOPE = ("今日の天気は？", None)


@pytest.fixture(scope="module")
def load_settings(settings, tmp_path_factory):
    return settings.with_(feedback_db=tmp_path_factory.mktemp("load") / "feedback.sqlite3")


@pytest.fixture(scope="module")
def load_url(bot, load_settings):
    yield from running_app(bot, load_settings)


def question_table(bot) -> list[tuple[str, str | None]]:
    """(question, expected entry id): each entry's own question in both languages, and one out of scope."""
    table = [(e.question, e.id) for e in bot.index.entries]
    table += [(e.question_en, e.id) for e in bot.index.entries if e.question_en]
    return table + [OUT_OF_SCOPE]


def run_client(url: str, number: int, table: list, start: threading.Barrier) -> dict:
    """One user: connect, ask a few questions, rate the first answer; returns what it saw."""
    client = Client(url, verbose=False)
    picks = [table[(number * QUESTIONS_PER_CLIENT + i) % len(table)] for i in range(QUESTIONS_PER_CLIENT)]
    start.wait(timeout=120)
    seen, latencies = [], []
    for question, expected in picks:
        began = time.perf_counter()
        answer = client.predict(question, api_name="/ask")
        latencies.append(time.perf_counter() - began)
        seen.append((question, expected, answer["answer"]["id"] if answer["answered"] else None))
    rating = "up" if number % 2 else "down"
    began = time.perf_counter()
    row = client.predict(picks[0][0], rating, api_name="/feedback")
    latencies.append(time.perf_counter() - began)
    unanswered = sum(expected is None for _, expected in picks)
    return {"seen": seen, "row": row, "rating": rating, "latencies": latencies, "unanswered": unanswered}


@pytest.mark.slow
def test_concurrent_clients_get_their_own_answers_and_lose_no_feedback(bot, load_url, load_settings, capsys):
    table = question_table(bot)
    start = threading.Barrier(CLIENTS)
    began = time.perf_counter()
    with ThreadPoolExecutor(max_workers=CLIENTS) as pool:
        futures = [pool.submit(run_client, load_url, n, table, start) for n in range(CLIENTS)]
        results = [f.result(timeout=600) for f in futures]  # any client error fails the test here
    wall = time.perf_counter() - began

    wrong = [(q, want, got) for r in results for q, want, got in r["seen"] if want != got]
    assert wrong == [], f"answers that don't belong to their question: {wrong}"
    sessions = [r["row"]["session"] for r in results]
    assert len(set(sessions)) == CLIENTS and all(sessions)

    rows = FeedbackStore(load_settings.feedback_db).rows()
    ratings = {(r["session"], r["id"]): (r["kind"], r["entry_id"]) for r in rows if r["kind"] in ("up", "down")}
    sent = {(r["row"]["session"], r["row"]["id"]): (r["rating"], r["seen"][0][2] or "") for r in results}
    assert ratings == sent
    unanswered = Counter(r["session"] for r in rows if r["kind"] == "unanswered")
    assert unanswered == Counter({r["row"]["session"]: r["unanswered"] for r in results if r["unanswered"]})

    latencies = sorted(x for r in results for x in r["latencies"])
    p50 = statistics.median(latencies)
    p95 = statistics.quantiles(latencies, n=20, method="inclusive")[18]
    with capsys.disabled():
        print(f"\nload: {CLIENTS} clients, {len(latencies)} requests in {wall:.1f}s; "
              f"latency p50 {p50 * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms, max {latencies[-1] * 1000:.0f} ms")
