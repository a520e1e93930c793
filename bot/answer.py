"""Answer: turn a question into what the bot says — the official answer verbatim, citations, related entries.

`FaqBot` is the one front door the CLI, the web page and the notebooks share, so all three give the
same answer to the same question. `Answer.to_json()` is the record `faqbot ask --json`, `faqbot batch`
and the page's `ask` API return; other tools read its names.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .companion import shared_companion
from .embed import load_model, model_version
from .entries import Entry, data_fingerprint
from .index import Index, check_manifest, load_build, read_manifest
from .search import Hit, Searcher, SearchResult
from .settings import MAX_QUESTION_CHARS, Settings
from .text import detect_lang, normalize

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

TRANSLATION_LABEL = {
    "en": "English translation (unofficial). The official answer is the Japanese text.",
    "ja": "英語訳（参考訳）。公式回答は日本語の本文です。",
}
MESSAGES = {
    "no_match": {
        "ja": "該当する公式回答が見つかりませんでした。質問を言い換えるか、近い項目を確認してください。",
        "en": "No confident answer: none of the official entries matches this question well enough. "
              "Try rephrasing, or look at the closest entries below.",
    },
    "no_official_answer": {
        "ja": "この質問は資料に載っていますが、公式回答はありません。",
        "en": "This question is in the sheet, but it has no official answer.",
    },
    "see_also": {
        "ja": "この質問そのものには公式回答がありません。同じ目的に答えている公式回答はこちらです。",
        "en": "This exact question has no official answer. These official answers meet the same need:",
    },
    "ambiguous": {
        "ja": "どの項目のことか確信が持てません。次のどれかをお探しですか？",
        "en": "Not sure which entry you mean. Did you mean one of these?",
    },
    "empty": {
        "ja": "質問を入力してください。",
        "en": "Please type a question.",
    },
    "truncated": {
        "ja": f"質問が長すぎるため、最初の{MAX_QUESTION_CHARS}文字で検索しました。",
        "en": f"The question was too long; only its first {MAX_QUESTION_CHARS} characters were searched.",
    },
}
#: What kind of reply an `Answer` is; every JSON record carries one as "status".
#: answered: a confident official answer; no_official_answer: the question matched an entry the sheet lists
#: without an answer (see_also names answered entries that meet the same need); ambiguous: two or three
#: entries are plausible and close, the user chooses (choices); no_match: nothing matches well; error: the
#: question could not be answered (empty, or a failure).
STATUSES = ("answered", "no_official_answer", "ambiguous", "no_match", "error")
_MEANINGFUL = re.compile(r"[0-9A-Za-z\u3040-\u30ff\u3400-\u9fff\uf900-\ufaff\uff66-\uff9f]")


@dataclass(frozen=True, slots=True)
class Citation:
    """Where an official answer comes from: the document (title, publisher, date, web address), its section
    and number, and for trainers the entry id, source file and line."""

    id: str
    section: str
    section_en: str
    number: int
    source: str
    line: int
    title: str = ""
    title_en: str = ""
    publisher: str = ""
    date: str = ""
    url: str = ""

    @classmethod
    def of(cls, entry: Entry) -> Citation:
        return cls(entry.id, entry.section, entry.section_en, entry.number, entry.source, entry.line,
                   entry.source_title, entry.source_title_en, entry.source_publisher, entry.source_date,
                   entry.source_url)

    def to_json(self) -> dict:
        return {"id": self.id, "section": self.section, "section_en": self.section_en,
                "number": self.number, "source": self.source, "line": self.line, "title": self.title,
                "title_en": self.title_en, "publisher": self.publisher, "date": self.date, "url": self.url}

    def document(self, lang: str) -> str:
        """The document's title in `lang` (falls back to the other language, then to the file name)."""
        first, second = (self.title_en, self.title) if lang == "en" else (self.title, self.title_en)
        return first or second or self.source

    def label(self, lang: str) -> str:
        section = self.section if lang == "ja" else self.section_en
        return f"{self.id} · {section} #{self.number} · {self.source}:{self.line}"


