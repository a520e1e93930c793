"""Web: the chat page (Gradio) — layout, wiring of its events and API, and launch; what the events do is in
`webhandlers`, the HTML comes from `render`, the styles and scripts from `webassets`.

The page is a thin edge over `ChatService`: everything it shows comes from `Answer`, and its `ask` API returns
`Answer.to_json()`, the same object as `faqbot ask --json`. It runs offline on an intranet: analytics,
share links, run history, MCP and monitoring are off, the theme uses only fonts already on the computer,
and it binds 127.0.0.1 unless told otherwise. All text, the user's and the data files', is escaped before
it becomes HTML; the chat renders that HTML as it is (no markdown, no LaTeX) so nothing a user types is
interpreted. The conversation, its votes and the page language live in the browser (`gr.BrowserState`),
so a reload keeps them. Only this module and `webhandlers` import gradio.
"""

import logging
import os
import signal
import sys
from pathlib import Path
from types import SimpleNamespace

os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"  # before gradio is imported: it reads this at import time

import gradio as gr  # noqa: E402
from starlette.middleware import Middleware  # noqa: E402

from .answer import FaqBot  # noqa: E402
from .entries import Entry  # noqa: E402
from .errors import BotError, IndexError_  # noqa: E402
from .guard import Guard, Limits  # noqa: E402
from .highlight import Highlighter  # noqa: E402
from .logsafe import install as install_log_safety  # noqa: E402
from .render import browse_html  # noqa: E402
from .service import ChatService  # noqa: E402
from .settings import DEFAULT_MODEL, Settings  # noqa: E402
from .store import Store, open_store  # noqa: E402
from .uitext import UI  # noqa: E402
from .vectorcache import VectorCache  # noqa: E402
from .webassets import CSS, PAGE_JS, SET_LANG_JS  # noqa: E402
from .webhandlers import ChatPage, api_endpoints, examples, header, reason_choices, reply_choices  # noqa: E402

logger = logging.getLogger(__name__)

#: Feedback posts handled at once (each mostly waits a moment for its vote to become durable).
FEEDBACK_CONCURRENCY = 16
#: Questions let into the service at once. Only `service.workers` are searched at a time; the rest wait in the
#: service's queue, where answers go before the questions of votes. With Gradio's limit at `workers`, questions
#: would wait in Gradio's queue instead, and every vote's question (its own group) would jump ahead of them.
ASK_CONCURRENCY = 64
#: Gradio's worker threads: every admitted question and feedback post holds one while it waits, plus room for
#: the page's own quick events.
MAX_THREADS = ASK_CONCURRENCY + FEEDBACK_CONCURRENCY + 40
#: Environment variables that turn on the login page (both must be set).
USER_ENV, PASSWORD_ENV = "FAQBOT_USER", "FAQBOT_PASSWORD"
#: Whom staff should ask when the bot has no confident answer (e.g. 「情報システム部 内線1234」).
CONTACT_ENV = "FAQBOT_CONTACT"

# Fonts already on staff PCs (and Noto CJK on Linux) only: nothing to download, and Japanese renders everywhere.
FONTS = ["system-ui", "-apple-system", "Segoe UI", "Hiragino Sans", "Hiragino Kaku Gothic ProN", "Meiryo",
         "Noto Sans CJK JP", "Noto Sans JP", "sans-serif"]
FONTS_MONO = ["ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "Noto Sans Mono CJK JP", "monospace"]


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
    cache = VectorCache.of_model(settings.index_dir, settings.model)
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
        ui.header = gr.Markdown(header("ja"), elem_id="fb-title")
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
                examples=examples("ja"),
            )
            ui.status = gr.HTML("", elem_id="fb-status", padding=False)
            with gr.Group(visible=False, elem_id="fb-reason") as ui.reason:
                ui.reason_kind = gr.Radio(reason_choices("ja"), label=words["reason"], elem_id="fb-reason-kind")
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
            ui.reply_lang = gr.Radio(reply_choices("ja"), value="auto", label=words["reply"], elem_id="reply-lang")
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
    asking = {"concurrency_id": "bot", "concurrency_limit": ASK_CONCURRENCY, "show_progress": "hidden", **private}
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
    ask, feedback = api_endpoints(service)
    gr.api(ask, api_name="ask", concurrency_id="bot", concurrency_limit=ASK_CONCURRENCY)
    # feedback waits on the store, not the cores: its own queue, so a slow database holds no ask slot; the
    # question it rates comes from the service's cache, or waits behind the answers (ChatService.ask for_vote)
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
        max_file_size="1mb", blocked_paths=blocked, app_kwargs={"middleware": [guard]}, max_threads=MAX_THREADS,
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
