"""Intent: a linear classifier that reads which entry a question asks for (or none), from both encoders' vectors.

Why: the other signals compare the question with one text at a time: its nearest alternate, its nearest off-topic
question, the entry's words. A question written by someone new often falls between an entry's alternates and its
counter-examples, where a single nearest text decides. A multinomial logistic regression over the question's e5 and
companion vectors (bot/companion.py) is trained on every alternate, labelled with its entry, and on every
off-topic question and counter-example, labelled "none". It learns which directions of the two embedding spaces
separate an entry's questions from the look-alikes it does not answer. Classic FAQ bots call this intent
classification. Its probability for a candidate entry is the `intent` signal (`search.FEATURES`). It was measured
in round 9 (docs/evaluation.md): the tuning queries scored out of fold, the holdouts and the test part all gained
right answers, with no more near-domain false answers.

Cross-fitting. The combiner also learns from the alternates (each searched without its fold, bot/heldout.py) and
from the counter-examples (`calibrate.counter_examples`). Scored by a classifier trained on them, they would look
certain, and the combiner would trust this signal too much. So the build fits `FOLDS` more classifiers
(`Intent.weights[1:]`). Model 1 + k is trained without fold k of the alternates (the same folds as
bot/heldout.py) and without the counter-examples of the entries whose position % FOLDS == k. A counter-example is
thus scored without itself, its translation or its entry's other look-alikes, as `counter_examples` leaves them
out of the anchors. A new near-domain question usually has some look-alike in training, so this errs on the side
of caution.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from threadpoolctl import threadpool_limits

__all__ = ["ALTERNATE_FIELDS", "FOLDS", "Intent", "alternate_folds", "alternate_model", "counter_example_model",
           "fit_intent", "load_intent", "save_intent"]

FOLDS = 5
#: The alternates' folds are a fixed shuffle, so a rebuild of the same data fits the same calibration.
SEED = 0
ALTERNATE_FIELDS = ("alt_ja", "alt_en")
#: The classifier's regularisation: scikit-learn's default, not tuned (docs/evaluation.md, round 9).
C = 1.0
#: Class label of the off-topic questions and counter-examples.
NONE = -1
#: The index build's files (bot/index.py checks them against the manifest like every other file).
WEIGHTS_FILE = "intent_weights.npy"
CLASSES_FILE = "intent_classes.npy"


@dataclass(frozen=True, eq=False)
class Intent:
    """The served classifier and its cross-fitted twins, as the index stores them.

    `weights[m]` is model m's (classes, dimensions + 1) matrix, the bias in the last column; `classes` holds the entry
    position of each class, `NONE` for off-topic. No classes means no classifier (a sheet without alternates): the
    signal is 0 for every entry. The bench's synthetic corpora keep the real sheet's classifier, which scores the
    entries it knows and gives 0 to the others (bot/synthetic.py: the timing is what is measured there)."""

    weights: np.ndarray  # (1 + FOLDS, classes, dimensions + 1), float32
    classes: np.ndarray  # (classes,), int64

    @classmethod
    def empty(cls) -> Intent:
        return cls(np.zeros((0, 0, 0), dtype=np.float32), np.zeros(0, dtype=np.int64))

    def probabilities(self, vector: np.ndarray, companion_vector: np.ndarray, n_entries: int,
                      model: int = 0) -> np.ndarray:
        """Each entry's probability under model `model` (0: the served one), 0 for entries it has no class for."""
        out = np.zeros(n_entries, dtype=np.float32)
        if not len(self.classes):
            return out
        w = self.weights[model]
        logits = w[:, :-1] @ _features(vector, companion_vector) + w[:, -1]
        p = np.exp(logits - logits.max())
        p /= p.sum()
        mine = (self.classes >= 0) & (self.classes < n_entries)
        out[self.classes[mine]] = p[mine]
        return out


def alternate_folds(n: int) -> np.ndarray:
    """The fold of each of `n` alternates (bot/heldout.py searches fold k without it; model 1 + k never saw it)."""
    return np.random.default_rng(SEED).permutation(n) % FOLDS


def alternate_model(fold: int) -> int:
    """The model that scores the alternates of `fold`."""
    return 1 + fold


