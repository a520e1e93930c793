"""The chat page v2 in a real browser: the answer card, behaviour while answering, votes, reload, phone layout,
keyboard and axe-core accessibility, in both page languages.

One app (over the session's real bot and index, with a contact line configured) serves every test here.
Screenshots of ja/en × desktop/phone go to tests/artifacts/ (page-<lang>-<device>.png).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import expect

from bot.answer import MESSAGES, Answer
from bot.render import ANSWER_UI, HIGH, UI
from bot.search import Hit
from bot.service import ChatService
from bot.store import open_store
from bot.text import normalize

from .conftest import running_app, wait_for

ARTIFACTS = Path(__file__).parent / "artifacts"
DESKTOP, PHONE = {"width": 1366, "height": 900}, {"width": 390, "height": 844}
CONTACT = "情報システム部 内線1234"
ANSWERS = "#chat .fb-answer:not(.fb-pending)"


@pytest.fixture(scope="module")
def page_settings(settings, tmp_path_factory):
    return settings.with_(feedback_db=tmp_path_factory.mktemp("page") / "feedback.sqlite3")


@pytest.fixture(scope="module")
def app_url(bot, page_settings):
    with pytest.MonkeyPatch.context() as env:
        env.setenv("FAQBOT_CONTACT", CONTACT)
        yield from running_app(bot, page_settings)


@pytest.fixture(scope="module")
def store(page_settings, app_url):
    opened = open_store(page_settings.feedback_db)
    yield opened
    opened.close()


@pytest.fixture
def open_page(browser, app_url):
    """A factory: a fresh browser session on the page at a viewport (and context options); closed after the test."""
    contexts = []

    def make(viewport=DESKTOP, **options):
        context = browser.new_context(viewport=viewport, locale="ja-JP", **options)
        contexts.append(context)
        tab = context.new_page()
        tab.goto(app_url)
        tab.wait_for_selector("#question textarea")
        expect(tab.locator("html")).to_have_attribute("lang", "ja")
        return tab

    yield make
    for context in contexts:
        context.close()


def ask(page, question: str):
    """Type a question, send it, and return the locator of the new answer (once it replaced "answering…")."""
    before = page.locator(ANSWERS).count()
    page.fill("#question textarea", question)
    page.click("#send")
    expect(page.locator(ANSWERS)).to_have_count(before + 1, timeout=30_000)
    expect(page.locator("#send")).to_be_enabled()
    return page.locator(ANSWERS).nth(before)


def use_language(page, lang: str) -> None:
    page.locator("#ui-lang").get_by_label("English" if lang == "en" else "日本語").check()
    expect(page.locator("#send")).to_have_text(UI[lang]["send"])
    expect(page.locator("html")).to_have_attribute("lang", lang)


def votes_for(store, key: str, ratings: list) -> list[dict]:
    """The stored votes on answer `key` once their ratings are `ratings` (the vote is durable when the page says
    so, but this reader is a second connection)."""
    deadline = time.monotonic() + 15
    while True:
        rows = [v for v in store.votes() if v["key"] == key]
        if [v["rating"] for v in rows] == ratings or time.monotonic() > deadline:
            return rows


# --------------------------------------------------------------------------- while answering


def test_question_shows_at_once_with_a_localized_answering_state_and_send_disabled(open_page, monkeypatch):
    gate, original = threading.Event(), ChatService.ask

    def held(self, *args, **kwargs):
        gate.wait(20)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(ChatService, "ask", held)
    page = open_page()
    page.fill("#question textarea", "RDPのポートを変更する意味は？")
    page.click("#send")
    expect(page.locator("#chat .fb-question")).to_have_text("RDPのポートを変更する意味は？")
    expect(page.locator("#chat .fb-pending")).to_have_text(UI["ja"]["answering"])
    expect(page.locator("#send")).to_be_disabled()
    expect(page.locator("#question textarea")).to_have_value("")
    page.fill("#question textarea", "もう一度")  # Enter while answering posts nothing
    page.press("#question textarea", "Enter")
    gate.set()
    expect(page.locator(ANSWERS)).to_have_count(1, timeout=30_000)
    expect(page.locator("#chat .fb-pending")).to_have_count(0)
    expect(page.locator("#send")).to_be_enabled()
    expect(page.locator("#chat .fb-question")).to_have_count(1)


def test_empty_question_posts_nothing_and_examples_sit_in_the_empty_chat(open_page):
    page = open_page()
    examples = page.locator("#chat button.example")
    expect(examples).to_have_count(3)
    expect(examples.first).to_contain_text("RDPのポートを変更する意味は？")
    for typed in ("", "   \n\t "):
        page.fill("#question textarea", typed)
        page.click("#send")
    page.wait_for_timeout(500)  # a bubble would have appeared by now
    expect(page.locator("#chat .fb-question, #chat .fb-answer")).to_have_count(0)
    examples.first.click()
    expect(page.locator(ANSWERS).first.locator(".fb-citation summary")).to_contain_text("No.4")
    expect(page.locator("#chat button.example")).to_have_count(0)
    expect(page.locator("#clear")).to_have_count(1)  # the one clear control (Gradio's own is hidden)
    expect(page.get_by_role("button", name="会話をクリア")).to_be_hidden()
    page.click("#clear")
    expect(page.locator("#chat .fb-answer")).to_have_count(0)
    expect(page.locator("#chat button.example")).to_have_count(3)


@pytest.mark.parametrize("ui_lang, reply, question, expected", [
    ("ja", "auto", "VPN", "ja"),
    ("ja", "auto", "LTO", "ja"),
    ("en", "auto", "RDP", "en"),
    ("ja", "en", "LTO", "en"),
    ("ja", "auto", "How should we store admin passwords?", "en"),
])
def test_short_ascii_questions_are_answered_in_the_page_language_unless_chosen(open_page, ui_lang, reply, question,
                                                                              expected):
    page = open_page()
    if ui_lang == "en":
        use_language(page, "en")
    if reply != "auto":
        page.locator("#reply-lang").get_by_label(UI[ui_lang][reply], exact=True).check()
    expect(ask(page, question)).to_have_attribute("lang", expected)


# --------------------------------------------------------------------------- the answer card


def test_answer_card_title_highlight_citation_and_copy(open_page, bot):
    question = "攻撃者はRDPの全ポートスキャンをしてくる？"
    expected = bot.ask(question)
    assert expected.status == "answered" and expected.entry.id == "qa-4"
    page = open_page(permissions=["clipboard-read", "clipboard-write"])
    answer = ask(page, question)
    entry = bot.entries["qa-4"]
    summary = answer.locator(".fb-citation summary")
    expect(summary).to_contain_text(f"出典: {entry.source_title} — 質疑応答 No.4")
    level = "high" if expected.confidence >= HIGH else "medium"
    expect(summary.locator(".fb-conf")).to_have_text(f"確信度: {ANSWER_UI['ja'][level]}")
    expect(summary.locator(".fb-conf")).to_have_attribute("title", ANSWER_UI["ja"][f"{level}_why"])
    where = answer.locator(".fb-where")
    expect(where).to_be_hidden()
    summary.click()
    expect(where).to_contain_text(f"{entry.source}")
    expect(where).to_contain_text(f"{entry.line}行目")
    expect(where.locator("a")).to_have_attribute("href", entry.source_url)
    # the long matched question is a short title that unfolds; a sentence of the answer is highlighted
    matched = answer.locator("details.fb-matched")
    expect(matched.locator(".fb-full")).to_be_hidden()
    matched.locator("summary").click()
    expect(matched.locator(".fb-full")).to_have_text(entry.question)
    marks = answer.locator(".fb-text mark")
    assert 1 <= marks.count() <= 2 and all(m in entry.answer for m in marks.all_inner_texts())
    answer.locator("button.fb-copy").click()
    expect(answer.locator("button.fb-copy")).to_have_text(UI["ja"]["copied"])
    copied = page.evaluate("navigator.clipboard.readText()")
    assert entry.answer.strip() in copied and "質疑応答 No.4" in copied and entry.source_url in copied
    assert "<" not in copied


def test_long_answer_opens_at_its_first_line(open_page):
    page = open_page(viewport=PHONE)
    ask(page, "RDPのポートを変更する意味は？")
    answer = ask(page, "医療機器ベンダーにリモート保守の義務と責任を課してほしい")
    top = answer.locator(".fb-matched")
    expect(top).to_be_in_viewport()
    box, chat = top.bounding_box(), page.locator("#chat .bubble-wrap").bounding_box()
    assert chat["y"] - 1 <= box["y"] <= chat["y"] + chat["height"] / 2, (box, chat)


def test_see_also_answers_are_shown_at_once_with_their_citations(open_page, bot):
    expected = bot.ask("Can I get the PowerPoint slides?")
    assert expected.status == "no_official_answer" and expected.see_also, "archive-2 should name its see-also entries"
    page = open_page()
    answer = ask(page, "Can I get the PowerPoint slides?")
    expect(answer.locator(".fb-message")).to_have_text(expected.message)
    cards = answer.locator(".fb-card")
    expect(cards).to_have_count(len(expected.see_also))
    for card, entry in zip(cards.all(), expected.see_also, strict=True):
        expect(card.locator(".fb-text").first).to_contain_text(entry.answer_en[:30])
        expect(card.locator(".fb-citation summary")).to_contain_text(f"No.{entry.number}")


def test_which_did_you_mean_choices_show_the_chosen_entry(open_page, bot, monkeypatch):
    original = ChatService.ask
    choices = [Hit(bot.entries["qa-7"], 0.61, 0.8, 1.0, "question"),
               Hit(bot.entries["qa-10"], 0.58, 0.8, 1.0, "question")]

    def ambiguous(self, question, lang=None, **kwargs):  # the page's part of "ambiguous": the engine's is tested there
        if question != "vendor remote access?":
            return original(self, question, lang, **kwargs)
        return Answer(query=question, lang=lang or "en", answered=False, hits=choices, confidence=0.61,
                      threshold=0.9, message=MESSAGES["ambiguous"]["en"], status="ambiguous", choices=choices)

    monkeypatch.setattr(ChatService, "ask", ambiguous)
    page = open_page()
    use_language(page, "en")
    answer = ask(page, "vendor remote access?")
    buttons = answer.locator("button.fb-pick")
    expect(buttons).to_have_count(2)
    expect(buttons.nth(1)).to_have_attribute("title", f"qa-10: {bot.entries['qa-10'].question_en}")
    buttons.nth(1).click()
    picked = page.locator(ANSWERS).nth(1)
    expect(picked.locator(".fb-citation summary")).to_contain_text("No.10")
    expect(picked.locator(".fb-text[lang=en]")).to_contain_text(bot.entries["qa-10"].answer_en[:30])
    expect(picked.locator(".fb-conf")).to_have_count(0)


def test_no_confident_answer_shows_the_contact_and_is_recorded(open_page, store):
    page = open_page()
    answer = ask(page, "今日の天気は？")
    expect(answer.locator(".fb-message")).to_have_text(MESSAGES["no_match"]["ja"])
    expect(answer.locator(".fb-contact")).to_have_text(UI["ja"]["contact"].format(contact=CONTACT))
    expect(answer.locator(".fb-citation")).to_have_count(0)
    rows = wait_for(lambda: [r for r in store.outcomes() if r["question"] == normalize("今日の天気は？")])
    assert rows[-1]["status"] == "no_match" and rows[-1]["session"]


# --------------------------------------------------------------------------- votes, reload


def test_one_changeable_vote_per_answer_with_an_optional_reason(open_page, store):
    page = open_page()
    answer = ask(page, "管理者パスワードはどう保管する？")
    up = answer.locator("button.fb-up")
    expect(up).to_contain_text(UI["ja"]["up"])
    key = up.get_attribute("value").split()[1]
    up.click()
    expect(page.locator("#fb-status [role=status]")).to_have_text(UI["ja"]["vote_saved"])
    expect(page.locator(ANSWERS).first.locator("button.fb-up")).to_have_attribute("aria-pressed", "true")
    assert [v["rating"] for v in votes_for(store, key, ["up"])] == ["up"]
    page.locator(ANSWERS).first.locator("button.fb-up").click()  # un-vote
    expect(page.locator("#fb-status [role=status]")).to_have_text(UI["ja"]["vote_removed"])
    expect(page.locator(ANSWERS).first.locator("button.fb-up")).to_have_attribute("aria-pressed", "false")
    assert votes_for(store, key, []) == []
    page.locator(ANSWERS).first.locator("button.fb-down").click()
    expect(page.locator(ANSWERS).first.locator("button.fb-down")).to_have_attribute("aria-pressed", "true")
    reason = page.locator("#fb-reason-kind")  # the 👎 opens the optional reason form
    expect(reason).to_be_visible()
    reason.get_by_label(UI["ja"]["reasons"]["outdated"]).check()
    page.fill("#fb-reason-comment textarea", "2024年版の手引きがあります")
    page.click("#fb-reason-send")
    expect(reason).to_be_hidden()
    rows = wait_for(lambda: [v for v in votes_for(store, key, ["down"]) if v["reason"]])
    assert len(rows) == 1 and rows[0]["rating"] == "down" and rows[0]["reason"] == "outdated"
    assert rows[0]["comment"] == "2024年版の手引きがあります" and rows[0]["entry_id"] == "qa-5" and rows[0]["session"]


def test_page_language_and_conversation_survive_a_reload(open_page):
    page = open_page()
    use_language(page, "en")
    answer = ask(page, "How should we store admin passwords?")
    expect(answer.locator(".fb-votes")).to_contain_text(UI["en"]["votes"])
    page.wait_for_timeout(500)  # the browser stores the chat after it changes
    page.reload()
    page.wait_for_selector("#question textarea")
    expect(page.locator("#send")).to_have_text(UI["en"]["send"])
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.locator(ANSWERS)).to_have_count(1)
    expect(page.locator(ANSWERS).first.locator(".fb-citation summary")).to_contain_text("No.5")
    use_language(page, "ja")  # the page's own words inside answers follow the switch
    expect(page.locator(ANSWERS).first.locator(".fb-votes")).to_contain_text(UI["ja"]["votes"])


# --------------------------------------------------------------------------- accessibility, layout, screenshots


def _serious(results) -> list[str]:
    return [f"{v['id']} ({v['impact']}): {v['nodes'][0]['html'][:160]}" for v in results.response["violations"]
            if v["impact"] in ("serious", "critical")]


@pytest.mark.parametrize("lang", ["ja", "en"])
@pytest.mark.parametrize("device", ["desktop", "phone"])
def test_accessibility_layout_and_screenshots(open_page, lang, device):
    viewport = PHONE if device == "phone" else DESKTOP
    page = open_page(viewport=viewport)
    if lang == "en":
        use_language(page, "en")
    question_box = page.locator("#question textarea").bounding_box()
    assert question_box["y"] + question_box["height"] <= viewport["height"], "question box below the first screen"
    ask(page, "RDPのポートを変更する意味は？" if lang == "ja" else "How should we store admin passwords?")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"page-{lang}-{device}.png"))
    axe = Axe()
    assert _serious(axe.run(page)) == [], "chat tab"
    labels = page.eval_on_selector_all("#chat [aria-label]", "els => els.map(e => e.getAttribute('aria-label'))")
    assert labels and not [label for label in labels if "<" in label or "'s message" in label]
    expect(page.locator(ANSWERS).first.locator(".fb-votes")).to_contain_text(UI[lang]["votes"])
    if device == "phone":
        title, switch = page.locator("#fb-title").bounding_box(), page.locator("#ui-lang").bounding_box()
        assert switch["y"] >= title["y"] + title["height"] - 1, "the header stacks"
        assert switch["height"] < 90, "a compact language switch"
        bubble, chat = page.locator(ANSWERS).first.bounding_box(), page.locator("#chat").bounding_box()
        assert bubble["width"] >= 0.85 * chat["width"], "bot bubbles use the full width"
    page.get_by_role("tab", name=UI[lang]["browse_tab"]).click()
    expect(page.locator("#browse-table tbody tr").first).to_be_visible()
    assert _serious(axe.run(page)) == [], "browse tab"
    if device == "phone":
        cell = page.locator("#browse-table tbody tr").first.locator("td").last.bounding_box()
        table = page.locator("#browse-table").bounding_box()
        assert cell["width"] >= 0.8 * table["width"], "browse is one column: the question has the row's width"
        page.screenshot(path=str(ARTIFACTS / f"browse-{lang}-{device}.png"))


def test_every_control_is_keyboard_reachable_with_a_visible_focus_ring(open_page):
    page = open_page()
    ask(page, "RDPのポートを変更する意味は？")
    seen = {}
    for _ in range(80):
        page.keyboard.press("Tab")
        info = page.evaluate("""() => {
            const el = document.activeElement;
            const ring = el.matches('input[type=radio]') ? el.closest('label') : el;
            const style = getComputedStyle(ring);
            return {id: el.id || el.closest('[id]')?.id || '', cls: el.className || '', tag: el.tagName,
                    outline: style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) >= 2};
        }""")
        for name in ("ui-lang", "send", "clear", "reply-lang", "question"):
            if info["id"] == name:
                seen[name] = info["outline"]
        for name in ("fb-vote", "fb-copy", "fb-ask"):
            if name in str(info["cls"]):
                seen[name] = info["outline"]
    assert set(seen) >= {"ui-lang", "send", "clear", "reply-lang", "question", "fb-vote", "fb-copy", "fb-ask"}, seen
    assert all(seen.values()), seen
