"""Review: the trainers' queue of doubtful questions from the outcome store — grouped, with a suggested fix.

What lands in the queue (kinds, in this order when counts tie):

    no_match        the bot found nothing confident
    ambiguous       two or three entries were plausible and close
    low_confidence  answered, but with confidence < LOW_CONFIDENCE or a margin < LOW_MARGIN to the second
    downvoted       a user gave the answer 👎

Questions of one kind are grouped when they are the same after normalisation (`curate.text_key`) or
their query embeddings have a cosine of at least `NEAR_DUPLICATE_COSINE`. That cut was measured on
the data (`pair_cosines`): over the 1,349 labelled in-scope queries and alternate questions of
2026-11-26, only 43 of 855,321 pairs that belong to *different* entries (0.005 %) reach 0.95, while 524
same-entry pairs do — so a group practically never mixes two needs (0.94: 75, 0.96: 22).
Groups are listed most frequent first.

Each group gets a suggestion from the *current* index: the top entry for its most frequent question
(for 👎, the best entry other than the one voted down). Accepting adds that question as an alternate
of the suggested entry (or of `to`) and appends it to data/eval/regressions.jsonl; rejecting only
remembers the group. Decisions live in a small JSON file (`review.json` next to the SQLite feedback
database, else var/review.json) holding *hashes* of the questions, never their text: questions may
hold personal details and stay only in the store.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .curate import add_alternate, add_regression, text_key
from .embed import encode_queries
from .errors import BotError
from .text import detect_lang, normalize

if TYPE_CHECKING:
    from .answer import FaqBot
    from .settings import Settings

__all__ = ["KINDS", "Group", "ReviewState", "accept", "build_queue", "open_bot", "pair_cosines", "reject", "state_path"]

KINDS = ("no_match", "ambiguous", "low_confidence", "downvoted")
#: Answered with less than even odds of being right: worth a look.
LOW_CONFIDENCE = 0.5
#: Answered, but the second entry's score was this close to the first's.
LOW_MARGIN = 0.1
#: Cosine of query embeddings from which two questions count as the same (see the module docstring).
NEAR_DUPLICATE_COSINE = 0.95


@dataclass(slots=True)
class Group:
    """Near-identical questions of one kind, with the entry the queue suggests for them."""

    kind: str
    questions: list[str]  # distinct texts, most frequent first
    count: int  # rows (outcomes or votes) in the group
    status: str  # the most frequent recorded status
    lang: str
    suggested: dict | None = None  # {"id", "question", "score"}
    voted_entry: str = ""  # downvoted: the entry that got the 👎
    hashes: list[str] = field(default_factory=list)

    @property
    def key(self) -> str:
        """A stable name of the group: its kind and its most frequent question."""
        return self.hashes[0][:12] if self.hashes else ""

    def to_json(self, number: int | None = None) -> dict:
        out = {"kind": self.kind, "questions": self.questions, "count": self.count, "suggested": self.suggested,
               "status": self.status, "lang": self.lang, "key": self.key}
        if number is not None:
            out["group"] = number
        if self.voted_entry:
            out["voted_entry"] = self.voted_entry
        return out


def _hash(kind: str, question: str) -> str:
    return hashlib.sha256(f"{kind}\0{text_key(question)}".encode()).hexdigest()


def state_path(feedback_db: str | Path) -> Path:
    """Where review decisions are kept: beside a SQLite database, or var/review.json for a PostgreSQL URL."""
    text = str(feedback_db)
    if text.startswith(("postgresql://", "postgres://")):
        return Path("var") / "review.json"
    return Path(text).parent / "review.json"


class ReviewState:
    """Decisions taken on groups: question hash -> {"decision", "entry", "at"} (no question text)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            self.decisions: dict[str, dict] = dict(data.get("decisions", {}))
        except FileNotFoundError:
            self.decisions = {}
        except (OSError, ValueError, AttributeError) as err:
            raise BotError(f"{self.path} is not a readable review state ({err}); move it away to start the "
                           "review queue afresh") from err

    def reviewed(self, kind: str, question: str) -> bool:
        return _hash(kind, question) in self.decisions

    def mark(self, group: Group, decision: str, entry: str = "") -> None:
        at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        for digest in group.hashes:
            self.decisions[digest] = {"decision": decision, "entry": entry, "at": at}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".review-", suffix=".tmp", dir=self.path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump({"decisions": self.decisions}, handle, indent=1)
        os.replace(tmp, self.path)


def _kind(outcome: dict) -> str | None:
    status = outcome.get("status")
    if status in ("no_match", "ambiguous"):
        return status
    if status == "answered":
        confidence, margin = outcome.get("confidence"), outcome.get("margin")
        top = outcome.get("top") or []
        if margin is None and len(top) > 1:
            margin = top[0]["score"] - top[1]["score"]
        if (confidence is not None and confidence < LOW_CONFIDENCE) or (margin is not None and margin < LOW_MARGIN):
            return "low_confidence"
    return None


def _items(outcomes: list[dict], votes: list[dict]) -> list[tuple[str, str, str, str, str]]:
    """(kind, question, lang, status, voted entry) for every row that belongs in the queue."""
    out = []
    for row in outcomes:
        kind = _kind(row)
        if kind and normalize(row.get("question") or ""):
            out.append((kind, normalize(row["question"]), row.get("lang") or "", row.get("status") or "", ""))
    for row in votes:
        if row.get("rating") == "down" and normalize(row.get("question") or ""):
            out.append(("downvoted", normalize(row["question"]), row.get("lang") or "", row.get("status") or "",
                        row.get("entry_id") or ""))
    return out


