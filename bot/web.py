"""Web: the chat page (Gradio) — layout, events, API and launch; the HTML comes from `render`.

The page is a thin edge over `ChatService`: everything it shows comes from `Answer`, and its `ask` API returns
`Answer.to_json()`, the same object as `faqbot ask --json`. It runs offline on an intranet: analytics,
share links, run history, MCP and monitoring are off, the theme uses only fonts already on the computer,
and it binds 127.0.0.1 unless told otherwise. All text, the user's and the data files', is escaped before
it becomes HTML; the chat renders that HTML as it is (no markdown, no LaTeX) so nothing a user types is
interpreted. This is the only module that imports gradio.
"""

import logging
import os
from types import SimpleNamespace

os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"  # before gradio is imported: it reads this at import time

import gradio as gr  # noqa: E402
from starlette.middleware import Middleware  # noqa: E402

from .answer import FaqBot  # noqa: E402
from .entries import Entry  # noqa: E402
from .errors import BotError, IndexError_  # noqa: E402
from .guard import Guard, Limits, RateLimit, session_id  # noqa: E402
from .logsafe import install as install_log_safety  # noqa: E402
from .render import UI, answer_html, browse_html, question_html  # noqa: E402
from .service import ChatService, answer_record  # noqa: E402
from .settings import DEFAULT_MODEL, Settings  # noqa: E402
from .store import Store, open_store  # noqa: E402

logger = logging.getLogger(__name__)

#: Feedback posts handled at once (each mostly waits a moment for its vote to become durable).
FEEDBACK_CONCURRENCY = 16
#: Environment variables that turn on the login page (both must be set).
USER_ENV, PASSWORD_ENV = "FAQBOT_USER", "FAQBOT_PASSWORD"

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
CSS = """
.fb-answer p, .fb-question { margin: 0 0 .6em; }
.fb-text p { margin: 0 0 .8em; line-height: 1.7; }
.fb-matched { font-weight: 600; }
.fb-message { font-weight: 600; }
.fb-notice { color: var(--color-accent); }
.fb-label { font-size: .85em; font-style: italic; color: var(--body-text-color-subdued); }
.fb-official { margin: .2em 0 .8em; }
.fb-official summary, .fb-browse summary { cursor: pointer; }
.fb-citation { font-size: .85em; color: var(--body-text-color-subdued);
               border-top: 1px solid var(--border-color-primary); padding-top: .4em; }
.fb-related { font-size: .9em; margin: .6em 0 .2em; }
.fb-asks { list-style: none; margin: 0; padding: 0; display: flex; flex-direction: column; gap: .3em; }
.fb-ask { text-align: left; font: inherit; font-size: .9em; cursor: pointer; padding: .3em .6em;
          border: 1px solid var(--border-color-primary); border-radius: var(--radius-md);
          background: var(--background-fill-primary); color: var(--link-text-color); }
.fb-ask:hover { border-color: var(--color-accent); }
.fb-browse { width: 100%; border-collapse: collapse; }
.fb-browse th, .fb-browse td { text-align: left; vertical-align: top; padding: .4em .6em;
                               border-bottom: 1px solid var(--border-color-primary); }
.fb-browse td.fb-num { white-space: nowrap; }
.fb-browse details .fb-text { margin-top: .5em; }
"""

#: Clicking a related-question button (rendered by `related_html`, any answer in the chat) puts its question
#: in the question box and sends it, through the same path as typing it.
ASK_JS = """
() => {
  document.addEventListener("click", (event) => {
    const button = event.target instanceof Element ? event.target.closest("button.fb-ask") : null;
    const box = document.querySelector("#question textarea");
    const send = document.querySelector("#send");
    if (!button || !box || !send) return;
    event.preventDefault();
    box.value = button.value || "";
    box.dispatchEvent(new Event("input", { bubbles: true }));
    setTimeout(() => send.click(), 0);
  });
}
"""

def _session(request: gr.Request | None) -> str:
    """The browser's session id as it may be stored (the client chooses it: checked by `guard.session_id`)."""
    return session_id(getattr(request, "session_hash", None)) if request is not None else ""


# --------------------------------------------------------------------------- page handlers


