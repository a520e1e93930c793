"""Web handlers: what the chat page and its API do when used — post a question, answer it, vote, pick one of
several entries, relabel the page in ja/en, keep the chat across a reload; and the public `ask` and `feedback`
API endpoints.

`bot/web.py` lays the page out and wires its events to these handlers. Per-browser state (the chat, its votes,
the page language) lives in the browser and comes in as arguments; shared state lives in `ChatService`. With
`bot/web.py`, the only module that imports gradio (for `gr.update`, `gr.skip`, `gr.Error` and request data).
"""

import logging
import re
import uuid
from types import SimpleNamespace

import gradio as gr

from .answer import Answer
from .entries import Entry
from .guard import Limits, RateLimit, session_id
from .highlight import Highlighter
from .render import answer_html, browse_html, pending_html, question_html, relabel, status_html, vote_html
from .service import ChatService, answer_record
from .text import normalize
from .uitext import UI

logger = logging.getLogger(__name__)

#: Messages the browser keeps across reloads (the oldest go first).
KEPT_MESSAGES = 60

EXAMPLES = {
    "ja": ["RDPのポートを変更する意味は？", "管理者IDとパスワードはどう保管すればよい？",
           "警察が機器を回収するまでに何をすべき？"],
    "en": ["How should we store admin passwords?", "Does changing the RDP port help?",
           "Can I get the presentation slides?"],
}
_JAPANESE = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uf900-\ufaff\uff66-\uff9f]")
_WORDS = re.compile(r"[A-Za-z0-9][A-Za-z0-9'._+-]*")


def _session(request: gr.Request | None) -> str:
    """The browser's session id as it may be stored (the client chooses it: checked by `guard.session_id`)."""
    return session_id(getattr(request, "session_hash", None)) if request is not None else ""


def reply_language(question: str, ui_lang: str, chosen: str) -> str | None:
    """The reply language to force: the one the user chose; else the page's for a question too short to tell
    (no Japanese and at most two words: "VPN", "RDP port", "LTO"); else None (the bot follows the question)."""
    if chosen in ("ja", "en"):
        return chosen
    text = normalize(question)
    return ui_lang if not _JAPANESE.search(text) and len(_WORDS.findall(text)) <= 2 else None


def _messages(history: object) -> list[dict]:
    """The chat as {"role", "content": html} dicts (Gradio hands content back as a list of text parts)."""
    out = []
    for message in history if isinstance(history, list) else []:
        if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
            continue
        content = message.get("content")
        if isinstance(content, list):
            content = "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
        out.append({"role": message["role"], "content": content if isinstance(content, str) else ""})
    return out


def _pending(message: dict) -> bool:
    return message["role"] == "assistant" and message["content"].startswith('<div class="fb-answer fb-pending"')


# --------------------------------------------------------------------------- page handlers


