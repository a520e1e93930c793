"""Bench, scale: the real sheet and synthetic corpora of 1,000 and 10,000 entries (`bot.synthetic`) built,
opened and queried in fresh processes; exact flat FAISS against HNSW and IVF on each corpus's vectors; and
flat against HNSW search time beyond the corpora.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

import faiss
import numpy as np

from .bench_latency import ms, pct
from .bench_procs import run_worker
from .embed import model_version
from .index import Index, write_build
from .settings import Settings
from .synthetic import EMBEDDED_FIELDS, fingerprint, index_synthetic, synthetic_entries

if TYPE_CHECKING:  # only embed imports sentence-transformers
    from sentence_transformers import SentenceTransformer

#: HNSW and IVF settings compared with the exact flat index (HNSW as in `index.make_vector_index`).
HNSW_M, HNSW_EF_CONSTRUCTION, HNSW_EF_SEARCH = 32, 80, 128
#: Vector counts at which flat and HNSW search are timed beyond the corpora (search time hardly depends
#: on what the vectors say, so the 10,000-entry corpus's vectors are tiled with noise). HNSW is built
#: only up to `HNSW_GROWTH_MAX` texts: its build alone would take minutes beyond.
GROWTH = (10_000, 20_000, 50_000, 100_000, 200_000)
HNSW_GROWTH_MAX = 50_000


def _folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def scale_row(entries: int, texts: int, synthetic: bool, build_s: float, folder: Path, worker: dict,
              tradeoff: dict) -> dict:
    ask, search = pct(worker["ask_ms"]), pct(worker["search_ms"])
    return {
        "entries": entries, "texts": texts, "synthetic": synthetic,
        "embedded": ", ".join(EMBEDDED_FIELDS) if synthetic else "every text (questions, answers, alternates)",
        "build_s": round(build_s, 2), "index_bytes": _folder_bytes(folder),
        "load_s": round(worker["open_s"], 2), "query_p50_ms": ask[50], "query_p95_ms": ask[95],
        "search_p50_ms": search[50], "rss_mb": round(worker["rss_mb"], 1), "faiss_type": worker["faiss_type"],
        "depth": worker["depth"], "faiss": tradeoff,
    }


def synthetic_row(settings: Settings, model: SentenceTransformer, real: Index, n: int, tmp: Path,
                  queries: list[str], q_vectors: np.ndarray, worker_queries: int,
                  progress: bool) -> tuple[dict, np.ndarray]:
    """Build an `n`-entry synthetic corpus into `tmp`, time it, then time a fresh process answering from it.

    It is searched with the real sheet's calibration (and anchors): there are no labelled queries for it.
    """
    entries = synthetic_entries(real.entries, n)
    root = tmp / f"synthetic-{n}"
    t0 = time.perf_counter()
    index, vectors = index_synthetic(entries, model, real, root, progress=progress)
    manifest = {"model": settings.model, "model_version": model_version(settings.model),
                "companion_version": real.manifest.get("companion_version"),
                "data_hash": fingerprint(entries), "calibration": real.calibration, "synthetic": True}
    folder = write_build(root, index, manifest)
    build_s = time.perf_counter() - t0
    del index
    worker = run_worker(settings.with_(index_dir=root), queries[0], queries[:worker_queries], synthetic=True)
    tradeoff = faiss_tradeoff(vectors, q_vectors, worker["depth"])
    return scale_row(n, len(vectors), True, build_s, folder, worker, tradeoff), vectors


def faiss_tradeoff(vectors: np.ndarray, queries: np.ndarray, depth: int) -> dict:
    """Exact flat vs HNSW vs IVF on these vectors: recall@10 against flat, search time, build time."""
    n, dim = vectors.shape
    k = min(10, n)
    nlist = max(1, min(int(4 * np.sqrt(n)), n // 39))  # faiss wants >= 39 training points per list
    nprobe = max(1, int(round(np.sqrt(nlist))))

    def flat() -> faiss.Index:
        index = faiss.IndexFlatIP(dim)
        index.add(vectors)
        return index

    def hnsw() -> faiss.Index:
        index = faiss.IndexHNSWFlat(dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        index.add(vectors)
        index.hnsw.efSearch = HNSW_EF_SEARCH
        return index

    def ivf() -> faiss.Index:
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, nlist, faiss.METRIC_INNER_PRODUCT)
        index.train(vectors)
        index.add(vectors)
        index.nprobe = nprobe
        return index

    makers = {"flat": (flat, "exact"),
              "hnsw": (hnsw, f"M={HNSW_M} efConstruction={HNSW_EF_CONSTRUCTION} efSearch={HNSW_EF_SEARCH}"),
              "ivf": (ivf, f"nlist={nlist} nprobe={nprobe}")}
    truth = None
    out = {}
    for name, (make, params) in makers.items():
        t0 = time.perf_counter()
        index = make()
        build_s = time.perf_counter() - t0
        found = index.search(queries, k)[1]
        if truth is None:
            truth = found
        recall = float(np.mean([len(set(f) & set(t)) / k for f, t in zip(found, truth, strict=True)]))
        out[name] = {"params": params, "recall_at_10": round(recall, 4),
                     "search_p50_ms": _search_p50(index, queries, k),
                     "depth_search_p50_ms": _search_p50(index, queries, depth), "build_s": round(build_s, 3)}
    return out


def search_growth(vectors: np.ndarray, queries: np.ndarray, sizes: tuple[int, ...], depth: int = 512) -> list:
    """Flat (as configured and on one thread) and HNSW search time for one query at the searcher's depth
    above 4,096 texts, at vector counts beyond the corpora."""
    rng = np.random.default_rng(0)
    threads = faiss.omp_get_max_threads()
    out = []
    for n in sizes:
        grown = np.resize(vectors, (n, vectors.shape[1]))
        if n > len(vectors):
            grown = grown + rng.normal(0, 0.02, grown.shape).astype(np.float32)
            grown /= np.linalg.norm(grown, axis=1, keepdims=True)
        flat = faiss.IndexFlatIP(vectors.shape[1])
        flat.add(grown)
        row = {"texts": n, "depth": depth, "flat_ms": _search_p50(flat, queries, depth)}
        faiss.omp_set_num_threads(1)
        try:
            row["flat_1thread_ms"] = _search_p50(flat, queries, depth)
        finally:
            faiss.omp_set_num_threads(threads)
        del flat
        if n <= HNSW_GROWTH_MAX:
            t0 = time.perf_counter()
            hnsw = faiss.IndexHNSWFlat(vectors.shape[1], HNSW_M, faiss.METRIC_INNER_PRODUCT)
            hnsw.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
            hnsw.add(grown)
            hnsw.hnsw.efSearch = HNSW_EF_SEARCH
            row["hnsw_build_s"] = round(time.perf_counter() - t0, 2)
            row["hnsw_ms"] = _search_p50(hnsw, queries, depth)
            del hnsw
        out.append(row)
    return out


def _search_p50(index: faiss.Index, queries: np.ndarray, k: int) -> float:
    """p50 ms of searching one query at a time, as the bot does."""
    return pct([ms(lambda q=q: index.search(q.reshape(1, -1), k)) for q in queries])[50]
