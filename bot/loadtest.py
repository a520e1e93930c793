"""Loadtest: many API clients at once against the page's server, as `faqbot bench --load` reports it.

Each client is one keep-alive HTTP connection with its own Gradio session (and, against a server on this
machine, its own loopback address, as staff have their own PCs), calling the `ask` API through
Gradio's plain two-step protocol (`POST /gradio_api/call/ask` -> event id, `GET .../ask/<id>` -> the result
as server-sent events), which costs the load generator far less than `gradio_client`. Every question is
distinct (the labelled sets' questions, numbered) so no answer can come from the cache; every
`FEEDBACK_EVERY`-th call (and each client's second, so the first votes arrive in one burst) is a feedback
post rating the answer the client was just given, as a person or an API client does, and a vote the server
acknowledged must be in the store afterwards (`lost_writes`). Answers and feedback posts are also timed
apart (`ask`, `feedback`). After a short warm-up (not counted): `seconds` of distinct questions with
feedback (the main numbers); `seconds` / 2 of the same six questions (cache hits: `throughput_repeat_rps`);
`seconds` / 2 of distinct questions without feedback, then `seconds` / 2 more while one more client pastes
100 kB questions, each numbered at its start so none comes from the cache (`long`: how much the others' p95
moves against the phase just before).

The server is the one at `urls`, or one started here like `faqbot serve` on the given index with its own
feedback database (a temporary SQLite file unless `db` names one; bot/childserver.py), stopped at the end.
"""

from __future__ import annotations

import contextlib
import http.client
import itertools
import json
import secrets
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import psutil

from .childserver import serving
from .errors import BotError
from .queries import read_queries
from .settings import Settings

#: The labelled sets whose questions the clients ask (numbered to make every one distinct).
QUESTION_FILES = ("eval/test.jsonl", "eval/tune.jsonl")
#: One call in this many is a feedback post (a vote on a fresh answer).
FEEDBACK_EVERY = 10
#: The pasted question of the long-question probe, in characters (ASCII: ~100 kB on the wire).
LONG_CHARS = 100_000
#: Distinct questions asked in the repeat phase (cache hits after the first round).
REPEATED = 6
#: How long to wait for the server's store to make acknowledged votes readable before counting them lost.
SETTLE_S = 20.0


@dataclass
class Tally:
    """What the clients of one phase saw."""

    latencies_ms: list[float] = field(default_factory=list)
    kind_ms: dict[str, list[float]] = field(default_factory=lambda: {"ask": [], "feedback": []})  # the same, apart
    errors: list[str] = field(default_factory=list)
    acked: list[str] = field(default_factory=list)  # keys of votes the server acknowledged
    wall_s: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def summary(self) -> dict:
        ms = self.latencies_ms
        return {"requests": len(ms) + len(self.errors), "errors": len(self.errors),
                "throughput_rps": round(len(ms) / self.wall_s, 2) if self.wall_s else 0.0, **_percentiles(ms)}

    def kinds(self) -> dict:
        """p50/p95 of the answers and of the feedback posts apart."""
        return {kind: {"requests": len(ms), **_percentiles(ms)} for kind, ms in self.kind_ms.items()}


def _percentiles(ms: list[float]) -> dict:
    return {"p50_ms": round(float(np.percentile(ms, 50)), 1) if ms else None,
            "p95_ms": round(float(np.percentile(ms, 95)), 1) if ms else None}


class ApiClient:
    """One user: a keep-alive connection and a session id, calling the page's named API endpoints."""

    def __init__(self, url: str, timeout: float = 120.0, nth: int = 0) -> None:
        parts = urlsplit(url)
        host = parts.hostname or "127.0.0.1"
        self.prefix = parts.path.rstrip("/") + "/gradio_api/call/"
        # on this machine, each client comes from its own loopback address (127.0.0.2, .3, …), as staff come
        # from their own PCs: the server limits feedback per address, not only per session
        source = (f"127.0.{nth // 250 % 256}.{nth % 250 + 2}", 0) if host.startswith("127.") else None
        self.conn = http.client.HTTPConnection(host, parts.port or 80, timeout=timeout, source_address=source)
        self.session = "load-" + secrets.token_hex(8)

    def call(self, api: str, *data: object) -> object:
        """The endpoint's result; raises `BotError` with the server's message when it reports an error."""
        body = json.dumps({"data": list(data), "session_hash": self.session})
        event = json.loads(self._request("POST", self.prefix + api, body))["event_id"]
        stream = self._request("GET", f"{self.prefix}{api}/{event}")
        kind, payload = "", None
        for line in stream.splitlines():
            if line.startswith("event:"):
                kind = line[6:].strip()
            elif line.startswith("data:") and kind in ("complete", "error"):
                payload = line[5:].strip()
        if kind != "complete" or payload is None:
            raise BotError(f"{api}: {kind or 'no result'} {payload or ''}".strip())
        return json.loads(payload)[0]

    def _request(self, method: str, path: str, body: str | None = None) -> str:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        try:
            self.conn.request(method, path, body=body.encode() if body else None, headers=headers)
            response = self.conn.getresponse()
            text = response.read().decode("utf-8", "replace")
        except (OSError, http.client.HTTPException):
            self.conn.close()  # reconnect on the next call
            raise
        if response.status != 200:
            raise BotError(f"{method} {path}: HTTP {response.status} {text[:200]}")
        return text

    def close(self) -> None:
        self.conn.close()