class ChatPage:
    """Event handlers of one app; per-browser state lives in the browser, shared state in `service`."""

    def __init__(self, service: ChatService, entries: list[Entry], highlighter: Highlighter | None = None,
                 contact: str = "") -> None:
        self.service = service
        self.entries = entries
        self.by_id = {e.id: e for e in entries}
        self.highlighter = highlighter
        self.contact = contact
        self.ui = SimpleNamespace()  # the components, set by `create_app`

    def post(self, question: str, history: list, ui_lang: str) -> tuple:
        """Show the question at once with an "answering…" bubble, clear the box and disable Send; an empty
        question, or one while another is being answered, posts nothing."""
        question = question if isinstance(question, str) else ""
        history = _messages(history)
        if not question.strip() or any(_pending(m) for m in history):
            return gr.skip(), gr.skip(), gr.skip(), gr.skip()
        history += [{"role": "user", "content": question_html(question)},
                    {"role": "assistant", "content": pending_html(ui_lang)}]
        return history, "", gr.update(interactive=False), question

    def post_example(self, history: list, ui_lang: str, chosen: gr.SelectData) -> tuple:
        value = chosen.value if isinstance(chosen.value, dict) else {}
        return self.post(str(value.get("text", "")), history, ui_lang)

    def reply(self, question: str, history: list, records: dict, ui_lang: str, reply_lang: str,
              request: gr.Request) -> tuple:
        """Answer the posted question in place of its "answering…" bubble; remember what a vote refers to."""
        history = _messages(history)
        if not question or not history or not _pending(history[-1]):
            return gr.skip(), gr.skip()
        key = uuid.uuid4().hex
        answer = self.service.ask(question, lang=reply_language(question, ui_lang, reply_lang),
                                  session=_session(request), key=key)
        history[-1] = {"role": "assistant", "content": self._render(answer, key, ui_lang)}
        record = {**answer_record(answer), "ui_lang": ui_lang, "rating": None,
                  "choices": {h.entry.id: round(h.score, 4) for h in answer.choices}}
        return history, {**(records or {}), key: record}

    def _render(self, answer: Answer, key: str, ui_lang: str, **extra: object) -> str:
        marks = None
        if answer.status == "answered" and answer.entry is not None and self.highlighter is not None:
            try:
                marks = self.highlighter.marks(answer.query, answer.entry, answer.lang)
            except Exception:  # noqa: BLE001 - a highlight is a nicety: the answer is shown without it
                logger.exception("highlighting the answer from %s failed", answer.entry.id)
        return answer_html(answer, key=key, ui_lang=ui_lang, marks=marks, contact=self.contact, **extra)

    def act(self, action: str, history: list, records: dict, ui_lang: str, request: gr.Request) -> tuple:
        """A button inside an answer: "vote up|down <key>" or "pick <entry id> <lang>" (a "which did you
        mean?" choice). Returns the chat, the records, the reason form's visibility, the key it is for and the
        status line (what became of a vote: the page says it itself, in its language, not in a Gradio toast)."""
        words = (action or "").split()
        history, records = _messages(history), dict(records or {})
        if len(words) == 3 and words[0] == "vote" and words[1] in ("up", "down") and words[2] in records:
            return self._vote(words[2], words[1], history, records, ui_lang, request)
        if len(words) == 3 and words[0] == "pick" and words[1] in self.by_id and words[2] in ("ja", "en"):
            return (*self._pick(self.by_id[words[1]], words[2], history, records, ui_lang), gr.skip(), gr.skip(), "")
        return gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip()

    def _vote(self, key: str, kind: str, history: list, records: dict, ui_lang: str, request: gr.Request) -> tuple:
        """One changeable vote per answer: a second click on the same thumb removes it, the other replaces it."""
        record = records[key]
        old = record.get("rating")
        rating = None if old == kind else kind
        saved = self.service.vote(key, rating, session=_session(request), record=record)
        words = UI[ui_lang]
        said = words["vote_queued"] if not saved else words["vote_saved"] if rating else words["vote_removed"]
        before, after = vote_html(key, record.get("ui_lang", ui_lang), old), vote_html(key, ui_lang, rating)
        history = [{**m, "content": m["content"].replace(before, after)} for m in history]
        records[key] = {**record, "rating": rating, "ui_lang": ui_lang}
        asked = rating == "down"  # a 👎 opens the optional reason form
        return history, records, gr.update(visible=asked), key if asked else "", status_html(said)

    def _pick(self, entry: Entry, lang: str, history: list, records: dict, ui_lang: str) -> tuple[list, dict]:
        """Show the chosen entry's answer, as if its question had been asked."""
        see_also = [self.by_id[i] for i in entry.see_also if i in self.by_id] if not entry.has_answer else []
        status = "answered" if entry.has_answer else "no_official_answer"
        question = entry.question_en if lang == "en" and entry.question_en else entry.question
        answer = Answer(query=question, lang=lang, answered=True, hits=[], confidence=1.0, threshold=0.0,
                        message="", entry=entry, see_also=see_also, status=status)
        key = uuid.uuid4().hex
        history += [{"role": "user", "content": question_html(question)},
                    {"role": "assistant", "content": self._render(answer, key, ui_lang, show_confidence=False)}]
        records = {**records, key: {**answer_record(answer), "ui_lang": ui_lang, "rating": None, "choices": {}}}
        return history, records

    def reason(self, key: str, reason: str, comment: str, records: dict, ui_lang: str, request: gr.Request) -> tuple:
        """The optional why of a 👎: stored with the vote (it replaces the reason-less one)."""
        record, said = (records or {}).get(key), ""
        if record is not None and record.get("rating") == "down":
            saved = self.service.vote(key, "down", session=_session(request), record=record,
                                      reason=reason if reason in UI["en"]["reasons"] else "other",
                                      comment=(comment or "").strip())
            said = status_html(UI[ui_lang]["vote_saved" if saved else "vote_queued"])
        return gr.update(visible=False), "", None, "", said

    def browse(self, query: str, ui_lang: str) -> str:
        return browse_html(self.entries, query, ui_lang)

    def relabelled(self) -> list:
        """The components the ja/en switch updates."""
        ui = self.ui
        return [ui.header, ui.ui_lang, ui.chat_tab, ui.browse_tab, ui.chatbot, ui.records, ui.question, ui.send,
                ui.clear, ui.reply_lang, ui.search, ui.table, ui.reason_kind, ui.reason_comment, ui.reason_send,
                ui.reason_close]

    def switch(self, ui_lang: str, query: str, history: list, records: dict) -> dict:
        """The ja/en switch: relabel everything the page itself says, the vote and copy buttons in the chat
        too (answers keep their own language)."""
        words, ui = UI[ui_lang], self.ui
        history, records = _messages(history), dict(records or {})
        for old in {r.get("ui_lang", ui_lang) for r in records.values()} - {ui_lang}:
            history = [{**m, "content": relabel(m["content"], old, ui_lang)} for m in history]
        records = {k: {**r, "ui_lang": ui_lang} for k, r in records.items()}
        updates = {
            ui.header: gr.update(value=header(ui_lang)),
            ui.ui_lang: gr.update(label=words["ui_lang"]),
            ui.chat_tab: gr.update(label=words["chat_tab"]),
            ui.browse_tab: gr.update(label=words["browse_tab"]),
            ui.chatbot: gr.update(value=history, label=words["chat_label"], placeholder=words["chat_placeholder"],
                                  examples=examples(ui_lang)),
            ui.records: records,
            ui.question: gr.update(label=words["question"], placeholder=words["question_placeholder"]),
            ui.send: gr.update(value=words["send"]),
            ui.clear: gr.update(value=words["clear"]),
            ui.reply_lang: gr.update(label=words["reply"], choices=reply_choices(ui_lang)),
            ui.search: gr.update(label=words["search"], placeholder=words["search_placeholder"]),
            ui.table: gr.update(value=browse_html(self.entries, query, ui_lang)),
            ui.reason_kind: gr.update(label=words["reason"], choices=reason_choices(ui_lang)),
            ui.reason_comment: gr.update(label=words["comment"]),
            ui.reason_send: gr.update(value=words["reason_send"]),
            ui.reason_close: gr.update(value=words["reason_close"]),
        }
        return updates

    @staticmethod
    def restore(saved: dict) -> tuple:
        """The page language and conversation the browser kept (an unanswered question's bubble dropped)."""
        saved = saved if isinstance(saved, dict) else {}
        lang = saved.get("lang") if saved.get("lang") in ("ja", "en") else "ja"
        history = [m for m in _messages(saved.get("chat")) if not _pending(m)]
        return lang, history, saved.get("records") or {}

    @staticmethod
    def keep(history: list, records: dict, ui_lang: str) -> dict:
        """What the browser keeps across a reload: the page language and the last KEPT_MESSAGES messages."""
        history = _messages(history)[-KEPT_MESSAGES:]
        shown = "".join(m["content"] for m in history)
        return {"lang": ui_lang, "chat": history,
                "records": {k: r for k, r in (records or {}).items() if f" {k}\"" in shown}}



