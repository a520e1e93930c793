"""Search: rank entries for a question and decide whether the best one is a confident answer.

Signals per candidate entry (see `FEATURES`): the best cosine to its question-like texts (official
question, translation, alternates) and to its answer texts, the margin of that cosine over the best
other entry and over the nearest known off-topic question (data/out_of_scope.yaml), BM25 over
fugashi tokens and its margin, how much of the question's vocabulary the entry (and the sheet) covers, and
whether the question asks for a kind of information the entry's answer does not give (`asks`: a price,
a number, a product, ... — the near-domain questions that share a rare term with an entry), and the entry's
share of the companion encoder's nearest neighbours of the question among all question-like texts and off-topic
questions (`use_knn`: a second model, wrong in other places than e5, bot/companion.py; and a vote of the
neighbourhood, where the margins look at one nearest text each: one unusual alternate or counter-example sways a
margin, not a vote. The same vote over e5's neighbours added nothing, and the companion's own margin over the
nearest off-topic question, `use_gap`, tied with leaving it out three rounds running, so it went in round 8:
docs/evaluation.md), and the probability a classifier of both encoders' vectors gives the entry (`intent`,
bot/intent.py, round 9: it reads the whole vector where the margins and the vote read one nearest text).
e5's cosines sit in a narrow band (about 0.79-0.94) where in-scope and out-of-scope overlap, so no
raw cosine threshold works; a logistic combiner fitted on the labelled tuning queries (`calibrate`)
turns the signals into one calibrated score: the probability that the entry answers the question.
Entries are ranked by it, and the top one is an answer only when it reaches the fitted threshold
(`decide`); below it, two or three plausible, close entries make the result "ambiguous" and the user
chooses ("which did you mean?") instead of being told nothing matches.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from .asks import asked_kinds, asks_other
from .companion import Companion, shared_companion
from .embed import encode_queries
from .entries import Entry
from .errors import IndexError_
from .index import Index
from .text import detect_lang, normalize, tokens

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

FEATURES = ("cos_q", "cos_a", "cos_gap", "oos_gap", "bm25", "bm25_gap", "coverage", "known", "asks_other",
            "use_knn", "intent")
QUESTION_FIELDS = frozenset({"question", "question_en", "alt_ja", "alt_en"})
#: Candidates taken from each of the dense and the lexical ranking before combining.
CANDIDATES = 20
#: Nearest question-like texts and off-topic questions that vote in `use_knn`, and how sharply the vote favours
#: the nearest (a softmax temperature on the companion's cosines). Set once (docs/evaluation.md, round 6), not tuned.
NEIGHBOURS = 10
VOTE_TEMPERATURE = 0.04
#: At most this many entries are offered when the result is ambiguous.
MAX_CHOICES = 3
#: What `decide` makes of a ranking: answer with the top entry, let the user choose, or decline.
DECISIONS = ("answer", "ambiguous", "no_match")


@dataclass(frozen=True, slots=True)
class Hit:
    """An entry with its scores: `score` is the fused one (calibrated probability, higher is better)."""

    entry: Entry
    score: float
    cosine: float  # best cosine over all the entry's texts
    bm25: float
    matched: str  # which field of the entry was closest ("question", "alt_en", "answer", ...)
    features: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SearchResult:
    query: str
    lang: str
    hits: list[Hit]
    answered: bool  # decision == "answer"
    confidence: float  # score of the top hit
    threshold: float
    decision: str = "no_match"  # one of DECISIONS
    choices: list[Hit] = field(default_factory=list)  # set only when ambiguous, best first


def threshold_for(calibration: dict, lang: str | None) -> float:
    """The answer threshold for questions in `lang`: its own when the calibration fitted one, else the overall one.

    Each language gets its own (`calibrate.fit`): e5 and the companion score English paraphrases lower than
    Japanese ones, so one threshold, held up by the language whose near-domain questions score higher, turned
    away right English answers that were safe to give."""
    return float((calibration.get("thresholds") or {}).get(lang, calibration["threshold"]))


def decide(scores: list[float], calibration: dict, lang: str | None = None) -> tuple[str, int]:
    """The decision for scores ranked best first: ("answer" | "ambiguous" | "no_match", number of choices).

    The top entry is the answer when it reaches the threshold of the question's language (`threshold_for`).
    Below it the bot is not sure, but when the top two or three entries are all plausible (score >=
    `choice_floor`) and closer than `ambiguity_gap` to the top score (e.g. two look-alike entries on vendors'
    remote access) it offers them ("which did you mean?"; the choices are the first n hits) rather than
    saying nothing matches. A choice is never forced on a confident answer, so ambiguity adds no wrong answer
    and takes no right one. The numbers are fitted on tune.jsonl and the counter-examples (`calibrate.fit`).
    """
    if not len(scores):
        return "no_match", 0
    threshold = threshold_for(calibration, lang)
    top = scores[0]
    if top >= threshold:
        return "answer", 0
    gap = float(calibration.get("ambiguity_gap", 0.0))
    floor = float(calibration.get("choice_floor", threshold))
    close = sum(1 for s in scores[:MAX_CHOICES] if s >= floor and top - s < gap)
    return ("ambiguous", close) if close >= 2 else ("no_match", 0)


class Searcher:
    """Ranks the entries of one loaded index with one embedding model."""

    def __init__(self, index: Index, model: SentenceTransformer, calibration: dict | None = None,
                 companion: Companion | None = None) -> None:
        self.index = index
        self.model = model
        self.companion = companion or shared_companion()
        self.calibration = calibration if calibration is not None else index.calibration
        unknown = set(self.calibration.get("features", ())) - set(FEATURES)
        if unknown:  # an index fitted by another faqbot version, with signals this one does not compute
            raise IndexError_(f"{index.path}: the calibration uses signals this faqbot does not have "
                              f"({', '.join(sorted(unknown))}): run `faqbot build`")
        self.entry_tokens = _entry_tokens(index)
        self.vocabulary = set().union(*self.entry_tokens) if self.entry_tokens else set()
        self.is_question = np.array([f in QUESTION_FIELDS for f in index.text_field])
        n = index.vectors.ntotal
        self.depth = n if n <= 4096 else 512  # exact over everything for small sheets

    # -- signals --------------------------------------------------------------------------

    def signals(self, query: str, vector: np.ndarray | None = None, exclude_anchors: tuple[int, ...] = (),
                companion_vector: np.ndarray | None = None,
                intent_model: int = 0) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """Candidate entry positions, their feature matrix (columns = FEATURES) and best-matching field.

        `vector` / `companion_vector` are the question's vectors when the caller has them already.
        `exclude_anchors` leaves those off-topic anchors out, and `intent_model` picks a cross-fitted intent
        classifier that never saw the question: calibration searches each counter-example and alternate as if it
        were a new question nobody had written down (`calibrate.counter_examples`, bot/heldout.py)."""
        n_entries = len(self.index.entries)
        if vector is None:
            vector = encode_queries(self.model, [query])
        if companion_vector is None:
            companion_vector = self.companion.encode([query])[0]
        sims, rows = self.index.vectors.search(vector.reshape(1, -1), self.depth)
        sims, rows = sims[0], rows[0]
        keep = rows >= 0
        sims, rows = sims[keep], rows[keep]
        floor = float(sims.min()) if len(sims) else 0.0
        cos_q = np.full(n_entries, floor, dtype=np.float32)
        cos_a = np.full(n_entries, floor, dtype=np.float32)
        owners = self.index.text_entry[rows]
        is_q = self.is_question[rows]
        np.maximum.at(cos_q, owners[is_q], sims[is_q])
        np.maximum.at(cos_a, owners[~is_q], sims[~is_q])
        best_field = [""] * n_entries
        order = np.lexsort((sims, owners))  # by entry, then by similarity: each entry's closest text is last
        last = np.r_[owners[order][1:] != owners[order][:-1], True]
        for owner, row in zip(owners[order][last].tolist(), rows[order][last].tolist(), strict=True):
            best_field[owner] = self.index.text_field[row]
        best = np.maximum(cos_q, cos_a)
        # closeness to a known off-topic question (data/out_of_scope.yaml) counts against every entry
        anchors = self.index.anchors
        anchor_sims = anchors @ vector.reshape(-1) if len(anchors) else np.zeros(0, dtype=np.float32)
        nearest_anchor = _nearest(anchor_sims, exclude_anchors)
        use_knn = self._companion_vote(companion_vector, exclude_anchors)
        intent = self.index.intent.probabilities(vector, companion_vector, n_entries, intent_model)

        q_tokens = tokens(query)
        bm25 = np.log1p(np.asarray(self.index.bm25.get_scores(q_tokens), dtype=np.float32)) if q_tokens \
            else np.zeros(n_entries, dtype=np.float32)

        k = min(CANDIDATES, n_entries)
        cand = np.unique(np.concatenate([np.argpartition(-best, k - 1)[:k], np.argpartition(-bm25, k - 1)[:k]]))
        q_set = set(q_tokens)
        known = len(q_set & self.vocabulary) / len(q_set) if q_set else 0.0
        kinds = asked_kinds(query)
        top2_best, top2_bm25 = _two_largest(best), _two_largest(bm25)
        rows_out = []
        for c in cand:
            other_best = top2_best[1] if best[c] == top2_best[0] else top2_best[0]
            other_bm25 = top2_bm25[1] if bm25[c] == top2_bm25[0] else top2_bm25[0]
            coverage = len(q_set & self.entry_tokens[c]) / len(q_set) if q_set else 0.0
            rows_out.append([cos_q[c], cos_a[c], best[c] - other_best, best[c] - nearest_anchor, bm25[c],
                             bm25[c] - other_bm25, coverage, known, asks_other(kinds, self.index.entries[c].asks),
                             use_knn[c], intent[c]])
        return cand, np.asarray(rows_out, dtype=np.float64), [best_field[c] for c in cand]

    def _companion_vote(self, vector: np.ndarray, exclude_anchors: tuple[int, ...]) -> np.ndarray:
        """Each entry's share of the question's nearest texts under the companion encoder (`_vote`)."""
        sims = self.index.companion_texts @ vector
        anchors = self.index.companion_anchors
        anchor_sims = anchors @ vector if len(anchors) else np.zeros(0, dtype=np.float32)
        return _vote(sims[self.is_question], self.index.text_entry[self.is_question], anchor_sims, exclude_anchors,
                     len(self.index.entries), VOTE_TEMPERATURE)

    def score(self, features: np.ndarray) -> np.ndarray:
        """Calibrated probability per candidate from the fitted logistic combiner."""
        cal = self.calibration
        used = [FEATURES.index(f) for f in cal["features"]]
        x = (features[:, used] - np.asarray(cal["mean"])) / np.asarray(cal["scale"])
        return 1.0 / (1.0 + np.exp(-(x @ np.asarray(cal["weights"]) + cal["bias"])))

    # -- ranking --------------------------------------------------------------------------

    def search(self, query: str, k: int = 5, vector: np.ndarray | None = None) -> SearchResult:
        """Top-k entries for a question, best first, and whether the best is a confident answer."""
        text = normalize(query)
        cand, feats, fields = self.signals(text, vector)
        probs = self.score(feats)
        order = np.lexsort((-feats[:, 0], -probs))[:k]  # ties: closer question text first
        hits = [
            Hit(entry=self.index.entries[cand[i]], score=float(probs[i]),
                cosine=float(max(feats[i, 0], feats[i, 1])), bm25=float(np.expm1(feats[i, 4])),
                matched=fields[i], features=dict(zip(FEATURES, map(float, feats[i]), strict=True)))
            for i in order
        ]
        lang = detect_lang(text)
        decision, n_choices = decide([h.score for h in hits], self.calibration, lang)
        return SearchResult(query=text, lang=lang, hits=hits, answered=decision == "answer",
                            confidence=hits[0].score if hits else 0.0,
                            threshold=threshold_for(self.calibration, lang), decision=decision,
                            choices=hits[:n_choices])


def _entry_tokens(index: Index) -> list[set[str]]:
    """Each entry's token set, read from the BM25 matrix instead of re-tokenizing (45 s at 10,000 entries)."""
    scores, vocab = index.bm25.scores, index.bm25.vocab_dict
    token_of = {i: t for t, i in vocab.items()}
    owner = np.repeat(np.arange(len(scores["indptr"]) - 1), np.diff(scores["indptr"]))  # csc: column = token
    out: list[set[str]] = [set() for _ in index.entries]
    for doc, tok in zip(scores["indices"].tolist(), owner.tolist(), strict=True):
        out[doc].add(token_of[tok])
    return out