@dataclass(frozen=True, slots=True)
class Answer:
    """What the bot says to one question. `entry` is set only when `answered` (status answered or
    no_official_answer); `choices` only when ambiguous; `see_also` only when no_official_answer."""

    query: str
    lang: str
    answered: bool
    hits: list[Hit]
    confidence: float
    threshold: float
    message: str
    entry: Entry | None = None
    related: list[Entry] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    error: str | None = None
    latency_ms: float = 0.0
    status: str = "no_match"  # one of STATUSES
    choices: list[Hit] = field(default_factory=list)
    see_also: list[Entry] = field(default_factory=list)

    @property
    def citations(self) -> list[Citation]:
        return [Citation.of(self.entry)] if self.entry else []

    def to_json(self) -> dict:
        """The record of `ask --json`, `batch` and the page's `ask` API."""
        answer = None
        if self.entry is not None:
            e = self.entry
            answer = {
                "id": e.id, "section": e.section, "section_en": e.section_en, "number": e.number,
                "question": e.question, "answer": e.answer, "has_answer": e.has_answer,
                "question_en": e.question_en, "answer_en": e.answer_en,
                "translation_label": TRANSLATION_LABEL["en"] if self.lang == "en" and e.answer_en else None,
                "links": list(e.links),
                "citations": [c.to_json() for c in self.citations],
                "related": [{"id": r.id, "question": r.question, "question_en": r.question_en} for r in self.related],
                "see_also": [
                    {"id": s.id, "question": s.question, "question_en": s.question_en, "answer": s.answer,
                     "answer_en": s.answer_en, "citations": [Citation.of(s).to_json()]}
                    for s in self.see_also
                ],
            }
        return {
            "query": self.query, "lang": self.lang, "status": self.status, "answered": self.answered,
            "confidence": round(self.confidence, 4), "threshold": round(self.threshold, 4),
            "results": [
                {"id": h.entry.id, "score": round(h.score, 4), "cosine": round(h.cosine, 4), "bm25": round(h.bm25, 4),
                 "matched": h.matched, "section": h.entry.section, "number": h.entry.number,
                 "question": h.entry.question, "question_en": h.entry.question_en}
                for h in self.hits
            ],
            "choices": [{"id": h.entry.id, "question": h.entry.question, "question_en": h.entry.question_en,
                         "score": round(h.score, 4)} for h in self.choices],
            "answer": answer, "message": self.message, "notices": self.notices, "error": self.error,
            "latency_ms": round(self.latency_ms, 2),
        }


class FaqBot:
    """The loaded bot: one model, one verified index, one searcher."""

    def __init__(self, settings: Settings, index: Index, model: SentenceTransformer) -> None:
        self.settings = settings
        self.index = index
        self.model = model
        self.searcher = Searcher(index, model)
        self.entries = {e.id: e for e in index.entries}

    @classmethod
    def open(cls, settings: Settings | None = None, model: SentenceTransformer | None = None) -> FaqBot:
        """Load and verify the index in `settings.index_dir`; raises `IndexError_` saying how to fix it."""
        settings = settings or Settings()
        manifest = read_manifest(settings.index_dir)
        check_manifest(settings.index_dir, manifest, settings.model, model_version(settings.model),
                       data_fingerprint(settings.data_dir))
        index = load_build(settings.index_dir, manifest)
        shared_companion().preload()  # its weights load while the main model does
        return cls(settings, index, model or load_model(settings.model))

    def ask(self, question: str, lang: str | None = None) -> Answer:
        """Answer one question. `lang` forces the reply language; by default it follows the question."""
        started = time.perf_counter()
        text = normalize(question if isinstance(question, str) else "")
        notices = []
        reply_lang = lang or detect_lang(text)
        if len(text) > MAX_QUESTION_CHARS:
            text = text[:MAX_QUESTION_CHARS]
            notices.append(MESSAGES["truncated"][reply_lang])
        if not _MEANINGFUL.search(text):
            return Answer(query=text, lang=reply_lang, answered=False, hits=[], confidence=0.0,
                          threshold=float(self.searcher.calibration["threshold"]),
                          message=MESSAGES["empty"][reply_lang], notices=notices, error="empty question",
                          status="error", latency_ms=(time.perf_counter() - started) * 1000)
        result = self.searcher.search(text, k=self.settings.top_k)
        return self._compose(result, reply_lang, notices, started)

    def _compose(self, result: SearchResult, lang: str, notices: list[str], started: float) -> Answer:
        entry, see_also, choices = None, [], []
        if result.decision == "ambiguous":
            status, message, choices = "ambiguous", MESSAGES["ambiguous"][lang], result.choices
        elif result.decision != "answer":
            status, message = "no_match", MESSAGES["no_match"][lang]
        elif not result.hits[0].entry.has_answer:
            entry = result.hits[0].entry
            see_also = [self.entries[i] for i in entry.see_also if i in self.entries]
            status = "no_official_answer"
            message = MESSAGES["see_also" if see_also else "no_official_answer"][lang]
        else:
            entry, status, message = result.hits[0].entry, "answered", ""
        shown = {h.entry.id for h in choices} | ({entry.id} if entry else set()) | {e.id for e in see_also}
        related = [h.entry for h in result.hits if h.entry.id not in shown][: self.settings.related]
        return Answer(query=result.query, lang=lang, answered=entry is not None, hits=result.hits,
                      confidence=result.confidence, threshold=result.threshold, message=message, entry=entry,
                      related=related, notices=notices, latency_ms=(time.perf_counter() - started) * 1000,
                      status=status, choices=list(choices), see_also=see_also)
