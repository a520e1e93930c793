"""Render and highlight: the chat page's HTML from `Answer`, checked without a browser.

Escaping is the point of most of these: every text from a user or a data file must arrive as text, also
inside <mark>, button values, titles and the citation's details.
"""

from __future__ import annotations

import html
import re

import numpy as np
import pytest

from bot.answer import MESSAGES, TRANSLATION_LABEL, Answer, Citation
from bot.entries import Entry
from bot.highlight import Highlighter, best, sentences, split
from bot.render import (
    HIGH,
    answer_html,
    browse_html,
    citation_text,
    linkify,
    paragraphs,
    plain_text,
    question_html,
    relabel,
    short_title,
    vote_html,
)
from bot.search import Hit
from bot.settings import MAX_QUESTION_CHARS
from bot.uitext import ANSWER_UI, UI
from bot.vectorcache import VectorCache

XSS = "<img src=x onerror=alert(1)>"


def _entry(**changes) -> Entry:
    base = {"id": "qa-99", "section": "質疑応答", "section_en": "Q&A", "number": 99, "question": "質問<b>",
            "answer": "一段落目 <script>alert(1)</script>。二文目です。\n\n"
                      "詳細は https://example.org/a?b=1&c=2. をご覧ください",
            "source": "sheet.txt", "line": 7, "question_en": "Question <i>", "answer_en": "First & <u>x</u>.",
            "source_title": "研修 Q&A <資料>", "source_title_en": "Training Q&A <sheet>",
            "source_publisher": "厚生労働省", "source_date": "2023", "source_url": "https://example.org/qa"}
    return Entry(**{**base, **changes})


def _answer(entry: Entry | None, lang: str, **changes) -> Answer:
    fields = {"query": "q", "lang": lang, "answered": entry is not None, "hits": [], "confidence": 0.91,
              "threshold": 0.5, "message": "", "entry": entry, "status": "answered" if entry else "no_match",
              "related": [_entry(id="qa-98", question="近い<x>", question_en="Close <x>")]}
    return Answer(**{**fields, **changes})


def _no_raw_tags(out: str) -> None:
    for tag in ("<script", "<img", "<b>", "<i>", "<u>", "<x>", "<資料>", "<sheet>"):
        assert tag not in out, tag


def test_linkify_escapes_everything_and_links_only_http_urls():
    text = 'see https://example.org/a?b=1&c=2. or "javascript:alert(1)" <a href="x">'
    out = linkify(text)
    assert '<a href="https://example.org/a?b=1&amp;c=2" target="_blank" rel="noopener noreferrer">' in out
    assert "</a>. or &quot;javascript:alert(1)&quot; &lt;a href=&quot;x&quot;&gt;" in out
    assert out.count("<a ") == 1


def test_question_html_is_literal_and_capped():
    expected = '<div class="fb-question">&lt;img src=x onerror=alert(1)&gt;<br>**x**</div>'
    assert question_html(XSS + "\n**x**") == expected
    assert len(question_html("あ" * 100_000)) < 3 * MAX_QUESTION_CHARS


def test_citation_names_the_document_section_and_number_with_file_and_line_in_the_details():
    out = answer_html(_answer(_entry(), "ja"))
    summary = re.search(r'<details class="fb-citation"><summary>(.*?)</summary>(.*?)</details>', out).groups()
    assert "出典: 研修 Q&amp;A &lt;資料&gt; — 質疑応答 No.99" in summary[0]
    assert "sheet.txt" not in summary[0] and "qa-99" not in summary[0]
    assert "項目 qa-99" in summary[1] and "sheet.txt 7行目" in summary[1] and "厚生労働省" in summary[1]
    assert '<a href="https://example.org/qa"' in summary[1]
    english = answer_html(_answer(_entry(), "en"))
    assert "Source: Training Q&amp;A &lt;sheet&gt; — Q&amp;A No.99" in english and "line 7" in english
    _no_raw_tags(out + english)


@pytest.mark.parametrize("confidence, lang, word", [(HIGH, "ja", "高"), (0.99, "en", "High"), (HIGH - 0.01, "ja", "中"),
                                                     (0.55, "en", "Medium")])
def test_confidence_is_a_word_with_its_explanation_not_a_number(confidence, lang, word):
    out = answer_html(_answer(_entry(), lang, confidence=confidence))
    level = "high" if word in ("高", "High") else "medium"
    why = ANSWER_UI[lang][f"{level}_why"]
    assert f'title="{html.escape(why, quote=True)}">{ANSWER_UI[lang]["confidence"]}: {word}</span>' in out
    assert f"{confidence:.2f}" not in out
    # an entry the user picked, and an entry without an answer, show no confidence at all
    assert "fb-conf" not in answer_html(_answer(_entry(), lang, confidence=confidence), show_confidence=False)
    assert "fb-conf" not in answer_html(_answer(_entry(answer="", answer_en=""), lang, status="no_official_answer"))


