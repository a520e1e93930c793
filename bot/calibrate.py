"""Calibrate: fit the logistic combiner, the answer threshold and the ambiguity gap on the tuning queries.

Only `data/eval/tune.jsonl` and the data's own questions are used; `test.jsonl` stays unseen. Each (query,
candidate entry) pair is one example, labelled 1 when the entry is one the query expects. Besides the tuning
queries, the combiner learns from every alternate question searched without its fold (bot/heldout.py: ten times as
many real phrasings) and from the counter-examples (below). The fitted probability is the bot's confidence.
The decision numbers are chosen on *out-of-fold* probabilities (each tuning query scored by a combiner
fitted without it, `FOLDS`-fold by query) so that they hold for questions the combiner has not seen, not just
for the tuning phrasings:

- threshold: the lowest that lets through at most `MAX_FALSE_ANSWER_RATE` of the queries that must not
  be answered (out of scope, or top entry wrong) — the bot should answer exactly when it would be right.
  One per language (`thresholds`, used by `search.decide`), each on that language's queries, and one overall
  (`threshold`, for a question in neither language);
  Besides the tuning queries, every per-entry counter-example (`not_ja` / `not_en` in bilingual.yaml: a
  question that looks like the entry but asks what it does not say) counts as one must-not-answer query,
  searched with itself (and its translation) left out of the anchors (`counter_examples`). The tuning set
  alone is not enough: alternates and counter-examples written while its results were known make its
  near-domain questions easier than new ones, and a threshold fitted on it alone let ~10 % of new
  near-domain questions through;
- ambiguity_gap and choice_floor: below the threshold, when the top two or three scores are all at least
  the floor and closer than the gap, the bot offers them ("which did you mean?") instead of "no confident
  answer"; chosen so the choices hold the right entry as often as possible, keeping at most
  `MAX_AMBIGUOUS_RATE` of the queries ambiguous (`choose_gap`).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold

from .heldout import HeldOut
from .index import Index
from .intent import counter_example_model
from .queries import LabelledQuery
from .search import FEATURES, MAX_CHOICES, Searcher, decide
from .text import LANGS, normalize

__all__ = ["choose_gap", "choose_threshold", "counter_examples", "fit"]

#: Share of the must-not-answer tuning queries and counter-examples the threshold may let through, per
#: language. The counter-examples are most of that set and harder than most real near-domain questions (each was
#: written to look like one entry), so the rate on new near-domain questions comes out lower. Rule, fixed in round
#: 5 before looking: the largest budget whose near-domain false answers stay <= 1.5 % (half the 3 % target) in each
#: language on the private holdouts seen so far (validation for this one number; never test.jsonl since round 6).
#: Round 6 (docs/evaluation.md), on the 290 near-domain and 345 in-scope questions per language of holdouts 1-6:
#: 4 %: 0.3 % / 0.3 % near (ja / en), 0.988 / 0.971 right; 5 %: 1.4 % / 0.3 %, 0.997 / 0.986;
#: 6 %: 2.1 % / 1.4 %, 0.997 / 0.986. A seventh blind set, written before this choice, is the honest check.
#: Round 7, same rule on holdouts 1-9 with round 7's reviewed data: 5 % let 1.5 % / 1.7 % through, 4.5 % 1.3 % / 0.9 %
#: (0.996 / 0.996 right; docs/evaluation.md, round 7). Round 8 (`use_gap` dropped), same rule on holdouts 1-11 (590
#: near-domain questions per language): 5 % let 6 / 9 through (1.0 % / 1.5 %: over in en), 4.5 % 6 / 6 (0.993 / 0.996
#: right). Round 9 (the `intent` signal), on holdouts 1-13 (710 near-domain questions per language): 4.5 % let 6 / 2
#: through, 0.994 / 0.999 right; 5 % and 5.5 % 6 / 2, 0.995 / 0.999; 6 % 7 / 2, 0.995 / 0.999. All within the rule,
#: so it gained a tie-break: no larger than the smallest budget with the most right answers (a budget that buys no
#: right answer only lets more through on new questions): 5 %. Round 10 (+285 alt_ja, +60 not_ja, 16 small-talk
#: anchors), on holdouts 1-16 (890 near-domain, 995 in-scope questions per language), near-domain false answers / right:
#: 5 % 7 / 4, 991 / 992; 6 % 7 / 4, 992 / 992; 6.5 % 9 / 5, 993 / 992; 7 % 10 / 7, 993 / 993; 8 % 10 / 9; 9 % 10 / 13
#: (1.46 %, the last within 1.5 %); 10 % 12 / 18 (over). The tie-break gives 7 %. Round 11 (+160 counter-examples and
#: 20 anchors of the kinds holdout17 let through), on holdouts 1-17 (950 near, 1,060 in scope): 5 % 5 / 6, 1056 / 1056;
#: 6 % 7 / 6, 1058 / 1056; 7 % 8 / 7, 1058 / 1056; 8 % 10 / 10, 1058 / 1058; 9 % 11 / 15 (1.58 %: over). So 8 %.
#: Counter-examples that the engine already separates well make the same share a lower threshold: the budget is
#: a share of must-not-answer questions, and this rule, not the share, is what holds it to new questions.
MAX_FALSE_ANSWER_RATE = 0.08
#: Share of the in-scope tuning queries that may be answered with "which did you mean?".
MAX_AMBIGUOUS_RATE = 0.02
#: Gaps tried for the ambiguity rule (0 = never ambiguous).
GAPS = tuple(np.round(np.arange(0.0, 0.305, 0.01), 2))
FOLDS = 5
#: A language gets its own threshold only with at least this many must-not-answer questions in it.
MIN_NEGATIVES_PER_LANG = 50


def _pairs(searcher: Searcher, queries: list[LabelledQuery], vectors: np.ndarray,
           used: list[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    xs, ys, groups = [], [], []
    for qi, (query, vector) in enumerate(zip(queries, vectors, strict=True)):
        cand, feats, _ = searcher.signals(query.q, vector)
        xs.append(feats[:, used])
        ys += [int(searcher.index.entries[c].id in query.expect) for c in cand]
        groups += [qi] * len(cand)
    return np.vstack(xs), np.asarray(ys), np.asarray(groups)


def _combiner(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-9
    model = LogisticRegression(C=1.0, max_iter=2000).fit((x - mean) / scale, y)
    return mean, scale, model.coef_[0], float(model.intercept_[0])


def _prob(x: np.ndarray, mean: np.ndarray, scale: np.ndarray, weights: np.ndarray, bias: float) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-(((x - mean) / scale) @ weights + bias)))


def _out_of_fold(x: np.ndarray, y: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Each pair's probability from a combiner fitted on the other folds' queries."""
    n_groups = len(np.unique(groups))
    if n_groups < FOLDS:
        return _prob(x, *_combiner(x, y))
    prob = np.zeros(len(y))
    for train, held in GroupKFold(n_splits=FOLDS).split(x, y, groups):
        prob[held] = _prob(x[held], *_combiner(x[train], y[train]))
    return prob


