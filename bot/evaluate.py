"""Evaluate: how well the bot ranks and answers labelled queries — ranking metrics, answer rates, failures.

Each query is searched the way `FaqBot.ask` searches it (normalised, same searcher, same threshold),
only deeper (top `DEPTH`) and with the queries encoded in one batch. Ranking metrics come from ranx
over the in-scope queries (an out-of-scope query has nothing to rank). An `expect` list names
*alternative* right entries, so Recall@k is the share of queries with an expected entry in the top k
(ranx `hit_rate@k`, also called success@k); ranx's `recall@k` would ask for all of them. Answer rates
follow the bot's own decision (`search.decide`: answer, ambiguous or no match); "answered" includes an
entry without an official answer (status no_official_answer), and "ambiguous" is neither right nor wrong:

    answered_rate            in-scope queries the bot answers
    correct_answer_rate      in-scope queries answered with an expected entry (the headline for in scope)
    wrong_answer_rate        in-scope queries answered with another entry
    ambiguous_rate           in-scope queries answered with "which did you mean?" choices
    choices_hold_right_rate  of those, the share whose choices include an expected entry
    no_official_answer_rate  in-scope queries that expect an entry without an official answer and get it
                             (status no_official_answer: the user is told so and shown see-also entries)
    false_answer_rate        out-of-scope queries answered all the same; split by the query's `kind`:
    false_answer_near        ... near-domain ones (share a term with an entry; the headline for out of scope)
    false_answer_far         ... the rest (small talk, other hospital business)
"""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .embed import encode_queries
from .queries import IN_SCOPE_KINDS, LabelledQuery, read_queries
from .search import Searcher
from .settings import MAX_QUESTION_CHARS
from .text import LANGS, normalize  # LANGS: table order (any other label follows, alphabetically)
from .vectorcache import VectorCache

if TYPE_CHECKING:
    from .answer import FaqBot

__all__ = [
    "DEPTH", "METRICS", "OUT_OF_SCOPE", "Report", "Row", "as_asked", "confusions", "encode", "evaluate",
    "evaluate_file", "metrics", "ranking_metrics", "search_rows", "threshold_sweep",
]

#: Hits kept per query: enough for MRR@10 and nDCG@10.
DEPTH = 10
#: Our metric name -> ranx metric.
RANKING = {"Recall@1": "hit_rate@1", "Recall@3": "hit_rate@3", "Recall@5": "hit_rate@5",
           "MRR@10": "mrr@10", "nDCG@10": "ndcg@10"}
RATES = {"answered_rate": "Answered (in scope)", "correct_answer_rate": "Correct answer (in scope)",
         "wrong_answer_rate": "Wrong answer (in scope)", "ambiguous_rate": "Ambiguous (in scope)",
         "choices_hold_right_rate": "Choices hold the right one",
         "no_official_answer_rate": "No-official-answer handled",
         "false_answer_rate": "False answer (out of scope)", "false_answer_near": "False answer, near-domain",
         "false_answer_far": "False answer, far"}
#: Every metric a report holds per language, in table order.
METRICS = (*RANKING, *RATES)
#: The "expected" side of a confusion when an out-of-scope query was answered.
OUT_OF_SCOPE = "(out of scope)"

@dataclass(frozen=True, slots=True)
class Row:
    """One labelled query and what the bot did with it; `got` and `scores` are best first, up to DEPTH."""

    q: str
    lang: str
    expect: tuple[str, ...]  # empty: out of scope
    got: tuple[str, ...]
    scores: tuple[float, ...]  # calibrated probability of each hit
    cosine: float  # best cosine of the top hit (the raw dense signal, for comparison)
    answered: bool  # the bot gave an entry as its answer (status answered or no_official_answer)
    confidence: float
    line: int = 0  # line in the query file
    kind: str = ""  # queries.KINDS; "" = "in" with `expect`, "far" without
    status: str = ""  # answer.STATUSES except "error"; "" = from `answered`
    choices: tuple[str, ...] = ()  # entries offered when ambiguous
    expects_no_answer: bool = False  # every expected entry is one without an official answer

    @property
    def in_scope(self) -> bool:
        return bool(self.expect)

    @property
    def category(self) -> str:
        return self.kind or ("in" if self.expect else "far")

    @property
    def ambiguous(self) -> bool:
        return self.status == "ambiguous"

    @property
    def top(self) -> str | None:
        return self.got[0] if self.got else None

    @property
    def rank(self) -> int | None:
        """1-based position of the first expected entry among the hits, or None."""
        return next((i for i, g in enumerate(self.got, start=1) if g in self.expect), None)

    @property
    def correct_answer(self) -> bool:
        return self.answered and self.top in self.expect

    @property
    def failed(self) -> bool:
        """Worth a trainer's look: in scope but not answered right, or out of scope but answered."""
        return not self.correct_answer if self.in_scope else self.answered

    def to_json(self) -> dict:
        return {"q": self.q, "lang": self.lang, "kind": self.category, "expect": list(self.expect),
                "got": list(self.got), "scores": [round(s, 4) for s in self.scores], "cosine": round(self.cosine, 4),
                "status": self.status, "answered": self.answered, "choices": list(self.choices),
                "confidence": round(self.confidence, 4), "rank": self.rank, "line": self.line}