def labelled_questions(data_dir: Path) -> list[str]:
    """The labelled sets' questions (both languages, in and out of scope), in file order."""
    questions = [q.q for name in QUESTION_FILES if (data_dir / name).is_file() for q in read_queries(data_dir / name)]
    if not questions:
        raise BotError(f"no labelled questions in {data_dir}/{QUESTION_FILES[0]} to load the server with")
    return questions


def _client(url: str, questions: list[str], counter: itertools.count, seconds: float, start: threading.Barrier,
            tally: Tally, feedback: bool, long: bool = False, nth: int = 0) -> None:
    client = ApiClient(url, nth=nth)
    start.wait(timeout=120)
    deadline = time.perf_counter() + seconds  # every client passes the barrier together
    asked = None  # the client's last question: what its votes rate
    for n in itertools.count():
        if time.perf_counter() >= deadline:
            break
        number = next(counter)
        question = questions[number % len(questions)]
        if long:  # numbered at the start, inside what the bot reads: each paste costs a search, none is cached
            question = f"#{number} {question}"
        elif len(questions) > REPEATED:  # distinct questions: numbered
            question = f"{question} #{number}"
        voting = feedback and asked is not None and n % FEEDBACK_EVERY == 1  # each client early, then every 10th
        began = time.perf_counter()
        try:
            if voting:
                vote = client.call("feedback", asked, "up" if number % 2 else "down", None)
                with tally.lock:
                    tally.acked.append(vote["key"])
            else:
                answer = client.call("ask", question, None)
                asked = question
                if long and not answer.get("notices"):
                    raise BotError("a 100 kB question came back without the 'too long' notice")
        except Exception as err:  # noqa: BLE001 - every failure is counted, none stops the run
            with tally.lock:
                tally.errors.append(f"{type(err).__name__}: {str(err)[:200]}")
            continue
        took = (time.perf_counter() - began) * 1000
        with tally.lock:
            tally.latencies_ms.append(took)
            tally.kind_ms["feedback" if voting else "ask"].append(took)
    client.close()


def run_phase(urls: list[str], clients: int, seconds: float, questions: list[str], feedback: bool = True,
              long_client: Tally | None = None) -> Tally:
    """`clients` clients spread over `urls` for `seconds`; `long_client` adds one more pasting 100 kB questions."""
    tally, counter = Tally(), itertools.count()
    jobs = [(urls[i % len(urls)], questions, counter, seconds, tally, feedback, False) for i in range(clients)]
    if long_client is not None:
        pasted = ("Where should the backups of the electronic medical record system be kept? " * 2000)[:LONG_CHARS]
        jobs.append((urls[0], [pasted], itertools.count(), seconds, long_client, False, True))
    start = threading.Barrier(len(jobs) + 1)
    threads = [threading.Thread(target=_client, args=(url, qs, count, secs, start, into, fb, long, n), daemon=True)
               for n, (url, qs, count, secs, into, fb, long) in enumerate(jobs)]
    for thread in threads:
        thread.start()
    start.wait(timeout=120)
    began = time.perf_counter()
    for thread in threads:
        thread.join(timeout=seconds + 180)
    tally.wall_s = time.perf_counter() - began
    if long_client is not None:
        long_client.wall_s = tally.wall_s
    return tally


