"""Service: the one bot and the feedback store that every browser session and API client share.

The page and its API call `ChatService`; it answers through `FaqBot`, logs what was answered (never what
was asked: questions may hold patient or staff details), and stores feedback without ever letting a
database fault stop the answering.
"""

from __future__ import annotations

import logging
import threading

from .answer import Answer, FaqBot
from .feedback import Feedback, FeedbackError, FeedbackStore
from .settings import MAX_QUESTION_CHARS

logger = logging.getLogger(__name__)

#: The reply when answering itself failed (the failure is logged with its cause).
FAILED = {
    "ja": "エラーのため回答できませんでした。記録済みです。もう一度お試しください。",
    "en": "Something went wrong while answering; it has been logged. Please try again.",
}

#: One question at a time per process: the Japanese tokenizer (a process-wide MeCab tagger) and the
#: embedding engine are not safe to call from several threads at once.
_ASK_LOCK = threading.Lock()


class ChatService:
    """The one bot and the feedback store every browser session and API client share."""

    def __init__(self, bot: FaqBot, store: FeedbackStore) -> None:
        self.bot = bot
        self.store = store

    def ask(self, question: object, lang: str | None = None) -> Answer:
        """`FaqBot.ask`, serialised; an unexpected failure is logged and becomes an error reply, never a traceback."""
        text = question if isinstance(question, str) else ""
        try:
            with _ASK_LOCK:
                answer = self.bot.ask(text, lang=lang)
        except Exception as err:  # noqa: BLE001 - the page must keep serving whatever one question does
            logger.exception("answering a %d-character question failed", len(text))
            reply_lang = lang or "en"
            return Answer(query=text[:MAX_QUESTION_CHARS], lang=reply_lang, answered=False, hits=[], confidence=0.0,
                          threshold=0.0, message=FAILED[reply_lang], error=f"{type(err).__name__}: {err}",
                          status="error")
        # the log says what was answered, not what was asked: questions may hold patient or staff details
        outcome = f"answered {answer.entry.id}" if answer.entry else (answer.error or "no confident answer")
        logger.info("%s [%s] (confidence %.2f, %.0f ms)", outcome, answer.lang, answer.confidence, answer.latency_ms)
        return answer

    def save(self, item: Feedback) -> int | None:
        """Store one feedback row; a broken database is logged and reported as None so answering goes on."""
        try:
            row = self.store.add(item)
        except FeedbackError as err:
            logger.error("feedback not saved: %s", err)
            return None
        logger.info("feedback %s saved as row %d (entry %s)", item.kind, row, item.entry_id or "-")
        return row

    def note_unanswered(self, answer: Answer, session: str) -> None:
        """Every question that got no confident answer is kept, so trainers can add entries for it."""
        if not answer.answered and answer.error is None:
            self.save(Feedback(kind="unanswered", question=answer.query, answered=False,
                               confidence=answer.confidence, lang=answer.lang, session=session))

    def rate(self, record: dict, liked: bool, session: str) -> int | None:
        """Store a 👍 (`liked`) or 👎 for an answer described by `record` (see `answer_record`)."""
        return self.save(Feedback(kind="up" if liked else "down", question=record["question"],
                                  entry_id=record["entry_id"], answered=record["answered"],
                                  confidence=record["confidence"], lang=record["lang"], session=session))


def answer_record(answer: Answer) -> dict:
    """What a 👍/👎 is stored with: enough to find the question, the answer and how sure the bot was."""
    return {"question": answer.query, "entry_id": answer.entry.id if answer.entry else "",
            "answered": answer.answered, "confidence": round(answer.confidence, 4), "lang": answer.lang}
