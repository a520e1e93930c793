"""Render: `Answer` and `Entry` as escaped HTML for the chat page — pure functions, tested without a browser.

All text, the user's and the data files', is escaped before it becomes HTML; only http(s) URLs become
links. The chat shows this HTML as it is (no markdown, no LaTeX), so nothing a user types is interpreted.
The page's words in both languages (`UI`, `ANSWER_UI`) live here too, beside the HTML that uses them.
"""

from __future__ import annotations

import html
import re
import unicodedata

from .answer import TRANSLATION_LABEL, Answer
from .entries import Entry
from .settings import MAX_QUESTION_CHARS

#: Longest related-question label on a button; the button still asks the whole question.
RELATED_CHARS = 90
#: The user's own text echoed into the chat is cut here (the bot itself reads MAX_QUESTION_CHARS).
ECHO_CHARS = 2 * MAX_QUESTION_CHARS

UI = {
    "ja": {
        "title": "医療機関サイバーセキュリティ FAQ",
        "intro": "研修の公式Q&A資料から回答します。回答には出典（項目ID・セクション・番号・資料の行）が付きます。",
        "ui_lang": "表示言語 / Language",
        "chat_tab": "チャット", "browse_tab": "一覧",
        "chat_label": "チャット",
        "chat_placeholder": "質問を入力してください。日本語でも英語でも答えます。",
        "question": "質問", "question_placeholder": "例: RDPのポートを変更する意味は？",
        "send": "送信", "clear": "会話を消去",
        "reply": "回答の言語", "auto": "質問と同じ", "ja": "日本語", "en": "English",
        "examples": "質問の例",
        "search": "検索", "search_placeholder": "キーワードで絞り込み（質問・回答・ID）",
        "col_id": "ID", "col_section": "セクション", "col_number": "番号", "col_question": "質問（クリックで回答）",
        "count": "{shown} / {total} 件", "no_answer": "（公式回答はありません）",
        "thanks": "フィードバックを記録しました。ありがとうございます。",
        "feedback_failed": "フィードバックを保存できませんでした（管理者に連絡してください）。",
    },
    "en": {
        "title": "Hospital cybersecurity FAQ",
        "intro": "Answers come from the course's official Q&A sheet, each with its source "
                 "(entry id, section, number and line of the sheet).",
        "ui_lang": "表示言語 / Language",
        "chat_tab": "Chat", "browse_tab": "Browse",
        "chat_label": "Chat",
        "chat_placeholder": "Ask a question, in English or Japanese.",
        "question": "Question", "question_placeholder": "e.g. How should we store admin passwords?",
        "send": "Send", "clear": "Clear chat",
        "reply": "Reply language", "auto": "Same as the question", "ja": "日本語", "en": "English",
        "examples": "Example questions",
        "search": "Search", "search_placeholder": "Filter by keyword (question, answer, id)",
        "col_id": "ID", "col_section": "Section", "col_number": "No.",
        "col_question": "Question (click for the answer)",
        "count": "{shown} of {total} entries", "no_answer": "(no official answer)",
        "thanks": "Feedback saved. Thank you.",
        "feedback_failed": "Your feedback could not be saved (please tell the administrator).",
    },
}
#: Labels inside an answer: they follow the answer's language, like its text.
ANSWER_UI = {
    "ja": {"source": "出典", "confidence": "確信度", "related": "関連する質問", "closest": "近い項目",
           "official": "公式回答（日本語の原文）", "question": "該当する質問"},
    "en": {"source": "Source", "confidence": "confidence", "related": "Related questions",
           "closest": "Closest entries", "official": "Official answer (Japanese original)",
           "question": "Matched question"},
}

_URL = re.compile(r"https?://[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+")
_URL_TRAILING = ".,;:!?)'"


def linkify(text: str) -> str:
    """Escaped text in which only http(s) URLs become links; nothing else in `text` can become markup."""
    out, start = [], 0
    for match in _URL.finditer(text):
        url = match.group(0).rstrip(_URL_TRAILING)
        end = match.start() + len(url)
        out.append(html.escape(text[start:match.start()]))
        out.append(f'<a href="{html.escape(url, quote=True)}" target="_blank" rel="noopener noreferrer">'
                   f"{html.escape(url)}</a>")
        start = end
    out.append(html.escape(text[start:]))
    return "".join(out)


def paragraphs(text: str) -> str:
    """Plain text with blank-line paragraphs (how entries store answers) as escaped, linked <p>s."""
    parts = [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]
    return "".join(f"<p>{linkify(p).replace(chr(10), '<br>')}</p>" for p in parts)