def _vote(sims: np.ndarray, owners: np.ndarray, anchor_sims: np.ndarray, exclude: tuple[int, ...],
          n_entries: int, temperature: float) -> np.ndarray:
    """Each entry's share of the question's `NEIGHBOURS` nearest texts, weighted by softmax(cosine / temperature).

    `sims` / `owners`: cosines to the question-like texts and their entries; the off-topic anchors (those in
    `exclude` left out) take part but vote for no entry, so a question among counter-examples gets a low share."""
    anchor_sims = np.asarray(anchor_sims, dtype=np.float32).copy()
    if exclude:
        anchor_sims[list(exclude)] = -np.inf
    pool = np.concatenate([sims, anchor_sims])
    owner = np.concatenate([owners, np.full(len(anchor_sims), -1)])
    vote = np.zeros(n_entries, dtype=np.float32)
    k = min(NEIGHBOURS, int(np.isfinite(pool).sum()))
    if k == 0:
        return vote
    top = np.argpartition(-pool, k - 1)[:k]
    weight = np.exp((pool[top] - pool[top].max()) / temperature)
    mine = owner[top] >= 0
    np.add.at(vote, owner[top][mine], weight[mine])
    return vote / weight.sum()


def _nearest(anchor_sims: np.ndarray, exclude: tuple[int, ...]) -> float:
    """The highest similarity to an anchor, those in `exclude` left out (0 when there is none)."""
    if exclude:
        anchor_sims = np.delete(anchor_sims, list(exclude))
    return float(anchor_sims.max()) if len(anchor_sims) else 0.0


def _two_largest(values: np.ndarray) -> tuple[float, float]:
    if len(values) == 1:
        return float(values[0]), float(values[0])
    top = np.partition(values, -2)[-2:]
    return float(top[1]), float(top[0])