def run_load(settings: Settings, *, clients: int = 50, seconds: float = 20.0, urls: list[str] | None = None,
             db: str | None = None) -> dict:
    """The three phases against `urls` (or a server started here); the `load` numbers of `faqbot bench`.

    `db` is the feedback store the server writes (needed to count lost writes against a running server;
    a started server gets a temporary SQLite file when it is None).
    """
    questions = labelled_questions(settings.data_dir)
    with contextlib.ExitStack() as stack:
        if not urls:
            if db is None:
                db = str(Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="faqbot-load-")))
                         / "feedback.sqlite3")
            urls = [stack.enter_context(serving(settings, db))]
        run_phase(urls, clients, min(5.0, seconds / 4), questions[::-1], feedback=False)  # warm-up, not counted
        before = _cpu_seconds()
        distinct = run_phase(urls, clients, seconds, questions)
        cpu = {side: after - before[side] for side, after in _cpu_seconds().items()}
        repeat = run_phase(urls, clients, seconds / 2, questions[:REPEATED], feedback=False)
        plain = run_phase(urls, clients, seconds / 2, questions[1::2], feedback=False)  # the probe's baseline
        long = Tally()
        probe = run_phase(urls, clients, seconds / 2, questions[::2], feedback=False, long_client=long)
        lost, store = lost_writes(db, distinct.acked)
    main, baseline, probed = distinct.summary(), plain.summary(), probe.summary()
    change = (probed["p95_ms"] / baseline["p95_ms"] - 1) if baseline["p95_ms"] and probed["p95_ms"] else None
    return {
        "clients": clients, **main, **distinct.kinds(), "throughput_repeat_rps": repeat.summary()["throughput_rps"],
        "lost_writes": lost, "store": store, "replicas": len(urls), "seconds": seconds,
        "feedback_posts": len(distinct.acked), "error_samples": sorted(set(distinct.errors))[:5],
        # CPU per request of the distinct phase: what the machine's other load does not change much
        **{f"{side}_cpu_ms_per_request": round(1000 * used / max(1, len(distinct.latencies_ms)), 2)
           for side, used in cpu.items() if used > 0},
        "repeat": repeat.summary(),
        "long": {"baseline": baseline, "others": probed, "p95_change": None if change is None else round(change, 3),
                 "long_requests": len(long.latencies_ms) + len(long.errors), "long_errors": len(long.errors),
                 "long_p50_ms": long.summary()["p50_ms"]},
    }


def _cpu_seconds() -> dict[str, float]:
    """CPU seconds used so far by this process (the clients) and by the servers it started (its children)."""
    me = psutil.Process()
    servers = 0.0
    for child in me.children(recursive=True):
        with contextlib.suppress(psutil.Error):
            times = child.cpu_times()
            servers += times.user + times.system
    own = me.cpu_times()
    return {"client": own.user + own.system, "server": servers}


def lost_writes(db: str | None, acked: list[str]) -> tuple[int | None, str]:
    """Acknowledged votes missing from the store `db` (None when it can't be read), and which store it is."""
    if db is None:
        return None, "unknown"
    from .store import open_store

    kind = "postgresql" if db.startswith("postgresql") else "sqlite"
    with open_store(db, create=False) as store:
        deadline = time.monotonic() + SETTLE_S
        while True:  # the server's writer makes them durable before acknowledging: this is a safety margin
            missing = set(acked) - {row["key"] for row in store.votes()}
            if not missing or time.monotonic() > deadline:
                return len(missing), kind
            time.sleep(0.5)


def format_load(load: dict) -> str:
    """One paragraph for `faqbot bench --load` without --json."""
    long = load["long"]
    change = "-" if long["p95_change"] is None else f"{long['p95_change']:+.0%}"
    return "\n".join([
        f"load: {load['clients']} clients x {load['replicas']} server(s), {load['seconds']:g} s per phase, "
        f"store {load['store']}",
        f"  distinct questions: {load['requests']} requests, {load['errors']} errors, "
        f"{load['throughput_rps']} req/s, p50 {load['p50_ms']} ms, p95 {load['p95_ms']} ms (answers "
        f"{load['ask']['p95_ms']} ms, feedback posts {load['feedback']['p95_ms']} ms); "
        f"{load['feedback_posts']} feedback posts, lost writes {load['lost_writes']}; CPU per request: server "
        f"{load.get('server_cpu_ms_per_request', '-')} ms, clients {load.get('client_cpu_ms_per_request', '-')} ms",
        f"  repeated questions (cache): {load['throughput_repeat_rps']} req/s, p95 {load['repeat']['p95_ms']} ms",
        f"  with one client pasting {LONG_CHARS // 1000} kB questions: others' p95 {long['others']['p95_ms']} ms "
        f"against {long['baseline']['p95_ms']} ms just before ({change}), "
        f"{long['long_requests']} long questions, p50 {long['long_p50_ms']} ms, {long['long_errors']} errors",
    ])