def test_answer_html_escapes_data_text_and_folds_the_japanese_for_english_askers():
    out = answer_html(_answer(_entry(), "en"))
    _no_raw_tags(out)
    assert "&lt;script&gt;" in out and TRANSLATION_LABEL["en"] in out
    assert out.index("First &amp; &lt;u&gt;") < out.index('<details class="fb-official"') < out.index("一段落目")
    assert 'value="Close &lt;x&gt;"' in out and "Close &lt;x&gt;</button>" in out
    japanese = answer_html(_answer(_entry(), "ja"))
    assert TRANSLATION_LABEL["en"] not in japanese and "fb-official" not in japanese


def test_highlighted_sentences_are_marked_after_escaping():
    entry = _entry(answer=f"前置きです。{XSS}が危険です。\n\n最後の段落。", answer_en="One. Two <b>bold</b>. Three.")
    assert sentences(entry.answer) == ["前置きです。", f"{XSS}が危険です。", "最後の段落。"]
    out = answer_html(_answer(entry, "en"), marks={"ja": frozenset({1}), "en": frozenset({0, 2})})
    assert "<mark>&lt;img src=x onerror=alert(1)&gt;が危険です。</mark>" in out
    assert "<mark>One. </mark>Two &lt;b&gt;bold&lt;/b&gt;. <mark>Three.</mark>" in out
    assert out.count("<mark>") == 3 and "<img" not in out
    assert "<mark>" not in answer_html(_answer(entry, "ja"))  # no marks given: none shown


def test_sentence_split_keeps_every_character_and_quoted_passages_whole():
    paragraph = "規則では「端末を隔離する。電源は切らない。」とされています。次に、警察へ連絡します。 Then call. OK."
    pieces = split(paragraph)
    assert "".join(pieces) == paragraph
    assert pieces[0] == "規則では「端末を隔離する。電源は切らない。」とされています。"
    assert split("See https://example.org/a.b. Then call.") == ["See https://example.org/a.b. ", "Then call."]
    assert paragraphs("a. B.\n\nc", frozenset({1})) == "<p>a. <mark>B.</mark></p><p>c</p>"


def test_best_marks_the_closest_sentence_and_a_near_tie_and_nothing_in_a_single_sentence():
    question = np.array([1.0, 0.0], np.float32)
    vectors = np.array([[0.2, 0.98], [0.9, 0.43], [0.89, 0.45], [0.5, 0.86]], np.float32)
    assert best(question, vectors) == frozenset({1, 2})
    assert best(question, vectors[[0, 1, 3]]) == frozenset({1})
    assert best(question, vectors[:1]) == frozenset()


def test_long_matched_question_gets_a_short_title_and_unfolds_to_the_full_text():
    long_question = "RDPの待ち受けポートをデフォルトから変更しているとのことだが、全マシンでランダムに変更？ " * 3
    out = answer_html(_answer(_entry(question=long_question), "ja"))
    title = short_title(long_question, "ja")
    assert len(title) <= 60 and f"<summary><span class=\"fb-key\">該当する質問:</span> {title}</summary>" in out
    assert f'<p class="fb-full">{long_question}</p>' in out
    short = answer_html(_answer(_entry(), "ja"))
    assert '<p class="fb-matched"><span class="fb-key">該当する質問:</span> 質問&lt;b&gt;</p>' in short


def test_copy_button_holds_the_plain_answer_and_its_citation():
    entry = _entry()
    text = plain_text(entry, "en")
    assert "&lt;" not in text and "<p>" not in text and "<details" not in text  # plain text, not HTML
    assert entry.answer_en in text and entry.answer in text and citation_text(Citation.of(entry), "en") in text
    assert "qa-99, sheet.txt:7" in text and "https://example.org/qa" in text
    out = answer_html(_answer(entry, "en"), ui_lang="ja")
    assert f'class="fb-copy" value="{html.escape(text, quote=True)}">{UI["ja"]["copy"]}</button>' in out


def test_choices_are_buttons_that_name_each_entry_and_no_related_list():
    choices = [Hit(_entry(id="qa-7", question="質問7<b>"), 0.6, 0.8, 1.0, "question"),
               Hit(_entry(id="qa-8", question="質問8"), 0.55, 0.8, 1.0, "question")]
    out = answer_html(_answer(None, "ja", status="ambiguous", choices=choices, message=MESSAGES["ambiguous"]["ja"]))
    assert MESSAGES["ambiguous"]["ja"] in out
    assert re.findall(r'<button type="button" class="fb-pick" value="([^"]+)"', out) == ["qa-7", "qa-8"]
    assert "質問7&lt;b&gt;</button>" in out and 'class="fb-ask"' not in out and "fb-citation" not in out
    assert out.count(MESSAGES["ambiguous"]["ja"]) == 1 and ANSWER_UI["ja"]["choose"] not in out  # one question