def _cluster(texts: list[str], vectors: np.ndarray, cut: float) -> list[list[int]]:
    """Greedy grouping: each text (most frequent first) joins the first group whose leader it is close to."""
    leaders: list[int] = []
    members: list[list[int]] = []
    keys: dict[str, int] = {}
    for i, text in enumerate(texts):
        same = keys.get(text_key(text))
        if same is None and leaders:
            sims = vectors[leaders] @ vectors[i]
            best = int(np.argmax(sims))
            same = best if sims[best] >= cut else None
        if same is None:
            leaders.append(i)
            members.append([])
            same = len(leaders) - 1
        keys.setdefault(text_key(text), same)
        members[same].append(i)
    return members


def build_queue(bot: FaqBot, outcomes: list[dict], votes: list[dict], state: ReviewState | None = None,
                cut: float = NEAR_DUPLICATE_COSINE) -> list[Group]:
    """The review queue from store rows: groups not yet reviewed, most frequent first, each with a suggestion."""
    rows = [r for r in _items(outcomes, votes) if state is None or not state.reviewed(r[0], r[1])]
    # encoded afresh each time, never cached: a vector of a personal question would outlive the store's pruning
    distinct = list(dict.fromkeys(r[1] for r in rows))
    position = {t: i for i, t in enumerate(distinct)}
    all_vectors = encode_queries(bot.model, distinct) if distinct else np.zeros((0, 1), np.float32)
    groups: list[Group] = []
    for kind in KINDS:
        mine = [r for r in rows if r[0] == kind]
        if not mine:
            continue
        counts = Counter(r[1] for r in mine)
        texts = [t for t, _ in counts.most_common()]
        vectors = all_vectors[[position[t] for t in texts]]
        for members in _cluster(texts, vectors, cut):
            questions = [texts[i] for i in members]
            group_rows = [r for r in mine if r[1] in set(questions)]
            langs = Counter(r[2] or detect_lang(r[1]) for r in group_rows)
            voted = Counter(r[4] for r in group_rows if r[4])
            groups.append(Group(
                kind=kind, questions=questions, count=len(group_rows),
                status=Counter(r[3] for r in group_rows).most_common(1)[0][0], lang=langs.most_common(1)[0][0],
                voted_entry=voted.most_common(1)[0][0] if voted else "",
                hashes=[_hash(kind, q) for q in questions]))
    groups.sort(key=lambda g: (-g.count, KINDS.index(g.kind)))
    for g in groups:
        hits = bot.searcher.search(g.questions[0], k=bot.settings.top_k).hits
        best = next((h for h in hits if h.entry.id != g.voted_entry), None)
        if best is not None:
            e = best.entry
            g.suggested = {"id": e.id, "question": e.question_en if g.lang == "en" and e.question_en else e.question,
                           "score": round(best.score, 4)}
    return groups


def open_bot(settings: Settings) -> tuple[FaqBot, bool]:
    """The bot for reviewing, and whether its index is older than the data. Unlike `FaqBot.open` a stale index
    is accepted: after `--accept` the data changed, and the next group can still be reviewed before a build."""
    from .answer import FaqBot
    from .embed import load_model, model_version
    from .entries import data_fingerprint
    from .index import check_manifest, load_build, read_manifest

    manifest = read_manifest(settings.index_dir)
    check_manifest(settings.index_dir, manifest, settings.model, model_version(settings.model),
                   str(manifest.get("data_hash")))  # model and format must match; the data may have moved on
    bot = FaqBot(settings, load_build(settings.index_dir, manifest), load_model(settings.model))
    return bot, manifest.get("data_hash") != data_fingerprint(settings.data_dir)


def accept(data_dir: Path, group: Group, state: ReviewState, to: str | None = None) -> dict:
    """Add the group's most frequent question as an alternate of `to` (default: the suggestion), keep it as a
    regression query, and mark the group reviewed. Returns what was done."""
    target = to or (group.suggested or {}).get("id")
    if not target:
        raise BotError("this group has no suggested entry: name one with --to ID")
    question = group.questions[0]
    lang = group.lang if group.lang in ("ja", "en") else detect_lang(question)
    added = add_alternate(data_dir, target, lang, question)
    regression = add_regression(data_dir, added, lang, [target])
    state.mark(group, "accepted", target)
    return {"entry": target, "lang": lang, "question": added, "regression": regression}


def reject(group: Group, state: ReviewState) -> None:
    """Remember the group as reviewed so it does not come back."""
    state.mark(group, "rejected")


def pair_cosines(bot: FaqBot, texts: list[str], owners: list[str]) -> dict[str, np.ndarray]:
    """Cosines of all pairs of `texts` as queries, split by whether their `owners` (entry ids) agree:
    the measurement behind `NEAR_DUPLICATE_COSINE` (labelled queries + alternates as texts)."""
    vectors = encode_queries(bot.model, [normalize(t) for t in texts])
    upper = np.triu_indices(len(texts), 1)
    sims = (vectors @ vectors.T)[upper]
    ids = np.asarray(owners)
    same = (ids[:, None] == ids[None, :])[upper]
    return {"same_entry": sims[same], "different_entry": sims[~same]}
