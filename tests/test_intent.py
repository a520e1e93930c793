"""The intent classifier (bot/intent.py): what it learns on the real sheet, its cross-fitting, and its files."""

from __future__ import annotations

import numpy as np
import pytest

from bot.calibrate import counter_examples
from bot.heldout import alternate_rows, alternate_vectors
from bot.intent import (
    FOLDS,
    Intent,
    alternate_folds,
    alternate_model,
    counter_example_model,
    fit_intent,
    load_intent,
    save_intent,
)
from bot.search import FEATURES
from bot.vectorcache import VectorCache


@pytest.fixture(scope="module")
def alternates(bot, settings):
    """The alternates' query vectors, read from the session build's vector cache, and each one's entry and fold."""
    rows = alternate_rows(bot.index)
    vectors = alternate_vectors(bot.index, bot.model, VectorCache.of_model(settings.index_dir, settings.model))
    return rows, vectors, bot.index.text_entry[rows], alternate_folds(len(rows))


def _own(intent: Intent, n_entries: int, vector, companion, entry: int, model: int) -> float:
    return float(intent.probabilities(vector, companion, n_entries, model)[entry])


def test_the_build_fits_a_served_model_and_one_per_fold(bot):
    intent = bot.index.intent
    dims = bot.index.vectors.d + bot.index.companion_texts.shape[1]
    assert intent.weights.shape == (1 + FOLDS, len(intent.classes), dims + 1)
    # every entry with alternates is a class, and "none" (-1) is one for the off-topic questions
    assert set(intent.classes.tolist()) == {-1, *range(len(bot.index.entries))}
    assert "intent" in FEATURES and "intent" in bot.index.calibration["features"]


def test_a_held_out_alternate_is_classified_into_its_entry(bot, alternates):
    """Model 1 + k never saw fold k: it still puts most of those alternates in their own entry (what the signal
    is worth on questions nobody wrote down), while the served model, which saw them all, is surer of them."""
    rows, vectors, entries, folds = alternates
    n = len(bot.index.entries)
    intent = bot.index.intent
    held = np.array([_own(intent, n, v, bot.index.companion_texts[r], e, alternate_model(f))
                     for r, v, e, f in zip(rows, vectors, entries, folds, strict=True)])
    seen = np.array([_own(intent, n, v, bot.index.companion_texts[r], e, 0)
                     for r, v, e in zip(rows, vectors, entries, strict=True)])
    top = np.array([np.argmax(intent.probabilities(v, bot.index.companion_texts[r], n, alternate_model(f))) == e
                    for r, v, e, f in zip(rows, vectors, entries, folds, strict=True)])
    assert top.mean() > 0.85, top.mean()
    assert seen.mean() > held.mean() + 0.02, (seen.mean(), held.mean())


def test_a_counter_example_is_scored_by_a_model_that_never_saw_its_entrys_look_alikes(bot):
    """Each entry's counter-examples are left out of the model that scores them: that model gives them more of
    the entry than the served one does, which learned them as "none" and gives them well under half of it."""
    index, n = bot.index, len(bot.index.entries)
    examples = counter_examples(index)
    assert examples
    held, seen = [], []
    for ex in examples:
        vector, companion = index.anchors[ex.row], index.companion_anchors[ex.row]
        held.append(_own(index.intent, n, vector, companion, ex.entry, counter_example_model(ex.entry)))
        seen.append(_own(index.intent, n, vector, companion, ex.entry, 0))
    assert np.mean(held) > np.mean(seen) + 0.05, (np.mean(held), np.mean(seen))
    assert np.mean(seen) < 0.5


def test_intent_files_round_trip_and_a_misfit_is_refused(bot, tmp_path):
    intent = bot.index.intent
    save_intent(tmp_path, intent)
    n, dims = len(bot.index.entries), intent.weights.shape[2] - 1
    loaded = load_intent(tmp_path, n, dims)
    assert np.array_equal(loaded.weights, intent.weights) and np.array_equal(loaded.classes, intent.classes)
    with pytest.raises(ValueError, match="do not fit this index"):
        load_intent(tmp_path, n, dims - 1)  # another model's vectors
    with pytest.raises(ValueError, match="do not fit this index"):
        load_intent(tmp_path, n - 1, dims)  # a class for an entry the index does not have


def test_no_classifier_scores_zero_and_small_problems_fit():
    """Plumbing on made-up vectors: an index without alternates has no classifier (the signal is 0); two classes
    (scikit-learn's one-row binary case) and a fold left with one class still give per-entry probabilities."""
    rng = np.random.default_rng(0)
    assert not Intent.empty().probabilities(rng.normal(size=4), rng.normal(size=2), 3).any()
    assert fit_intent(np.zeros((0, 4)), np.zeros((0, 2)), np.zeros(0, int), np.zeros((0, 4)), np.zeros((0, 2)),
                      np.zeros(0, int)).classes.size == 0
    a = rng.normal(size=(10, 4))
    a[:, 0] += 3  # the alternates of entry 0 lean one way, the off-topic questions the other
    anchors = rng.normal(size=(10, 4))
    anchors[:, 0] -= 3
    intent = fit_intent(a, np.zeros((10, 2)), np.zeros(10, int), anchors, np.zeros((10, 2)), np.full(10, -1))
    assert intent.classes.tolist() == [-1, 0]
    assert _own(intent, 2, np.array([3.0, 0, 0, 0]), np.zeros(2), 0, 0) > 0.9
    assert _own(intent, 2, np.array([-3.0, 0, 0, 0]), np.zeros(2), 0, 0) < 0.1
    # counter-examples of entry 0 only, all in fold 0: model 1 sees the alternates alone and is sure of entry 0
    only_alt = fit_intent(a, np.zeros((10, 2)), np.zeros(10, int), anchors, np.zeros((10, 2)), np.zeros(10, int))
    assert _own(only_alt, 1, np.array([-3.0, 0, 0, 0]), np.zeros(2), 0, counter_example_model(0)) == pytest.approx(1)