def test_see_also_shows_each_answer_with_its_own_citation_at_once():
    landed = _entry(id="archive-2", answer="", answer_en="", question="スライドは？")
    others = [_entry(id="archive-1", number=1, answer="最後に公開します。"), _entry(id="other-1", number=2)]
    out = answer_html(_answer(landed, "ja", status="no_official_answer", see_also=others,
                              message=MESSAGES["see_also"]["ja"]), key="k1")
    assert MESSAGES["see_also"]["ja"] in out and out.count('class="fb-card"') == 2
    assert "最後に公開します。" in out and "項目 archive-1" in out and "項目 other-1" in out
    assert "項目 archive-2" in out and "<details" in out and "fb-conf" not in out
    assert out.count('class="fb-copy"') == 2  # the answered see-also entries, not the entry without an answer


def test_no_confident_answer_shows_the_contact_line_escaped():
    out = answer_html(_answer(None, "en", message=MESSAGES["no_match"]["en"]), ui_lang="ja",
                      contact="情報システム部 内線1234 <script>")
    line = "解決しない場合の問い合わせ先: 情報システム部 内線1234 &lt;script&gt;"
    assert f'<p class="fb-contact" lang="ja">{line}</p>' in out
    assert "fb-contact" not in answer_html(_answer(_entry(), "en"), contact="x")
    assert "fb-contact" not in answer_html(_answer(None, "en", message=MESSAGES["no_match"]["en"]))
    assert "近い項目" not in out and "Closest entries" in out


def test_votes_show_the_current_vote_and_follow_the_page_language():
    out = answer_html(_answer(_entry(), "en"), key='k"1', ui_lang="ja", rating="down")
    assert 'class="fb-vote fb-up" value="up k&quot;1" aria-pressed="false"' in out
    assert 'class="fb-vote fb-down fb-pressed" value="down k&quot;1" aria-pressed="true"' in out
    assert f'{UI["ja"]["votes"]}</span>' in out and "fb-votes" in out
    assert "fb-votes" not in answer_html(_answer(_entry(), "en"))  # no key: nothing to vote on
    assert "fb-votes" not in answer_html(_answer(None, "en", status="error", message="x"), key="k")
    english = relabel(out, "ja", "en")
    assert english == answer_html(_answer(_entry(), "en"), key='k"1', ui_lang="en", rating="down")
    assert vote_html("k", "en", "up").count('aria-pressed="true"') == 1


def test_browse_filter_and_language(bot):
    entries = list(bot.index.entries)
    everything = browse_html(entries, "", "ja")
    assert everything.count("<tr data-id=") == len(entries)
    rdp = browse_html(entries, "rdp ポート", "en")
    assert 'data-id="qa-4"' in rdp and rdp.count("<tr data-id=") < len(entries)
    assert bot.entries["qa-4"].question_en[:30] in rdp and "Section" in rdp
    assert browse_html(entries, XSS, "ja").count("<tr data-id=") == 0


def test_highlighter_marks_the_sentence_that_answers_the_question(bot, settings, built_index):
    """The real model and the build's cached sentence vectors: a question about one point of a long answer."""
    from bot.embed import model_version

    cache = VectorCache.under(settings.index_dir, settings.model, model_version(settings.model))
    highlighter = Highlighter(bot.model, cache)
    entry = bot.entries["qa-4"]
    marks = highlighter.marks("Do attackers scan every port, or only 3389?", entry, "en")
    english = sentences(entry.answer_en)
    assert set(marks) == {"ja", "en"} and marks["en"] and len(marks["en"]) < len(english)
    assert any("scan" in english[i] for i in marks["en"]), [english[i] for i in marks["en"]]
    assert marks["ja"] == marks["en"]  # sentence-aligned translation: the same sentences marked side by side
    assert highlighter.marks("", entry, "en") == {} and highlighter.marks("x", bot.entries["archive-2"], "ja") == {}
    for entry in bot.entries.values():  # an English reply never shows the two texts marking different sentences
        marks = highlighter.marks("How should we store admin passwords safely?", entry, "en")
        if marks and len(sentences(entry.answer)) == len(sentences(entry.answer_en)):
            assert marks["ja"] == marks["en"], entry.id


def test_highlighter_without_cached_sentences_or_passage_model_marks_nothing(bot, tmp_path):
    class QueryOnly:  # the server's direct encoder: queries only
        def encode_query(self, texts, normalize_embeddings=True):
            return bot.model.encode_query(texts, normalize_embeddings=normalize_embeddings)

    highlighter = Highlighter(QueryOnly(), VectorCache.under(tmp_path, "m", "v"))
    assert highlighter.marks("RDPのポート", bot.entries["qa-4"], "ja") == {}


def test_every_ui_word_exists_in_both_languages():
    """A key missing in one language would show a KeyError (or nothing) on that language's page."""
    for table in (UI, ANSWER_UI):
        assert set(table) == {"ja", "en"}
        assert set(table["ja"]) == set(table["en"])
        assert all(table["ja"][k] and table["en"][k] for k in table["ja"])
