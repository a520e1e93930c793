"""Held-out alternates: every alternate question, searched as a question nobody wrote down, trains the combiner.

The combiner (`calibrate.fit`) learns from labelled questions what a right (question, entry) pair looks like. The
tuning file holds about a hundred in-scope questions per language. The alternates in bilingual.yaml hold about
ten times as many real phrasings, in every register (terse keywords, long stories, objections, requests). Searched
as they are, each would find itself in the index (its own text closest, every word covered) and teach little.

So the alternates are split into `FOLDS` folds. For each fold the index is rebuilt without that fold's alternates:
vectors, companion vectors, BM25 and the entries' vocabulary (`without`). Each of them is then searched in it.
Each alternate gives one right pair (its own entry) and wrong ones (the other candidates), as a tuning query does.
With a fifth of the alternates missing, each entry is a little harder to match than in the real index, which errs
on the side of caution. They only teach the combiner's weights: the threshold is still set by the tuning queries
and the counter-examples (`calibrate.fit`).
Measured over test.jsonl and four holdouts (docs/evaluation.md, round 5): at the same budget, English right answers
0.942 -> 0.957 and near-domain false answers 1.7 % -> 0.4 %.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from .embed import encode_queries
from .index import Index, lexical_index, make_vector_index, text_rows
from .intent import ALTERNATE_FIELDS, FOLDS, alternate_folds, alternate_model
from .search import FEATURES, Searcher
from .text import normalize, tokens
from .vectorcache import VectorCache, cached_encode

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

    from .companion import Companion

__all__ = ["FOLDS", "HeldOut", "alternate_rows", "alternate_vectors", "held_out_alternates", "without"]



class HeldOut(NamedTuple):
    """The alternates' (question, candidate) pairs, as `calibrate.fit` takes them."""

    x: np.ndarray  # (pairs, len(FEATURES)): every signal, so a subset can be sliced (ablation)
    y: np.ndarray  # 1 for the alternate's own entry
    groups: np.ndarray  # alternate number of each pair, 0-based
    langs: list[str]  # per alternate

    @classmethod
    def empty(cls) -> HeldOut:
        return cls(np.zeros((0, len(FEATURES))), np.zeros(0, dtype=int), np.zeros(0, dtype=int), [])


def _texts(index: Index) -> list[str]:
    """Every searchable text, row for row with the index's vectors."""
    return [t for _, _, t in text_rows(index.entries)]


def alternate_rows(index: Index) -> np.ndarray:
    return np.asarray([r for r, f in enumerate(index.text_field) if f in ALTERNATE_FIELDS], dtype=np.int64)


def alternate_vectors(index: Index, model: SentenceTransformer, cache: VectorCache | None = None) -> np.ndarray:
    """The main model's query vectors of the alternates as they are searched (normalised), in the order
    `held_out_alternates` wants them; with a cache (the build's), only alternates it has not seen are encoded."""
    texts = _texts(index)
    return cached_encode(cache, "query", [normalize(texts[r]) for r in alternate_rows(index)],
                         lambda todo: encode_queries(model, todo))


def without(index: Index, rows: set[int], vectors: np.ndarray, text_tokens: list[list[str]]) -> Index:
    """`index` as if the texts at `rows` had never been written: `vectors` and `text_tokens` are every text's."""
    keep = np.asarray([r not in rows for r in range(len(index.text_field))])
    docs: list[list[str]] = [[] for _ in index.entries]
    for r in np.flatnonzero(keep):
        docs[index.text_entry[r]] += text_tokens[r]
    return replace(index, vectors=make_vector_index(vectors[keep]), text_entry=index.text_entry[keep],
                   text_field=[f for f, k in zip(index.text_field, keep, strict=True) if k],
                   bm25=lexical_index(docs), companion_texts=index.companion_texts[keep])


def held_out_alternates(index: Index, model: SentenceTransformer, vectors: np.ndarray,
                        companion: Companion | None = None) -> HeldOut:
    """Each alternate searched in the index without its fold (module docstring).

    `vectors` come from `alternate_vectors`; the companion's from the index, which holds every text's."""
    rows = alternate_rows(index)
    if len(rows) < FOLDS:
        return HeldOut.empty()
    texts = _texts(index)
    text_tokens = [tokens(t) for t in texts]
    every_vector = index.vectors.reconstruct_n(0, index.vectors.ntotal)
    fold = alternate_folds(len(rows))  # the intent classifier's folds too: model 1 + k never saw fold k
    xs, ys, groups = [], [], []
    for k in range(FOLDS):
        members = np.flatnonzero(fold == k)
        searcher = Searcher(without(index, set(rows[members].tolist()), every_vector, text_tokens), model,
                            calibration={}, companion=companion)
        for i in members:
            row = rows[i]
            cand, feats, _ = searcher.signals(normalize(texts[row]), vectors[i],
                                              companion_vector=index.companion_texts[row],
                                              intent_model=alternate_model(k))
            xs.append(feats)
            ys += [int(c == index.text_entry[row]) for c in cand]
            groups += [int(i)] * len(cand)
    langs = ["ja" if index.text_field[r] == "alt_ja" else "en" for r in rows]
    return HeldOut(np.vstack(xs), np.asarray(ys), np.asarray(groups), langs)