class CounterExample(NamedTuple):
    text: str
    lang: str
    row: int  # its anchor row
    left_out: tuple[int, ...]  # anchor rows left out when it is searched: itself and its likely translation
    entry: int  # position of the entry it looks like (its intent classifier never saw that entry's look-alikes)


def counter_examples(index: Index) -> list[CounterExample]:
    """Every entry's counter-examples (`build` appends them after the off-topic anchors, in this order).

    Searched as a new question, one must not find itself among the anchors, nor its translation: most were
    written in both languages, and the companion (cross-lingual) finds the other-language copy at ~0.9 cosine,
    which made left-out counter-examples look easier to turn away than new questions and the threshold too
    lenient. So each is searched without its entry's counter-examples in the other language either."""
    rows: list[tuple[str, str, int]] = []  # (text, lang, entry position)
    for position, e in enumerate(index.entries):
        rows += [(normalize(t), "ja", position) for t in e.not_ja] + [(normalize(t), "en", position) for t in e.not_en]
    start = len(index.anchors) - len(rows)
    if not rows or start < 0:
        return []
    group: dict[tuple[int, str], list[int]] = {}
    for i, (_, lang, position) in enumerate(rows):
        group.setdefault((position, lang), []).append(start + i)
    other = {"ja": "en", "en": "ja"}
    return [CounterExample(text, lang, start + i, (start + i, *group.get((position, other[lang]), [])), position)
            for i, (text, lang, position) in enumerate(rows)]