class ChatPage:
    """Event handlers of one app; per-browser state lives in gr.State, shared state in `service`."""

    def __init__(self, service: ChatService, entries: list[Entry]) -> None:
        self.service = service
        self.entries = entries
        self.ui = SimpleNamespace()  # the components, set by `create_app`

    def reply(self, question: str, history: list, records: dict, ui_lang: str, reply_lang: str,
              request: gr.Request) -> tuple[list, dict]:
        """Ask, then add the user's question and the bot's answer to the chat, and remember what a 👍/👎 refers to."""
        question = question if isinstance(question, str) else ""
        forced = reply_lang if reply_lang in ("ja", "en") else None
        answer = self.service.ask(question, lang=forced)
        if answer.error == "empty question" and forced is None and answer.lang != ui_lang:
            answer = self.service.ask(question, lang=ui_lang)  # nothing to detect a language from: use the page's
        self.service.note_unanswered(answer, _session(request))
        history = list(history or [])
        if question.strip():
            history.append({"role": "user", "content": question_html(question)})
        history.append({"role": "assistant", "content": answer_html(answer)})
        records = {**(records or {}), str(len(history) - 1): answer_record(answer)}
        return history, records

    def submit(self, question: str, history: list, records: dict, ui_lang: str, reply_lang: str,
               request: gr.Request) -> tuple[list, dict, str]:
        """The send button and Enter: answer, then empty the question box."""
        history, records = self.reply(question, history, records, ui_lang, reply_lang, request)
        return history, records, ""

    def like(self, records: dict, ui_lang: str, liked: gr.LikeData, request: gr.Request) -> None:
        """👍/👎 on an answer: stored with that answer's question, entry, confidence and language."""
        record = (records or {}).get(str(liked.index))
        if record is None or liked.liked not in (True, False):
            return
        if self.service.rate(record, bool(liked.liked), _session(request)) is None:
            gr.Warning(UI[ui_lang]["feedback_failed"])
        else:
            gr.Info(UI[ui_lang]["thanks"])

    def browse(self, query: str, ui_lang: str) -> str:
        return browse_html(self.entries, query, ui_lang)

    def relabelled(self) -> list:
        """The components the ja/en switch updates."""
        ui = self.ui
        return [ui.header, ui.chat_tab, ui.browse_tab, ui.chatbot, ui.question, ui.send, ui.clear, ui.reply_lang,
                ui.examples_label, *ui.examples, ui.search, ui.table]

    def switch(self, ui_lang: str, query: str) -> dict:
        """The ja/en switch: relabel everything the page itself says (answers keep their own language)."""
        words, ui = UI[ui_lang], self.ui
        updates = {
            ui.header: gr.update(value=f"## {words['title']}\n{words['intro']}"),
            ui.chat_tab: gr.update(label=words["chat_tab"]),
            ui.browse_tab: gr.update(label=words["browse_tab"]),
            ui.chatbot: gr.update(label=words["chat_label"], placeholder=words["chat_placeholder"]),
            ui.question: gr.update(label=words["question"], placeholder=words["question_placeholder"]),
            ui.send: gr.update(value=words["send"]),
            ui.clear: gr.update(value=words["clear"]),
            ui.reply_lang: gr.update(label=words["reply"], choices=_reply_choices(ui_lang)),
            ui.examples_label: gr.update(value=f"**{words['examples']}**"),
            ui.search: gr.update(label=words["search"], placeholder=words["search_placeholder"]),
            ui.table: gr.update(value=browse_html(self.entries, query, ui_lang)),
        }
        updates.update({button: gr.update(value=q) for button, q in zip(ui.examples, EXAMPLES[ui_lang], strict=True)})
        return updates


def _reply_choices(ui_lang: str) -> list[tuple[str, str]]:
    words = UI[ui_lang]
    return [(words["auto"], "auto"), (words["ja"], "ja"), (words["en"], "en")]


# --------------------------------------------------------------------------- API


def _api(service: ChatService) -> tuple:
    """The `ask` and `feedback` endpoints (typed functions: gr.api derives their schema from the hints).

    Feedback is rate-limited per session (per client address without one): a script cannot flood the store.
    """
    ratings = RateLimit(Limits().feedback_per_minute, 60.0)

    def ask(question: str, lang: str | None = None, request: gr.Request = None) -> dict:
        """Answer one question: the same JSON object as `faqbot ask --json` (lang: "ja"/"en" forces the reply)."""
        answer = service.ask(question, lang=lang if lang in ("ja", "en") else None)
        service.note_unanswered(answer, _session(request))
        return answer.to_json()

    def feedback(question: str, rating: str, lang: str | None = None, request: gr.Request = None) -> dict:
        """Rate the answer to `question` ("up" or "down"); returns the stored row."""
        if rating not in ("up", "down"):
            raise gr.Error('rating must be "up" or "down"')
        if not ratings.allow(_session(request) or getattr(getattr(request, "client", None), "host", "") or "-"):
            raise gr.Error("too many ratings from this session: wait a minute, then try again")
        answer = service.ask(question, lang=lang if lang in ("ja", "en") else None)
        record = answer_record(answer)
        row_id = service.rate(record, rating == "up", _session(request))
        if row_id is None:
            raise gr.Error("the feedback database is not available; the administrator can see why in the log")
        return {"id": row_id, "kind": rating, "session": _session(request), **record}

    return ask, feedback


# --------------------------------------------------------------------------- the app


def theme() -> gr.themes.Base:
    """The default look with system fonts only: no font is fetched from anywhere."""
    return gr.themes.Default(font=FONTS, font_mono=FONTS_MONO)