@dataclass(frozen=True, slots=True)
class Report:
    """Metrics overall (`"all"`) and per language, with the per-query rows they came from."""

    source: str
    threshold: float
    rows: list[Row]
    metrics: dict[str, dict[str, float | int | None]]

    @classmethod
    def of(cls, rows: list[Row], threshold: float, source: str = "") -> Report:
        present = {r.lang for r in rows}
        langs = [lang for lang in LANGS if lang in present] + sorted(present - set(LANGS))
        groups = {"all": rows} | {lang: [r for r in rows if r.lang == lang] for lang in langs}
        return cls(source=source, threshold=threshold, rows=rows, metrics={k: metrics(v) for k, v in groups.items()})

    @property
    def failures(self) -> list[Row]:
        return [r for r in self.rows if r.failed]

    def to_json(self) -> dict:
        return {"source": self.source, "threshold": round(self.threshold, 4), "metrics": self.metrics,
                "confusions": [{"expected": e, "ranked_first": g, "count": n} for e, g, n in confusions(self.rows)],
                "queries": [r.to_json() for r in self.rows]}


# --------------------------------------------------------------------------- metrics


def _share(rows: Sequence[Row], test: Callable[[Row], bool]) -> float | None:
    return sum(map(test, rows)) / len(rows) if rows else None


def ranking_metrics(rows: Sequence[Row]) -> dict[str, float | None]:
    """Recall@1/3/5, MRR@10 and nDCG@10 from ranx over in-scope rows (None when there are none)."""
    rows = [r for r in rows if r.in_scope]
    if not rows:
        return dict.fromkeys(RANKING)
    from ranx import Qrels, Run  # numba-compiled: imported only when metrics are asked for
    from ranx import evaluate as ranx_evaluate

    qrels = Qrels.from_dict({f"q{i}": dict.fromkeys(r.expect, 1) for i, r in enumerate(rows)})
    # reverse rank as the score: ranx re-sorts by score, and calibrated probabilities can tie
    run = Run.from_dict({f"q{i}": {g: float(DEPTH - j) for j, g in enumerate(r.got)}
                         for i, r in enumerate(rows) if r.got})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # numba's type-safety notes about its own casts
        values = ranx_evaluate(qrels, run, list(RANKING.values()), make_comparable=True)
    return {name: float(values[metric]) for name, metric in RANKING.items()}


def metrics(rows: Sequence[Row]) -> dict[str, float | int | None]:
    """Query counts, ranking metrics and answer rates of a set of rows; a rate without queries is None."""
    inside = [r for r in rows if r.in_scope]
    outside = [r for r in rows if not r.in_scope]
    near = [r for r in outside if r.category == "near"]
    far = [r for r in outside if r.category != "near"]
    return {"n_queries": len(rows), "n_in_scope": len(inside), "n_out_of_scope": len(outside),
            "n_near": len(near), "n_far": len(far),
            **ranking_metrics(inside),
            "answered_rate": _share(inside, lambda r: r.answered),
            "correct_answer_rate": _share(inside, lambda r: r.correct_answer),
            "wrong_answer_rate": _share(inside, lambda r: r.answered and r.top not in r.expect),
            "ambiguous_rate": _share(inside, lambda r: r.ambiguous),
            "choices_hold_right_rate": _share([r for r in inside if r.ambiguous],
                                              lambda r: bool(set(r.choices) & set(r.expect))),
            "no_official_answer_rate": _share([r for r in inside if r.expects_no_answer],
                                              lambda r: r.status == "no_official_answer" and r.top in r.expect),
            "false_answer_rate": _share(outside, lambda r: r.answered),
            "false_answer_near": _share(near, lambda r: r.answered),
            "false_answer_far": _share(far, lambda r: r.answered)}


def confusions(rows: Iterable[Row]) -> list[tuple[str, str, int]]:
    """(expected, ranked first, count), most frequent first: in-scope queries whose top entry is wrong,
    and out-of-scope queries that were answered (expected = OUT_OF_SCOPE)."""
    counts: Counter[tuple[str, str]] = Counter()
    for r in rows:
        if r.in_scope and r.top is not None and r.top not in r.expect:
            counts[(" | ".join(r.expect), r.top)] += 1
        elif not r.in_scope and r.answered and r.top is not None:
            counts[(OUT_OF_SCOPE, r.top)] += 1
    return [(expected, got, n) for (expected, got), n in counts.most_common()]