def question_html(question: str) -> str:
    """The user's question as literal text (cut for display when it is very long)."""
    shown = question if len(question) <= ECHO_CHARS else question[:ECHO_CHARS] + " …"
    return f'<div class="fb-question">{html.escape(shown).replace(chr(10), "<br>")}</div>'


def entry_question(entry: Entry, lang: str) -> str:
    return entry.question_en if lang == "en" and entry.question_en else entry.question


def _answer_body(entry: Entry, lang: str) -> str:
    """The official answer; for English askers the translation first, labelled, and the Japanese folded."""
    if not entry.has_answer:
        return ""
    official = f'<div class="fb-text" lang="ja">{paragraphs(entry.answer)}</div>'
    if lang != "en" or not entry.answer_en:
        return official
    return (f'<p class="fb-label">{html.escape(TRANSLATION_LABEL["en"])}</p>'
            f'<div class="fb-text" lang="en">{paragraphs(entry.answer_en)}</div>'
            f'<details class="fb-official"><summary>{html.escape(ANSWER_UI["en"]["official"])}</summary>'
            f"{official}</details>")


def answer_html(answer: Answer) -> str:
    """One bot reply: notices, message, matched question, answer, citation line, and the related heading."""
    words = ANSWER_UI[answer.lang]
    parts = [f'<p class="fb-notice">⚠ {html.escape(n)}</p>' for n in answer.notices]
    if answer.message:
        parts.append(f'<p class="fb-message">{html.escape(answer.message)}</p>')
    entry = answer.entry
    if entry is not None:
        parts.append(f'<p class="fb-matched">{html.escape(words["question"])}: '
                     f"{html.escape(entry_question(entry, answer.lang))}</p>")
        parts.append(_answer_body(entry, answer.lang))
    for citation in answer.citations:
        parts.append(f'<p class="fb-citation">{html.escape(words["source"])}: '
                     f"{html.escape(citation.label(answer.lang))} · {html.escape(words['confidence'])} "
                     f"{answer.confidence:.2f}</p>")
    if answer.related:
        heading = words["related"] if entry is not None else words["closest"]
        parts.append(f'<p class="fb-related">{html.escape(heading)}:</p>{related_html(answer)}')
    return f'<div class="fb-answer" lang="{answer.lang}">{"".join(parts)}</div>'


def related_html(answer: Answer) -> str:
    """Related (or closest) entries as buttons; `ASK_JS` makes a click ask that question next."""
    buttons = []
    for entry in answer.related:
        text = entry_question(entry, answer.lang)
        label = text if len(text) <= RELATED_CHARS else text[: RELATED_CHARS - 1] + "…"
        # the whole question travels in `value` (the sanitizer keeps it; it drops data-* attributes)
        buttons.append(f'<li><button type="button" class="fb-ask" value="{html.escape(text, quote=True)}" '
                       f'title="{html.escape(f"{entry.id}: {text}", quote=True)}">{html.escape(label)}</button></li>')
    return f'<ul class="fb-asks">{"".join(buttons)}</ul>'


def _fold(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold()


def matches(entry: Entry, query: str) -> bool:
    """Browse filter: every word of `query` appears in the entry's id, questions or answers (either language)."""
    haystack = _fold(" ".join([entry.id, entry.section, entry.section_en, entry.question, entry.question_en,
                               entry.answer, entry.answer_en, *entry.alt_ja, *entry.alt_en]))
    return all(word in haystack for word in _fold(query).split())


def browse_html(entries: list[Entry], query: str, lang: str) -> str:
    """The browse table: id, section, number, and the question (in `lang`) that unfolds into its answer."""
    words = UI[lang]
    shown = [e for e in entries if matches(e, query or "")]
    rows = []
    for e in shown:
        section = e.section_en if lang == "en" else e.section
        body = _answer_body(e, lang) or f"<p>{html.escape(words['no_answer'])}</p>"
        rows.append(f'<tr data-id="{html.escape(e.id, quote=True)}"><td class="fb-num">{html.escape(e.id)}</td>'
                    f"<td>{html.escape(section)}</td><td class=\"fb-num\">{e.number}</td>"
                    f"<td><details><summary>{html.escape(entry_question(e, lang))}</summary>{body}</details></td></tr>")
    header = "".join(f"<th>{html.escape(words[c])}</th>" for c in ("col_id", "col_section", "col_number",
                                                                     "col_question"))
    count = html.escape(words["count"].format(shown=len(shown), total=len(entries)))
    return (f'<p class="fb-count">{count}</p><table class="fb-browse"><thead><tr>{header}</tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table>")
