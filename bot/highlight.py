"""Highlight: which sentences of an official answer best match the question (cosine of e5 vectors).

Official answers run to several paragraphs; marking the sentence(s) closest to what was asked lets staff
find the part that matters during an incident without re-reading the whole answer. The sentence split
here is the one `render` marks up, so sentence *i* here is sentence *i* on the page. `faqbot build` embeds
every answer sentence as an e5 passage into the vector cache, so the server only embeds the question.
"""

from __future__ import annotations

import logging
import re
import threading
from typing import TYPE_CHECKING, Any

import numpy as np

from .embed import encode_documents
from .vectorcache import VectorCache, cached_encode

if TYPE_CHECKING:
    from .entries import Entry

logger = logging.getLogger(__name__)

#: A second sentence is marked too when its cosine is this close to the best one.
TIE = 0.02
#: At most this many sentences are marked in one answer text.
MOST = 2

_PARAGRAPH = re.compile(r"\n\s*\n")
# After 。！？ (and a closing bracket right after it), or after . ! ? + space before a capital/quote/digit;
# never inside 「…」 or (…), which the sheet uses for quoted titles and passages.
_END_JA = re.compile(r"[。！？][」』）)]*\s*")
_END_EN = re.compile(r"[.!?][\"”')]*\s+(?=[A-Z0-9\"“(])")
_OPEN, _CLOSE = "「『（(", "」』）)"


def paragraphs(text: str) -> list[str]:
    """Blank-line separated paragraphs (how entries store answers), stripped, empty ones dropped."""
    return [p.strip() for p in _PARAGRAPH.split(text) if p.strip()]


def split(paragraph: str) -> list[str]:
    """The paragraph's sentences; joined together they are exactly the paragraph."""
    pieces, start, depth = [], 0, 0
    ends = {m.start(): m.end() for pattern in (_END_JA, _END_EN) for m in pattern.finditer(paragraph)}
    for i, ch in enumerate(paragraph):
        if ch in _OPEN:
            depth += 1
        elif ch in _CLOSE:
            depth = max(0, depth - 1)
        if i in ends and depth == 0 and ends[i] < len(paragraph):
            pieces.append(paragraph[start:ends[i]])
            start = ends[i]
    pieces.append(paragraph[start:])
    return [p for p in pieces if p]


def sentences(text: str) -> list[str]:
    """Every sentence of an answer text, paragraph by paragraph: the numbering `render` marks by."""
    return [s for p in paragraphs(text) for s in split(p)]


def best(question: np.ndarray, vectors: np.ndarray) -> frozenset[int]:
    """Indices of the sentence(s) to mark: the closest one, and a near-tie; none for a one-sentence text."""
    if len(vectors) < 2:
        return frozenset()
    scores = vectors @ question
    order = np.argsort(-scores)[:MOST]
    return frozenset(int(i) for i in order if scores[i] >= scores[order[0]] - TIE)


def answer_sentences(entries: list[Entry]) -> list[str]:
    """Every sentence of every answer text (both languages): what `faqbot build` embeds for highlighting."""
    return [s.strip() for e in entries for text in (e.answer, e.answer_en) for s in sentences(text)]


class Highlighter:
    """Marks for the answer texts shown for an entry.

    Sentence vectors (e5 passages) come from the build's vector cache (`faqbot build` embeds every answer
    sentence), else from the model when it can embed passages; with neither, nothing is marked. The question
    is embedded with the model's query path, as search does.
    """

    def __init__(self, model: Any, cache: VectorCache | None = None) -> None:
        self.model = model  # anything with `encode_query(texts, normalize_embeddings=True)`: the bot's model
        self.cache = cache
        self._vectors: dict[tuple[str, str], np.ndarray] = {}
        self._lock = threading.Lock()

    def _passages(self, texts: list[str]) -> np.ndarray:
        if not hasattr(self.model, "encode_document"):  # the server's direct query encoder embeds no passages
            raise LookupError(f"{len(texts)} answer sentences are not in the build's vector cache")
        return encode_documents(self.model, texts)

    def _sentence_vectors(self, entry: Entry, lang: str) -> np.ndarray:
        with self._lock:
            key = (entry.id, lang)
            if key not in self._vectors:
                texts = [s.strip() for s in sentences(entry.answer_en if lang == "en" else entry.answer)]
                try:
                    self._vectors[key] = cached_encode(self.cache, "passage", texts, self._passages)
                except LookupError as err:
                    logger.info("no highlight for %s (%s): %s; run `faqbot build`", entry.id, lang, err)
                    self._vectors[key] = np.zeros((0, 0), np.float32)
            return self._vectors[key]

    def marks(self, question: str, entry: Entry, lang: str) -> dict[str, frozenset[int]]:
        """{"ja": indices, "en": indices} for the official text and, for English replies, the translation.

        When the translation has as many sentences as the official text (every answer but qa-8's today), both get
        the same marks."""
        if not entry.has_answer or not question.strip():
            return {}
        shown = ["ja", "en"] if lang == "en" and entry.answer_en else ["ja"]
        vectors = {text_lang: self._sentence_vectors(entry, text_lang) for text_lang in shown}
        if all(len(v) < 2 for v in vectors.values()):
            return {}
        question_vector = np.atleast_2d(np.asarray(self.model.encode_query([question], normalize_embeddings=True),
                                                   dtype=np.float32))[0]
        if len(vectors) == 2 and len(vectors["ja"]) == len(vectors["en"]):
            # the translation follows the official text sentence by sentence: mark the same sentences in both,
            # chosen on the two cosines together, or the English reader sees the two texts disagree on which
            # part answers the question (each language alone picked different sentences of qa-5's answer)
            both = best(question_vector, (vectors["ja"] + vectors["en"]) / 2)
            return {"ja": both, "en": both}
        return {text_lang: best(question_vector, v) for text_lang, v in vectors.items()}