def threshold_sweep(rows: Sequence[Row], thresholds: Iterable[float] | None = None) -> list[dict[str, float | None]]:
    """What each answer threshold would do, from each query's top confidence.

    Per threshold: answered rate, precision (answers that are right) and correct-answer rate on the
    in-scope queries, and the false-answer rate on the out-of-scope ones. Default: 0, 0.01, ..., 1.
    """
    grid = np.linspace(0.0, 1.0, 101) if thresholds is None else np.asarray(list(thresholds), dtype=float)
    inside = [r for r in rows if r.in_scope]
    conf_in = np.array([r.confidence for r in inside])
    right_in = np.array([r.top in r.expect for r in inside], dtype=bool)
    conf_out = np.array([r.confidence for r in rows if not r.in_scope])
    out = []
    for t in grid:
        answered = conf_in >= t
        out.append({
            "threshold": float(t),
            "answered_rate": float(answered.mean()) if len(inside) else None,
            "precision": float(right_in[answered].mean()) if answered.any() else None,
            "correct_answer_rate": float((answered & right_in).mean()) if len(inside) else None,
            "false_answer_rate": float((conf_out >= t).mean()) if len(conf_out) else None,
        })
    return out


# --------------------------------------------------------------------------- running the bot


def as_asked(text: str) -> str:
    """The text `FaqBot.ask` searches for a question."""
    return normalize(text)[:MAX_QUESTION_CHARS]


def encode(bot: FaqBot, queries: Sequence[LabelledQuery]) -> np.ndarray:
    """Query vectors in one batch; pass them to `evaluate`/`ablation` to search the same queries again cheaply.

    Vectors the build already computed (tune.jsonl's queries, in the index's vector cache, bot/vectorcache.py) are
    read from the cache instead of encoded again: a trainer's `faqbot eval data/eval/tune.jsonl` skips ~15 s of
    encoding. The cache is only read here, never written: evaluating changes nothing under the index folder."""
    if not queries:
        return np.zeros((0, 1), dtype=np.float32)
    cache = VectorCache.of_model(bot.settings.index_dir, bot.settings.model)
    return cache.encode("query", [as_asked(q.q) for q in queries], lambda todo: encode_queries(bot.model, todo))


def _status(decision: str, top_has_answer: bool) -> str:
    """The `Answer.status` FaqBot gives for a search decision (the same mapping as `FaqBot._compose`)."""
    if decision == "answer":
        return "answered" if top_has_answer else "no_official_answer"
    return decision


def search_rows(searcher: Searcher, queries: Sequence[LabelledQuery], vectors: np.ndarray) -> list[Row]:
    """One `Row` per query, searched with `searcher` (its calibration decides) from the given query vectors."""
    rows = []
    has_answer = {e.id: e.has_answer for e in searcher.index.entries}
    for query, vector in zip(queries, vectors, strict=True):
        result = searcher.search(as_asked(query.q), k=DEPTH, vector=vector)
        top = result.hits[0] if result.hits else None
        kind = query.kind if (query.kind in IN_SCOPE_KINDS) == bool(query.expect) else ""
        rows.append(Row(q=query.q, lang=query.lang or result.lang, expect=tuple(query.expect),
                        got=tuple(h.entry.id for h in result.hits), scores=tuple(h.score for h in result.hits),
                        cosine=top.cosine if top else 0.0, answered=result.answered,
                        confidence=result.confidence, line=query.line, kind=kind,
                        status=_status(result.decision, top is not None and top.entry.has_answer),
                        choices=tuple(h.entry.id for h in result.choices),
                        expects_no_answer=bool(query.expect) and not any(has_answer.get(i, True)
                                                                          for i in query.expect)))
    return rows


def evaluate(bot: FaqBot, queries: Sequence[LabelledQuery], vectors: np.ndarray | None = None,
             source: str = "") -> Report:
    """Search every query with the bot and measure the result; `vectors` from `encode` skip re-encoding."""
    vectors = encode(bot, queries) if vectors is None else vectors
    searcher = bot.searcher
    return Report.of(search_rows(searcher, queries, vectors), float(searcher.calibration["threshold"]), source)


def evaluate_file(bot: FaqBot, path: Path | str) -> Report:
    """`evaluate` on a labelled query file (`{"q", "lang", "expect": [ids]}` per line)."""
    path = Path(path)
    return evaluate(bot, read_queries(path, set(bot.entries)), source=str(path))
