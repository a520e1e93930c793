"""Explain: the trainers' test pane — why the bot ranks and decides as it does for one question.

For the top entries it shows the calibrated score, every signal's raw value, its standardised value
and its contribution to the score's log-odds (weight × standardised value, plus the bias), which of
the entry's own texts matched best (the alternate question itself, not only its field name), the gap
to the next entry, the threshold, and the status `FaqBot.ask` gives. The combiner is read from the
index's calibration (features, weights, mean, scale, bias, threshold) without naming any signal, so
a signal added to search shows up here by itself; a signal search computes but the combiner does not
use is shown with no contribution.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .embed import encode_queries
from .index import searchable_texts
from .search import FEATURES, QUESTION_FIELDS, threshold_for
from .settings import MAX_QUESTION_CHARS
from .text import detect_lang, normalize

if TYPE_CHECKING:
    from .answer import FaqBot

__all__ = ["explain", "format_explanation"]

#: Entries explained per question.
TOP = 5


def _best_texts(bot: FaqBot, position: int, vector: np.ndarray) -> tuple[dict, dict | None]:
    """The entry's closest question-like text and closest answer text, with their cosines."""
    index = bot.index
    rows = np.flatnonzero(index.text_entry == position)
    texts = searchable_texts(index.entries[position])  # rows of one entry are stored in this order
    sims = np.array([float(index.vectors.reconstruct(int(r)) @ vector) for r in rows])
    best: dict[bool, dict] = {}
    for (field, text), sim in zip(texts, sims.tolist(), strict=True):
        is_question = field in QUESTION_FIELDS
        if is_question not in best or sim > best[is_question]["cosine"]:
            best[is_question] = {"field": field, "text": text, "cosine": round(sim, 4)}
    return best.get(True, {"field": "", "text": "", "cosine": None}), best.get(False)


def explain(bot: FaqBot, question: str, top: int = TOP) -> dict:
    """Everything the test pane shows for `question`, as one JSON-able dict."""
    answer = bot.ask(question)
    text = normalize(question if isinstance(question, str) else "")[:MAX_QUESTION_CHARS]
    cal = bot.searcher.calibration
    out = {"query": answer.query, "lang": answer.lang, "status": answer.status, "answered": answer.answered,
           "answer_id": answer.entry.id if answer.entry else None, "confidence": round(answer.confidence, 4),
           "threshold": round(threshold_for(cal, detect_lang(text)), 4), "bias": round(float(cal["bias"]), 4),
           # every number of the decision the calibration holds (threshold, ambiguity gap, choice floor, ...)
           "decision": {k: round(float(v), 4) for k, v in cal.items()
                        if k in ("ambiguity_gap", "choice_floor") and v is not None},
           "choices": [h.entry.id for h in answer.choices], "message": answer.message, "entries": []}
    out["decision"] = {"threshold": out["threshold"], **out["decision"]}  # the question's language's threshold
    if answer.status == "error" or not answer.hits:
        return out
    vector = encode_queries(bot.model, [text])
    cand, feats, _ = bot.searcher.signals(text, vector)
    probs = bot.searcher.score(feats)
    order = np.lexsort((-feats[:, 0], -probs))[:top]  # the searcher's own ordering
    used = list(cal["features"])
    weights = dict(zip(used, map(float, cal["weights"]), strict=True))
    mean = dict(zip(used, map(float, cal["mean"]), strict=True))
    scale = dict(zip(used, map(float, cal["scale"]), strict=True))
    names = list(FEATURES)
    for rank, i in enumerate(order.tolist(), start=1):
        entry = bot.index.entries[cand[i]]
        signals = []
        logit = float(cal["bias"])
        for col, name in enumerate(names):
            value = float(feats[i, col])
            row = {"name": name, "value": round(value, 4), "standardised": None, "weight": None, "contribution": None}
            if name in weights:
                z = (value - mean[name]) / scale[name]
                contribution = weights[name] * z
                logit += contribution
                row.update(standardised=round(z, 4), weight=round(weights[name], 4),
                           contribution=round(contribution, 4))
            signals.append(row)
        matched, matched_answer = _best_texts(bot, int(cand[i]), vector[0])
        nxt = order[rank] if rank < len(order) else None
        out["entries"].append({
            "rank": rank, "id": entry.id, "question": entry.question, "question_en": entry.question_en,
            "score": round(float(probs[i]), 4), "log_odds": round(logit, 4),
            "gap_to_next": round(float(probs[i] - probs[nxt]), 4) if nxt is not None else None,
            "above_threshold": bool(probs[i] >= out["threshold"]),
            "matched": matched, "matched_answer": matched_answer, "signals": signals,
        })
    first = out["entries"]
    out["gap"] = round(first[0]["score"] - first[1]["score"], 4) if len(first) > 1 else None
    return out


def format_explanation(data: dict) -> str:
    """The test pane as text: decision first, then one block per entry with its signal table."""
    lines = [f"Question: {data['query']}  [{data['lang']}]",
             f"Status: {data['status']}" + (f" -> {data['answer_id']}" if data["answer_id"] else "")
             + (f" (choices: {', '.join(data['choices'])})" if data["choices"] else ""),
             f"Confidence {data['confidence']:.3f} vs threshold {data['threshold']:.3f}"
             + "".join(f", {k.replace('_', ' ')} {v:.3f}" for k, v in data["decision"].items() if k != "threshold")
             + (f"; gap to the second entry {data['gap']:.3f}" if data.get("gap") is not None else "")]
    if data["message"]:
        lines.append(data["message"])
    for e in data["entries"]:
        m = e["matched"]
        lines += ["", f"#{e['rank']} {e['id']}  score {e['score']:.3f}  (log-odds {e['log_odds']:+.2f}"
                  + (f", {e['gap_to_next']:.3f} above the next" if e["gap_to_next"] is not None else "") + ")",
                  f"   {e['question'][:100]}",
                  f"   matched {m['field']}: \"{m['text'][:100]}\" (cosine {m['cosine']})"]
        if e["matched_answer"]:
            a = e["matched_answer"]
            lines.append(f"   closest answer text {a['field']} (cosine {a['cosine']})")
        lines.append(f"   {'signal':<12}{'value':>9}{'std':>9}{'weight':>9}{'contrib':>9}")
        for s in e["signals"]:
            cells = [s["value"], s["standardised"], s["weight"], s["contribution"]]
            lines.append(f"   {s['name']:<12}" + "".join(f"{'—' if c is None else f'{c:+.3f}':>9}" for c in cells))
        lines.append(f"   {'bias':<12}{'':>27}{data['bias']:>+9.3f}")
    return "\n".join(lines)
