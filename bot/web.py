"""Web: the chat page (Gradio) — layout, events, API and launch; the HTML comes from `render`.

The page is a thin edge over `ChatService`: everything it shows comes from `Answer`, and its `ask` API returns
`Answer.to_json()`, the same object as `faqbot ask --json`. It runs offline on an intranet: analytics,
share links, run history, MCP and monitoring are off, the theme uses only fonts already on the computer,
and it binds 127.0.0.1 unless told otherwise. All text, the user's and the data files', is escaped before
it becomes HTML; the chat renders that HTML as it is (no markdown, no LaTeX) so nothing a user types is
interpreted. The conversation, its votes and the page language live in the browser (`gr.BrowserState`),
so a reload keeps them. This is the only module that imports gradio.
"""

import logging
import os
import re
import signal
import sys
import uuid
from pathlib import Path
from types import SimpleNamespace

os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"  # before gradio is imported: it reads this at import time

import gradio as gr  # noqa: E402
from starlette.middleware import Middleware  # noqa: E402

from .answer import Answer, FaqBot  # noqa: E402
from .embed import model_version  # noqa: E402
from .entries import Entry  # noqa: E402
from .errors import BotError, IndexError_  # noqa: E402
from .guard import Guard, Limits, RateLimit, session_id  # noqa: E402
from .highlight import Highlighter  # noqa: E402
from .logsafe import install as install_log_safety  # noqa: E402
from .render import (  # noqa: E402
    UI,
    answer_html,
    browse_html,
    pending_html,
    question_html,
    relabel,
    status_html,
    vote_html,
)
from .service import ChatService, answer_record  # noqa: E402
from .settings import DEFAULT_MODEL, Settings  # noqa: E402
from .store import Store, open_store  # noqa: E402
from .text import normalize  # noqa: E402
from .vectorcache import VectorCache  # noqa: E402
from .webassets import CSS, PAGE_JS, SET_LANG_JS  # noqa: E402

logger = logging.getLogger(__name__)

#: Feedback posts handled at once (each mostly waits a moment for its vote to become durable).
FEEDBACK_CONCURRENCY = 16
#: Environment variables that turn on the login page (both must be set).
USER_ENV, PASSWORD_ENV = "FAQBOT_USER", "FAQBOT_PASSWORD"
#: Whom staff should ask when the bot has no confident answer (e.g. 「情報システム部 内線1234」).
CONTACT_ENV = "FAQBOT_CONTACT"
#: Messages the browser keeps across reloads (the oldest go first).
KEPT_MESSAGES = 60

# Fonts already on staff PCs (and Noto CJK on Linux) only: nothing to download, and Japanese renders everywhere.
FONTS = ["system-ui", "-apple-system", "Segoe UI", "Hiragino Sans", "Hiragino Kaku Gothic ProN", "Meiryo",
         "Noto Sans CJK JP", "Noto Sans JP", "sans-serif"]