def create_app(settings: Settings, bot: FaqBot | None = None, store: Store | None = None) -> gr.Blocks:
    """The page and its API over one shared bot (opened, and the index built if needed, when not given)."""
    service = ChatService(bot or open_bot(settings), store or open_store(settings.feedback_db))
    page = ChatPage(service, list(service.bot.index.entries))
    manifest = service.bot.index.manifest
    logger.info("index %s loaded: model %s, %d entries, threshold %.3f", service.bot.index.path,
                manifest.get("model"), len(page.entries), manifest.get("calibration", {}).get("threshold", 0.0))
    with gr.Blocks(title=f"{UI['ja']['title']} / {UI['en']['title']}", analytics_enabled=False) as demo:
        page.ui = _layout(page.entries)
        _wire(page, service)
    demo.queue(default_concurrency_limit=8)
    return demo


def _layout(entries: list[Entry]) -> SimpleNamespace:
    """The components, labelled in Japanese (the page's default language); returned by name for wiring."""
    words = UI["ja"]
    ui = SimpleNamespace(records=gr.State({}))
    with gr.Row():
        ui.header = gr.Markdown(f"## {words['title']}\n{words['intro']}")
        ui.ui_lang = gr.Radio([("日本語", "ja"), ("English", "en")], value="ja", label=words["ui_lang"],
                              elem_id="ui-lang", scale=0, min_width=220)
    with gr.Tabs():
        with gr.Tab(words["chat_tab"], id="chat") as ui.chat_tab:
            # render_markdown=False: messages are the escaped HTML built above, shown as they are
            ui.chatbot = gr.Chatbot(
                label=words["chat_label"], placeholder=words["chat_placeholder"], elem_id="chat", height=560,
                render_markdown=False, sanitize_html=True, latex_delimiters=[], allow_tags=False, buttons=[],
                feedback_options=("Like", "Dislike"), group_consecutive_messages=False,
            )
            with gr.Row():
                ui.question = gr.Textbox(label=words["question"], placeholder=words["question_placeholder"],
                                         elem_id="question", lines=1, max_lines=6, scale=5)
                with gr.Column(scale=1, min_width=160):
                    ui.send = gr.Button(words["send"], variant="primary", elem_id="send")
                    ui.clear = gr.Button(words["clear"], elem_id="clear", size="sm")
            ui.reply_lang = gr.Radio(_reply_choices("ja"), value="auto", label=words["reply"], elem_id="reply-lang")
            ui.examples_label = gr.Markdown(f"**{words['examples']}**")
            with gr.Row():
                ui.examples = [gr.Button(q, size="sm", elem_classes=["fb-example"]) for q in EXAMPLES["ja"]]
        with gr.Tab(words["browse_tab"], id="browse") as ui.browse_tab:
            ui.search = gr.Textbox(label=words["search"], placeholder=words["search_placeholder"],
                                   elem_id="browse-search")
            ui.table = gr.HTML(browse_html(entries, "", "ja"), elem_id="browse-table", js_on_load=None)
    return ui


def _wire(page: ChatPage, service: ChatService) -> None:
    """Connect the page's components to the handlers (UI events are private), and add the public API."""
    ui = page.ui
    private = {"api_visibility": "private"}
    # as many questions at once as the service has workers; more would only wait inside it
    asking = {"concurrency_id": "bot", "concurrency_limit": service.workers, "show_progress": "minimal", **private}
    chat_in = [ui.chatbot, ui.records, ui.ui_lang, ui.reply_lang]
    for trigger in (ui.send.click, ui.question.submit):
        trigger(page.submit, [ui.question, *chat_in], [ui.chatbot, ui.records, ui.question], **asking)
    for button in ui.examples:
        button.click(page.reply, [button, *chat_in], [ui.chatbot, ui.records], **asking)
    ui.chatbot.like(page.like, [ui.records, ui.ui_lang], None, **private)
    ui.clear.click(lambda: ([], {}), None, [ui.chatbot, ui.records], **private)
    ui.chatbot.clear(lambda: {}, None, ui.records, **private)
    ui.search.change(page.browse, [ui.search, ui.ui_lang], ui.table, show_progress="hidden", **private)
    ui.ui_lang.change(page.switch, [ui.ui_lang, ui.search], page.relabelled(), show_progress="hidden", **private)
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
    blocked = [str(p.resolve()) for p in (settings.data_dir, settings.index_dir, settings.feedback_db.parent)]
    install_log_safety()  # no question text in the log, from Gradio or anyone (bot/logsafe.py)
    # only the routes the page uses, small bodies, throttled logins, omitted optional API arguments filled
    api_defaults = {fn.api_name: [getattr(block, "value", None) for block in fn.inputs]
                    for fn in demo.fns.values() if fn.api_name and getattr(fn, "api_visibility", "") == "public"}
    guard = Middleware(Guard, limits=limits or Limits(), defaults=api_defaults)
    _, url, _ = demo.launch(
        server_name=host, server_port=port, share=False, auth=auth, prevent_thread_lock=prevent_thread_lock,
        quiet=quiet, show_error=False, inbrowser=False, theme=theme(), css=CSS, js=ASK_JS, footer_links=["api"],
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
    demo = create_app(settings)
    logger.info("feedback database: %s", settings.feedback_db)
    launch(demo, settings, host=host, port=port)
