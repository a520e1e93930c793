"""Ablation: does each signal earn its place? Refit the combiner on a subset of the signals and measure.

The signals of a question (`Searcher.signals`) do not depend on the calibration, so they are computed once
per question (`SignalCache`) and every feature subset is refitted and re-ranked from the cached matrices:
the whole table costs about one pass over the tuning and the test queries instead of one per subset.
Only the tuning queries are fitted on, never the queries measured.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from .calibrate import fit
from .entries import TUNE_FILE
from .evaluate import Report, as_asked, encode, search_rows
from .heldout import HeldOut, alternate_vectors, held_out_alternates
from .queries import LabelledQuery, read_queries
from .search import FEATURES, Searcher
from .vectorcache import VectorCache

if TYPE_CHECKING:
    from .answer import FaqBot

__all__ = ["ABLATIONS", "ASKS", "COMPANION", "DENSE", "INTENT", "LEXICAL", "NO_HELD_OUT", "SignalCache", "ablation"]

#: The families of signals (see `search.FEATURES`): from the main model's embeddings, from the tokens, what the
#: question asks for against what the entry gives (bot/asks.py), from the companion encoder (bot/companion.py), and
#: the intent classifier over both encoders' vectors (bot/intent.py).
DENSE = ("cos_q", "cos_a", "cos_gap", "oos_gap")
LEXICAL = ("bm25", "bm25_gap", "coverage", "known")
ASKS = ("asks_other",)
COMPANION = ("use_knn",)
INTENT = ("intent",)
#: Feature subsets `ablation` refits: all, each family alone, and all but one signal (the companion encoder gives
#: one signal since round 8, so "without use_knn" is "without the companion").
ABLATIONS: dict[str, tuple[str, ...]] = {
    "all signals": FEATURES,
    "dense only": DENSE,
    "lexical only": LEXICAL,
    "dense + lexical (no asks)": DENSE + LEXICAL,
    **{f"without {name}": tuple(f for f in FEATURES if f != name) for name in FEATURES},
}
#: Not a signal but training data: all signals, the combiner fitted without the held-out alternates (bot/heldout.py).
NO_HELD_OUT = "all signals, no held-out alternates"
ABLATIONS[NO_HELD_OUT] = FEATURES


class SignalCache(Searcher):
    """A searcher that remembers each question's signals; `with_calibration` shares the memory.

    Valid only while the index stays the same: make a new one after a rebuild.
    """

    def __init__(self, bot: FaqBot) -> None:
        super().__init__(bot.index, bot.model, calibration={})
        self._memo: dict[tuple[str, tuple[int, ...], int], tuple[np.ndarray, np.ndarray, list[str]]] = {}

    def signals(self, query: str, vector: np.ndarray | None = None, exclude_anchors: tuple[int, ...] = (),
                companion_vector: np.ndarray | None = None,
                intent_model: int = 0) -> tuple[np.ndarray, np.ndarray, list[str]]:
        key = (query, exclude_anchors, intent_model)
        if key not in self._memo:
            self._memo[key] = super().signals(query, vector, exclude_anchors, companion_vector, intent_model)
        return self._memo[key]

    def with_calibration(self, calibration: dict) -> SignalCache:
        """The same cached signals, ranked and decided with another calibration."""
        other = copy.copy(self)
        other.calibration = calibration
        return other


def ablation(bot: FaqBot, queries: Sequence[LabelledQuery], vectors: np.ndarray | None = None, *,
             tune: Sequence[LabelledQuery] | None = None, tune_vectors: np.ndarray | None = None,
             subsets: Mapping[str, Sequence[str]] = ABLATIONS, cache: SignalCache | None = None,
             held_out: HeldOut | None = None) -> dict[str, Report]:
    """Refit the combiner, threshold and ambiguity rule on the tuning queries with each feature subset, and
    evaluate each on `queries`; returns one `Report` per subset name.

    Evidence that each signal earns its place: if leaving a signal out costs nothing, it can go. The tuning
    queries default to the data's tune.jsonl. Pass a `cache` to reuse signals across calls (same index), and
    `held_out` (the alternates' pairs, `heldout.held_out_alternates`, about 10 s) to reuse them too.
    """
    if tune is None:
        tune = read_queries(bot.settings.data_dir / TUNE_FILE, set(bot.entries))
    tune_vectors = encode(bot, tune) if tune_vectors is None else tune_vectors
    vectors = encode(bot, queries) if vectors is None else vectors
    cache = SignalCache(bot) if cache is None else cache
    asked = [replace(q, q=as_asked(q.q)) for q in tune]  # fitted on questions as they are searched
    if held_out is None:
        alternates = alternate_vectors(bot.index, bot.model,
                                       VectorCache.of_model(bot.settings.index_dir, bot.settings.model))
        held_out = held_out_alternates(bot.index, bot.model, alternates)
    reports = {}
    for name, features in subsets.items():
        calibration = fit(cache, asked, tune_vectors, tuple(features), None if name == NO_HELD_OUT else held_out)
        rows = search_rows(cache.with_calibration(calibration), queries, vectors)
        reports[name] = Report.of(rows, float(calibration["threshold"]), name)
    return reports
