"""Held-out alternates (bot/heldout.py): every alternate is a training question that must not find itself."""

from __future__ import annotations

import numpy as np
import pytest

from bot.embed import model_version
from bot.heldout import alternate_vectors, held_out_alternates, without
from bot.index import text_rows
from bot.search import FEATURES, Searcher
from bot.text import normalize, tokens
from bot.vectorcache import VectorCache


@pytest.fixture(scope="module")
def held(bot, settings):
    cache = VectorCache.under(settings.index_dir, settings.model, model_version(settings.model))
    return held_out_alternates(bot.index, bot.model, alternate_vectors(bot.index, bot.model, cache))


def _alternates(bot) -> dict[str, int]:
    return {"ja": sum(len(e.alt_ja) for e in bot.index.entries), "en": sum(len(e.alt_en) for e in bot.index.entries)}


def test_every_alternate_is_one_training_question_whose_own_entry_is_the_right_pair(bot, held):
    counts = _alternates(bot)
    n = counts["ja"] + counts["en"]
    assert {lang: held.langs.count(lang) for lang in ("ja", "en")} == counts
    # on the 17-entry sheet every entry is a candidate, so each alternate has exactly one right pair
    assert np.bincount(held.groups[held.y == 1], minlength=n).tolist() == [1] * n
    assert held.x.shape == (len(held.y), len(FEATURES))
    # the build fitted the combiner with them
    assert bot.index.calibration["n_alternates"] == n


def test_an_alternate_searched_without_its_fold_does_not_find_itself(bot, held):
    """In the full index an alternate finds its own text (its closest, and every word of it is its entry's); held
    out it must not, or the combiner would learn from questions it had already seen."""
    cos_q, coverage = FEATURES.index("cos_q"), FEATURES.index("coverage")
    alternates = [(position, t) for position, e in enumerate(bot.index.entries) for t in (*e.alt_ja, *e.alt_en)]
    closer = 0
    for i in range(0, len(alternates), 25):
        position, text = alternates[i]
        cand, feats, _ = bot.searcher.signals(normalize(text))
        full = feats[list(cand).index(position)]
        held_out = held.x[(held.groups == i) & (held.y == 1)][0]
        assert full[coverage] == 1.0 and held_out[cos_q] <= full[cos_q] + 1e-6
        closer += held_out[cos_q] < full[cos_q] - 1e-6
    assert closer >= 0.9 * len(range(0, len(alternates), 25))
    # held out, a good share of the alternates use words their entry's other texts do not have
    assert np.mean(held.x[held.y == 1][:, coverage] < 1.0) > 0.2


def test_without_forgets_the_texts_in_every_part_of_the_index(bot):
    index = bot.index
    row = index.text_field.index("alt_en")
    texts = [t for _, _, t in text_rows(index.entries)]
    every_vector = index.vectors.reconstruct_n(0, index.vectors.ntotal)
    smaller = without(index, {row}, every_vector, [tokens(t) for t in texts])
    assert smaller.vectors.ntotal == index.vectors.ntotal - 1 == len(smaller.text_field) == len(smaller.text_entry)
    assert len(smaller.companion_texts) == len(index.companion_texts) - 1
    sims, _ = smaller.vectors.search(every_vector[row: row + 1], 1)
    assert sims[0, 0] < 0.995  # its own vector is gone
    assert Searcher(smaller, bot.model, calibration={}).signals(normalize(texts[row]))[1].shape[1] == len(FEATURES)