def header(ui_lang: str) -> str:
    words = UI[ui_lang]
    return f"# {words['title']}\n{words['intro']}"


def examples(ui_lang: str) -> list[dict]:
    return [{"text": q} for q in EXAMPLES[ui_lang]]


def reply_choices(ui_lang: str) -> list[tuple[str, str]]:
    words = UI[ui_lang]
    return [(words["auto"], "auto"), (words["ja"], "ja"), (words["en"], "en")]


def reason_choices(ui_lang: str) -> list[tuple[str, str]]:
    return [(label, value) for value, label in UI[ui_lang]["reasons"].items()]



# --------------------------------------------------------------------------- API


def api_endpoints(service: ChatService) -> tuple:
    """The `ask` and `feedback` endpoints (typed functions: gr.api derives their schema from the hints).

    Feedback is rate-limited per session and, as API clients choose their session ids, per client address.
    """
    limits = Limits()
    per_session = RateLimit(limits.feedback_per_minute, 60.0)
    per_address = RateLimit(limits.feedback_per_minute_per_address, 60.0)

    def ask(question: str, lang: str | None = None, request: gr.Request = None) -> dict:
        """Answer one question: the same JSON object as `faqbot ask --json` (lang: "ja"/"en" forces the reply)."""
        answer = service.ask(question, lang=lang if lang in ("ja", "en") else None, session=_session(request))
        return answer.to_json()

    def feedback(question: str, rating: str, lang: str | None = None, request: gr.Request = None) -> dict:
        """Rate the answer to `question` ("up" or "down"); returns the vote as stored, with its answer's key."""
        if rating not in ("up", "down"):
            raise gr.Error('rating must be "up" or "down"')
        address = getattr(getattr(request, "client", None), "host", None) or "-"
        if not (per_session.allow(_session(request) or address) and per_address.allow(address)):
            raise gr.Error("too many ratings from this session: wait a minute, then try again")
        key = uuid.uuid4().hex
        # the question its client was just answered, so normally from the cache; else it yields to answers
        answer = service.ask(question, lang=lang if lang in ("ja", "en") else None, session=_session(request),
                             key=key, for_vote=True)
        record = answer_record(answer)
        if not service.vote(key, rating, session=_session(request), record=record):
            raise gr.Error("the feedback database is not available; the administrator can see why in the log")
        return {"key": key, "rating": rating, "session": _session(request), **record}

    return ask, feedback