FONTS_MONO = ["ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "Noto Sans Mono CJK JP", "monospace"]

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
            ui.header: gr.update(value=_header(ui_lang)),
            ui.ui_lang: gr.update(label=words["ui_lang"]),
            ui.chat_tab: gr.update(label=words["chat_tab"]),
            ui.browse_tab: gr.update(label=words["browse_tab"]),
            ui.chatbot: gr.update(value=history, label=words["chat_label"], placeholder=words["chat_placeholder"],
                                  examples=_examples(ui_lang)),
            ui.records: records,
            ui.question: gr.update(label=words["question"], placeholder=words["question_placeholder"]),
            ui.send: gr.update(value=words["send"]),
            ui.clear: gr.update(value=words["clear"]),
            ui.reply_lang: gr.update(label=words["reply"], choices=_reply_choices(ui_lang)),
            ui.search: gr.update(label=words["search"], placeholder=words["search_placeholder"]),
            ui.table: gr.update(value=browse_html(self.entries, query, ui_lang)),
            ui.reason_kind: gr.update(label=words["reason"], choices=_reason_choices(ui_lang)),
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


def _header(ui_lang: str) -> str:
    words = UI[ui_lang]
    return f"# {words['title']}\n{words['intro']}"


def _examples(ui_lang: str) -> list[dict]:
    return [{"text": q} for q in EXAMPLES[ui_lang]]


def _reply_choices(ui_lang: str) -> list[tuple[str, str]]:
    words = UI[ui_lang]
    return [(words["auto"], "auto"), (words["ja"], "ja"), (words["en"], "en")]


def _reason_choices(ui_lang: str) -> list[tuple[str, str]]:
    return [(label, value) for value, label in UI[ui_lang]["reasons"].items()]


# --------------------------------------------------------------------------- API


def _api(service: ChatService) -> tuple:
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


# --------------------------------------------------------------------------- the app


def theme() -> gr.themes.Base:
    """The default look with system fonts only (no font is fetched from anywhere), in a blue dark enough for
    white text and for text on white (≥ 4.5:1, which the default orange is not)."""
    blue, darker = "#1d4ed8", "#1e40af"
    return gr.themes.Default(font=FONTS, font_mono=FONTS_MONO, primary_hue="blue").set(
        color_accent=blue, button_primary_background_fill=blue, button_primary_background_fill_dark=blue,
        button_primary_background_fill_hover=darker, button_primary_background_fill_hover_dark=darker,
        button_primary_border_color=blue, button_primary_border_color_dark=blue,
        button_primary_text_color="#ffffff", button_primary_text_color_dark="#ffffff",
    )


def create_app(settings: Settings, bot: FaqBot | None = None, store: Store | None = None) -> gr.Blocks:
    """The page and its API over one shared bot (opened, and the index built if needed, when not given)."""
    service = ChatService(bot or open_bot(settings), store or open_store(settings.feedback_db))
    cache = VectorCache.under(settings.index_dir, settings.model, model_version(settings.model))
    contact = os.environ.get(CONTACT_ENV, "").strip()
    page = ChatPage(service, list(service.bot.index.entries), Highlighter(service.bot.model, cache), contact)
    manifest = service.bot.index.manifest
    logger.info("feedback store: %s", service.store.where)  # never the URL's password
    logger.info("index %s loaded: model %s, %d entries, threshold %.3f", service.bot.index.path,
                manifest.get("model"), len(page.entries), manifest.get("calibration", {}).get("threshold", 0.0))
    with gr.Blocks(title=f"{UI['ja']['title']} / {UI['en']['title']}", analytics_enabled=False) as demo:
        page.ui = _layout(page.entries)
        _wire(page, service, demo)
    demo.queue(default_concurrency_limit=8)
    return demo


def _layout(entries: list[Entry]) -> SimpleNamespace:
    """The components, labelled in Japanese (the page's default language); returned by name for wiring."""
    words = UI["ja"]
    ui = SimpleNamespace(asking=gr.State(""), reason_key=gr.State(""),
                         records=gr.State({}), saved=gr.BrowserState({}, storage_key="faqbot-page"))
    with gr.Row(elem_id="fb-header", equal_height=False):
        ui.header = gr.Markdown(_header("ja"), elem_id="fb-title")
        ui.ui_lang = gr.Radio([("日本語", "ja"), ("English", "en")], value="ja", label=words["ui_lang"],
                              elem_id="ui-lang", scale=0, min_width=200)
    with gr.Tabs():
        with gr.Tab(words["chat_tab"], id="chat") as ui.chat_tab:
            # render_markdown=False: messages are the escaped HTML built by `render`, shown as they are;
            # autoscroll off: the page's script scrolls each new reply to its first line instead
            ui.chatbot = gr.Chatbot(
                label=words["chat_label"], show_label=False, placeholder=words["chat_placeholder"], elem_id="chat",
                height="50vh",
                render_markdown=False, sanitize_html=True, latex_delimiters=[], allow_tags=False, buttons=[],
                feedback_options=None, group_consecutive_messages=False, autoscroll=False,
                examples=_examples("ja"),
            )
            ui.status = gr.HTML("", elem_id="fb-status", padding=False)
            with gr.Group(visible=False, elem_id="fb-reason") as ui.reason:
                ui.reason_kind = gr.Radio(_reason_choices("ja"), label=words["reason"], elem_id="fb-reason-kind")
                ui.reason_comment = gr.Textbox(label=words["comment"], elem_id="fb-reason-comment", max_lines=4)
                with gr.Row():
                    ui.reason_send = gr.Button(words["reason_send"], size="sm", elem_id="fb-reason-send")
                    ui.reason_close = gr.Button(words["reason_close"], size="sm", elem_id="fb-reason-close")
            with gr.Row(equal_height=True, elem_id="question-row"):
                ui.question = gr.Textbox(label=words["question"], placeholder=words["question_placeholder"],
                                         elem_id="question", lines=1, max_lines=6, scale=5)
                with gr.Column(scale=1, min_width=140):
                    ui.send = gr.Button(words["send"], variant="primary", elem_id="send")
                    ui.clear = gr.Button(words["clear"], elem_id="clear", size="sm")
            ui.reply_lang = gr.Radio(_reply_choices("ja"), value="auto", label=words["reply"], elem_id="reply-lang")
            # the channel from buttons inside answers (votes, choices) to the server: see webassets.PAGE_JS
            ui.action = gr.Textbox(visible="hidden", elem_id="fb-action", label="action")
            ui.action_go = gr.Button("action", visible="hidden", elem_id="fb-action-go")
        with gr.Tab(words["browse_tab"], id="browse") as ui.browse_tab:
            ui.search = gr.Textbox(label=words["search"], placeholder=words["search_placeholder"],
                                   elem_id="browse-search")
            ui.table = gr.HTML(browse_html(entries, "", "ja"), elem_id="browse-table", js_on_load=None)
    return ui


def _wire(page: ChatPage, service: ChatService, demo: gr.Blocks) -> None:
    """Connect the page's components to the handlers (UI events are private), and add the public API."""
    ui = page.ui
    private = {"api_visibility": "private"}
    quick = {"queue": False, "show_progress": "hidden", **private}
    # as many questions at once as the service has workers; more would only wait inside it
    asking = {"concurrency_id": "bot", "concurrency_limit": service.workers, "show_progress": "hidden", **private}
    posted = [ui.chatbot, ui.question, ui.send, ui.asking]
    answer_in = [ui.asking, ui.chatbot, ui.records, ui.ui_lang, ui.reply_lang]
    for event in (ui.send.click(page.post, [ui.question, ui.chatbot, ui.ui_lang], posted, **quick),
                  ui.question.submit(page.post, [ui.question, ui.chatbot, ui.ui_lang], posted, **quick),
                  ui.chatbot.example_select(page.post_example, [ui.chatbot, ui.ui_lang], posted, **quick)):
        (event.then(page.reply, answer_in, [ui.chatbot, ui.records], **asking)
         .then(lambda: gr.update(interactive=True), None, ui.send, **quick))
    reason_out = [ui.reason, ui.reason_key]
    ui.action_go.click(page.act, [ui.action, ui.chatbot, ui.records, ui.ui_lang],
                       [ui.chatbot, ui.records, *reason_out, ui.status], concurrency_id="feedback",
                       concurrency_limit=FEEDBACK_CONCURRENCY, show_progress="hidden", **private)
    ui.reason_send.click(page.reason, [ui.reason_key, ui.reason_kind, ui.reason_comment, ui.records, ui.ui_lang],
                         [ui.reason, ui.reason_comment, ui.reason_kind, ui.reason_key, ui.status],
                         concurrency_id="feedback",
                         show_progress="hidden", **private)
    ui.reason_close.click(lambda: (gr.update(visible=False), ""), None, reason_out, **quick)
    ui.clear.click(lambda: ([], {}, "", gr.update(visible=False), gr.update(interactive=True), ""), None,
                   [ui.chatbot, ui.records, ui.asking, ui.reason, ui.send, ui.status], **quick)
    ui.search.change(page.browse, [ui.search, ui.ui_lang], ui.table, **quick)
    ui.ui_lang.change(page.switch, [ui.ui_lang, ui.search, ui.chatbot, ui.records], page.relabelled(),
                      js=SET_LANG_JS, **quick)
    for kept in (ui.chatbot.change, ui.ui_lang.change):
        kept(page.keep, [ui.chatbot, ui.records, ui.ui_lang], ui.saved, **quick)
    demo.load(page.restore, ui.saved, [ui.ui_lang, ui.chatbot, ui.records], **quick)
    ask, feedback = _api(service)
    gr.api(ask, api_name="ask", concurrency_id="bot", concurrency_limit=service.workers)
    # feedback waits on the store, not the cores: its own queue, so a slow database holds no ask slot
    gr.api(feedback, api_name="feedback", concurrency_id="feedback", concurrency_limit=FEEDBACK_CONCURRENCY)


def auth_from_env() -> tuple[str, str] | None:
    """(user, password) from FAQBOT_USER / FAQBOT_PASSWORD, or None for no login; one without the other is refused."""
    user, password = os.environ.get(USER_ENV, ""), os.environ.get(PASSWORD_ENV, "")
    if bool(user) != bool(password):
        raise BotError(f"set both {USER_ENV} and {PASSWORD_ENV} to require a login, or neither for an open page")
    return (user, password) if user else None


def launch(demo: gr.Blocks, settings: Settings, host: str = "127.0.0.1", port: int = 7860,
           prevent_thread_lock: bool = False, quiet: bool = False, limits: Limits | None = None) -> str:
    """Start the server with every outward-facing feature off; returns its local URL.

    The data, index and feedback folders are blocked from Gradio's file routes even if a future Gradio
    default would allow them; `bot.guard.Guard` (with `limits`) answers every other route, upload included,
    before Gradio does.
    """
    auth = auth_from_env()
    if host not in ("127.0.0.1", "localhost", "::1") and auth is None:
        logger.warning("serving on %s without a login: anyone on the network can use the page "
                       "(set %s and %s to require one)", host, USER_ENV, PASSWORD_ENV)
    folders = [settings.data_dir, settings.index_dir]
    if isinstance(settings.feedback_db, Path):  # a postgresql:// URL has no folder to block
        folders.append(settings.feedback_db.parent)
    blocked = [str(p.resolve()) for p in folders]
    install_log_safety()  # no question text in the log, from Gradio or anyone (bot/logsafe.py)
    # only the routes the page uses, small bodies, throttled logins, omitted optional API arguments filled
    api_defaults = {fn.api_name: [getattr(block, "value", None) for block in fn.inputs]
                    for fn in demo.fns.values() if fn.api_name and getattr(fn, "api_visibility", "") == "public"}
    guard = Middleware(Guard, limits=limits or Limits(), defaults=api_defaults)
    _, url, _ = demo.launch(
        server_name=host, server_port=port, share=False, auth=auth, prevent_thread_lock=prevent_thread_lock,
        quiet=quiet, show_error=False, inbrowser=False, theme=theme(), css=CSS, js=PAGE_JS, footer_links=["api"],
        run_history=False, mcp_server=False, enable_monitoring=False, pwa=False, ssr_mode=False, strict_cors=True,
        max_file_size="1mb", blocked_paths=blocked, app_kwargs={"middleware": [guard]},
    )
    return url


def open_bot(settings: Settings) -> FaqBot:
    """The bot over a verified index; a missing, stale or mismatched index is rebuilt first (model loaded once).

    The bundled model answers through its engine directly (`QueryEncoder`), so serving never imports
    sentence-transformers unless the index has to be built.
    """
    from .embed import QueryEncoder, load_model

    try:
        return FaqBot.open(settings, model=QueryEncoder() if settings.model == DEFAULT_MODEL else None)
    except IndexError_ as err:
        logger.warning("index not usable, building it now: %s", err)
    from .build import build

    model = load_model(settings.model)
    folder = build(settings, model=model)
    logger.info("built the index in %s", folder)
    return FaqBot.open(settings, model=QueryEncoder() if settings.model == DEFAULT_MODEL else model)


def serve(settings: Settings, host: str = "127.0.0.1", port: int = 7860) -> None:
    """`faqbot serve`: open (or build) the index, then serve the page until interrupted."""
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    auth_from_env()  # refuse a half-configured login before the slow start
    # `kill`, systemd and `docker stop` send SIGTERM: leave as Ctrl+C does, so the store's exit hook writes
    # the outcomes still queued instead of the process dying with them
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    demo = create_app(settings)
    launch(demo, settings, host=host, port=port)