def _counter_pairs(searcher: Searcher, examples: list[CounterExample], used: list[int],
                   first_group: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(features, labels, groups) of the counter-examples searched as new questions (`counter_examples`):
    each candidate is a negative example, one group per counter-example."""
    xs, groups = [], []
    for i, example in enumerate(examples):
        _, feats, _ = searcher.signals(example.text, searcher.index.anchors[example.row],
                                       exclude_anchors=example.left_out,
                                       companion_vector=searcher.index.companion_anchors[example.row],
                                       intent_model=counter_example_model(example.entry))
        xs.append(feats[:, used])
        groups += [first_group + i] * len(feats)
    if not xs:
        return np.zeros((0, len(used))), np.zeros(0, dtype=int), np.zeros(0, dtype=int)
    x = np.vstack(xs)
    return x, np.zeros(len(x), dtype=int), np.asarray(groups)


def fit(searcher: Searcher, queries: list[LabelledQuery], vectors: np.ndarray,
        features: tuple[str, ...] = FEATURES, held_out: HeldOut | None = None) -> dict:
    """Fit combiner weights, answer threshold and ambiguity gap; returns the calibration the manifest stores.

    `held_out` (bot/heldout.py: the alternates, each searched without its fold) adds training pairs to the
    combiner only; the threshold and the gap are still chosen on the tuning queries and counter-examples."""
    used = [FEATURES.index(f) for f in features]
    held_out = held_out or HeldOut.empty()
    qx, qy, qgroups = _pairs(searcher, queries, vectors, used)
    examples = counter_examples(searcher.index)
    cx, cy, cgroups = _counter_pairs(searcher, examples, used, len(queries))
    first_alternate = len(queries) + len(examples)
    x = np.vstack([qx, cx, held_out.x[:, used]])
    y = np.concatenate([qy, cy, held_out.y])
    groups = np.concatenate([qgroups, cgroups, held_out.groups + first_alternate])
    mean, scale, weights, bias = _combiner(x, y)
    scores = _out_of_fold(x, y, groups)
    unseen = np.asarray([scores[groups == g].max() for g in np.unique(cgroups)])

    ranked, right, in_scope = [], [], []
    for qi, query in enumerate(queries):
        mask = groups == qi
        order = np.argsort(-scores[mask], kind="stable")[:MAX_CHOICES]
        ranked.append(scores[mask][order].tolist())
        right.append(y[mask][order].astype(bool).tolist())
        in_scope.append(bool(query.expect))
    top_prob = np.concatenate([[r[0] for r in ranked], unseen])
    top_right = np.concatenate([[r[0] for r in right], np.zeros(len(unseen), dtype=bool)]).astype(bool)
    langs = np.asarray([q.lang for q in queries] + [c.lang for c in examples])
    threshold = choose_threshold(top_prob, top_right)
    thresholds = {lang: choose_threshold(top_prob[langs == lang], top_right[langs == lang])
                  for lang in LANGS if np.sum((langs == lang) & ~top_right) >= MIN_NEGATIVES_PER_LANG}
    gap, floor = choose_gap(ranked, right, in_scope, {"threshold": threshold, "thresholds": thresholds},
                            [q.lang for q in queries])
    return {"method": f"logistic combiner on tuning queries, held-out alternates and counter-examples; on "
                      f"{FOLDS}-fold out-of-fold scores and left-out counter-examples: threshold at most "
                      f"{MAX_FALSE_ANSWER_RATE:.0%} false answers, ambiguity gap at most "
                      f"{MAX_AMBIGUOUS_RATE:.0%} of in-scope queries ambiguous",
            "features": list(features), "weights": weights.tolist(), "bias": bias,
            "mean": mean.tolist(), "scale": scale.tolist(), "threshold": threshold, "thresholds": thresholds,
            "ambiguity_gap": gap, "choice_floor": floor,
            "n_queries": len(queries), "n_pairs": int(len(y)), "n_counter_examples": int(len(unseen)),
            "n_alternates": len(held_out.langs)}


def choose_threshold(top_prob: np.ndarray, top_right: np.ndarray, max_false: float = MAX_FALSE_ANSWER_RATE) -> float:
    """Lowest threshold letting at most `max_false` of the wrong/out-of-scope top scores through."""
    wrong = np.sort(top_prob[~top_right])[::-1]
    allowed = int(np.floor(max_false * len(wrong)))
    if allowed >= len(wrong):
        return 0.0
    above = wrong[allowed - 1] if allowed > 0 else 1.0
    return float((wrong[allowed] + above) / 2)


def choose_gap(ranked: list[list[float]], right: list[list[bool]], in_scope: list[bool], decision: dict,
               langs: list[str] | None = None, max_ambiguous: float = MAX_AMBIGUOUS_RATE) -> tuple[float, float]:
    """(ambiguity_gap, choice_floor) for `decide`, from the top scores of each tuning query.

    `decision` holds the threshold(s) (`search.threshold_for`), `langs` each query's language.
    Ambiguity only turns "no confident answer" into choices, so the rule is judged by the in-scope queries
    whose choices would hold the right entry minus the queries whose choices would not (out of scope, or
    without the right entry); none is adopted unless that is positive. At most `max_ambiguous` of the
    in-scope and of the out-of-scope queries may become ambiguous. Among equals the narrowest gap and the
    highest floor.
    """
    n_in, n_out = max(sum(in_scope), 1), max(len(in_scope) - sum(in_scope), 1)
    langs = langs or [None] * len(ranked)
    threshold = decision["threshold"]
    best, best_key = (0.0, threshold), (0, 0)
    for floor in (threshold * 0.75, threshold * 0.5, threshold * 0.25):
        for gap in GAPS:
            calibration = {**decision, "ambiguity_gap": gap, "choice_floor": floor}
            helped = useless = ambiguous_in = ambiguous_out = 0
            for scores, rights, inside, lang in zip(ranked, right, in_scope, langs, strict=True):
                outcome, n = decide(scores, calibration, lang)
                if outcome == "ambiguous":
                    ambiguous_in += inside
                    ambiguous_out += not inside
                    hit = inside and any(rights[:n])
                    helped += hit
                    useless += not hit
            if ambiguous_in / n_in > max_ambiguous or ambiguous_out / n_out > max_ambiguous:
                break  # a wider gap only makes more queries ambiguous
            key = (useless - helped, useless)  # adopted only when choices help more often than not
            if key < best_key:
                best, best_key = (float(gap), float(floor)), key
    return best
