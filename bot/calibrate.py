"""Calibrate: fit the logistic combiner and the answer threshold on the labelled tuning queries.

Only `data/eval/tune.jsonl` is used; `test.jsonl` stays unseen. Each (query, candidate entry) pair is
one example, labelled 1 when the entry is one the query expects. The fitted probability is the
bot's confidence. The threshold maximises Youden's J on the tuning queries, where a "positive" is a
query whose top entry is right and everything else (out-of-scope, or a wrong top entry) is negative:
the bot should answer exactly when its answer would be correct.
"""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression

from .queries import LabelledQuery
from .search import FEATURES, Searcher

__all__ = ["choose_threshold", "fit"]

#: Share of the must-not-answer tuning queries the threshold may let through.
MAX_FALSE_ANSWER_RATE = 0.04


def fit(searcher: Searcher, queries: list[LabelledQuery], vectors: np.ndarray,
        features: tuple[str, ...] = FEATURES) -> dict:
    """Fit combiner weights and the answer threshold; returns the calibration the manifest stores."""
    used = [FEATURES.index(f) for f in features]
    xs, ys, groups = [], [], []
    for qi, (query, vector) in enumerate(zip(queries, vectors, strict=True)):
        cand, feats, _ = searcher.signals(query.q, vector)
        ids = [searcher.index.entries[c].id for c in cand]
        xs.append(feats[:, used])
        ys += [int(i in query.expect) for i in ids]
        groups += [qi] * len(ids)
    x, y, groups = np.vstack(xs), np.asarray(ys), np.asarray(groups)
    mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-9
    model = LogisticRegression(C=1.0, max_iter=2000).fit((x - mean) / scale, y)
    weights, bias = model.coef_[0], float(model.intercept_[0])
    prob = 1.0 / (1.0 + np.exp(-(((x - mean) / scale) @ weights + bias)))

    top_prob, top_right = [], []
    for qi in range(len(queries)):
        mask = groups == qi
        best = int(np.argmax(prob[mask]))
        top_prob.append(prob[mask][best])
        top_right.append(y[mask][best] == 1)
    threshold = choose_threshold(np.asarray(top_prob), np.asarray(top_right, dtype=bool))
    return {"method": "logistic combiner on tuning queries; threshold: at most "
                      f"{MAX_FALSE_ANSWER_RATE:.0%} false answers",
            "features": list(features), "weights": weights.tolist(), "bias": bias,
            "mean": mean.tolist(), "scale": scale.tolist(), "threshold": threshold,
            "n_queries": len(queries), "n_pairs": int(len(y))}


def choose_threshold(top_prob: np.ndarray, top_right: np.ndarray, max_false: float = MAX_FALSE_ANSWER_RATE) -> float:
    """Lowest threshold letting at most `max_false` of the wrong/out-of-scope top scores through."""
    wrong = np.sort(top_prob[~top_right])[::-1]
    allowed = int(np.floor(max_false * len(wrong)))
    if allowed >= len(wrong):
        return 0.0
    above = wrong[allowed - 1] if allowed > 0 else 1.0
    return float((wrong[allowed] + above) / 2)