def counter_example_model(entry_position: int) -> int:
    """The model that scores the counter-examples of the entry at `entry_position`."""
    return 1 + entry_position % FOLDS


def _features(vector: np.ndarray, companion_vector: np.ndarray) -> np.ndarray:
    return np.concatenate([np.asarray(vector, dtype=np.float32).reshape(-1),
                           np.asarray(companion_vector, dtype=np.float32).reshape(-1)])


def fit_intent(alternates: np.ndarray, companion_alternates: np.ndarray, alternate_entries: np.ndarray,
               anchors: np.ndarray, companion_anchors: np.ndarray, anchor_entries: np.ndarray) -> Intent:
    """The served classifier and its `FOLDS` cross-fitted twins (module docstring).

    `alternates` / `companion_alternates`: the alternates' query vectors under each encoder, in index order, and
    `alternate_entries` their entries' positions; the same for the anchors, whose `anchor_entries` gives a
    counter-example's entry position and -1 for a plain off-topic question."""
    x = np.vstack([np.hstack([alternates, companion_alternates]),
                   np.hstack([anchors, companion_anchors])]).astype(np.float64) if len(anchors) \
        else np.hstack([alternates, companion_alternates]).astype(np.float64)
    y = np.concatenate([alternate_entries, np.full(len(anchors), NONE)]).astype(np.int64)
    if len(np.unique(y)) < 2:
        return Intent.empty()
    alt_fold = alternate_folds(len(alternates))
    anchor_fold = np.where(anchor_entries >= 0, anchor_entries % FOLDS, -1)
    fold = np.concatenate([alt_fold, anchor_fold])  # -1: plain off-topic questions train every model
    classes = np.unique(y)
    weights = np.zeros((1 + FOLDS, len(classes), x.shape[1] + 1), dtype=np.float32)
    # one BLAS thread: on a shared 2-core box the default threads oversubscribe and a fit takes ~10x longer
    with threadpool_limits(1):
        for m in range(1 + FOLDS):
            keep = fold != m - 1 if m else np.ones(len(y), dtype=bool)
            weights[m] = _fit_one(x[keep], y[keep], classes)
    return Intent(weights, classes)


def _fit_one(x: np.ndarray, y: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """One model's (classes, dimensions + 1) matrix; a class missing from `y` gets a never-winning row."""
    out = np.zeros((len(classes), x.shape[1] + 1), dtype=np.float32)
    out[:, -1] = -1e4
    if len(np.unique(y)) < 2:  # a fold left one class: it is certain
        out[np.searchsorted(classes, y[:1]), -1] = 0.0
        return out
    model = LogisticRegression(C=C, max_iter=2000).fit(x, y)
    rows = np.searchsorted(classes, model.classes_)
    if len(model.classes_) == 2:  # scikit-learn gives binary problems one row: log-odds of the second class
        coef = np.vstack([-model.coef_[0] / 2, model.coef_[0] / 2])
        bias = np.array([-model.intercept_[0] / 2, model.intercept_[0] / 2])
    else:
        coef, bias = model.coef_, model.intercept_
    out[rows, :-1] = coef
    out[rows, -1] = bias
    return out


def save_intent(folder: Path, intent: Intent) -> None:
    np.save(folder / WEIGHTS_FILE, intent.weights, allow_pickle=False)
    np.save(folder / CLASSES_FILE, intent.classes, allow_pickle=False)


def load_intent(folder: Path, n_entries: int, dimensions: int) -> Intent:
    """The build's classifier; raises ValueError when its shape does not fit the index it sits in."""
    weights = np.load(folder / WEIGHTS_FILE, allow_pickle=False)
    classes = np.load(folder / CLASSES_FILE, allow_pickle=False)
    if not len(classes):
        return Intent.empty()
    if weights.shape != (1 + FOLDS, len(classes), dimensions + 1) or classes.min() < NONE \
            or classes.max() >= n_entries:
        raise ValueError(f"{WEIGHTS_FILE} / {CLASSES_FILE} do not fit this index (weights {weights.shape}, "
                         f"{len(classes)} classes for {n_entries} entries)")
    return Intent(weights.astype(np.float32), classes.astype(np.int64))
