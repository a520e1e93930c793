"""Render: `Answer` and `Entry` as escaped HTML for the chat page — pure functions, tested without a browser.

All text, the user's and the data files', is escaped before it becomes HTML; only http(s) URLs become
links, and highlighted sentences are wrapped in <mark> after escaping. The chat shows this HTML as it is
(no markdown, no LaTeX), so nothing a user types is interpreted. Buttons carry what a click needs in their
`value` (Gradio's sanitizer keeps it and drops data-* attributes); the page's script acts on them by class.
The page's words in both languages are in bot/uitext.py.
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Mapping

from .answer import TRANSLATION_LABEL, Answer, Citation
from .entries import Entry
from .highlight import paragraphs as split_paragraphs
from .highlight import split
from .settings import MAX_QUESTION_CHARS
from .uitext import ANSWER_UI, UI

#: Longest related-question label on a button; the button still asks the whole question.
RELATED_CHARS = 90
#: Longest matched-question title; a longer question unfolds to its full text.
TITLE_CHARS = {"ja": 60, "en": 110}
#: The user's own text echoed into the chat is cut here (the bot itself reads MAX_QUESTION_CHARS).
ECHO_CHARS = 2 * MAX_QUESTION_CHARS
#: At or above this confidence (a calibrated probability) the citation says "High", below it "Medium".
HIGH = 0.8

_URL = re.compile(r"https?://[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+")
_URL_TRAILING = ".,;:!?)'"
NO_MARKS: frozenset[int] = frozenset()


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


def paragraphs(text: str, marks: frozenset[int] = NO_MARKS) -> str:
    """Answer text as escaped, linked <p>s; sentence i (numbered as `highlight.sentences`) in <mark> if in `marks`."""
    out, index = [], 0
    for paragraph in split_paragraphs(text):
        pieces = []
        for sentence in split(paragraph):
            body = linkify(sentence).replace("\n", "<br>")
            pieces.append(f"<mark>{body}</mark>" if index in marks else body)
            index += 1
        out.append(f"<p>{''.join(pieces)}</p>")
    return "".join(out)


def question_html(question: str) -> str:
    """The user's question as literal text (cut for display when it is very long)."""
    shown = question if len(question) <= ECHO_CHARS else question[:ECHO_CHARS] + " …"
    return f'<div class="fb-question">{html.escape(shown).replace(chr(10), "<br>")}</div>'


def pending_html(lang: str) -> str:
    """The bot's bubble while it answers."""
    text = html.escape(UI[lang]["answering"])
    return f'<div class="fb-answer fb-pending" lang="{lang}"><p role="status">{text}</p></div>'


def status_html(text: str) -> str:
    """The page's status line (what became of a vote), announced politely to screen readers."""
    return f'<p class="fb-status" role="status">{html.escape(text)}</p>' if text else ""


def entry_question(entry: Entry, lang: str) -> str:
    return entry.question_en if lang == "en" and entry.question_en else entry.question


def short_title(text: str, lang: str) -> str:
    """The question's first sentence, cut to TITLE_CHARS: what the card shows before the full text."""
    first = split(text.strip())[0].strip() if text.strip() else ""
    limit = TITLE_CHARS[lang]
    return first if len(first) <= limit else first[: limit - 1] + "…"


def _matched_html(entry: Entry, lang: str, heading: str) -> str:
    full = entry_question(entry, lang)
    title = short_title(full, lang)
    head = f'<span class="fb-key">{html.escape(heading)}:</span> {html.escape(title)}'
    if title == full.strip():
        return f'<p class="fb-matched">{head}</p>'
    return (f'<details class="fb-matched"><summary>{head}</summary>'
            f'<p class="fb-full">{html.escape(full)}</p></details>')


def _answer_body(entry: Entry, lang: str, marks: Mapping[str, frozenset[int]] | None = None) -> str:
    """The official answer; for English askers the translation first, labelled, and the Japanese folded."""
    if not entry.has_answer:
        return ""
    marks = marks or {}
    official = f'<div class="fb-text" lang="ja">{paragraphs(entry.answer, marks.get("ja", NO_MARKS))}</div>'
    if lang != "en" or not entry.answer_en:
        return official
    return (f'<p class="fb-label">{html.escape(TRANSLATION_LABEL["en"])}</p>'
            f'<div class="fb-text" lang="en">{paragraphs(entry.answer_en, marks.get("en", NO_MARKS))}</div>'
            f'<details class="fb-official"><summary>{html.escape(ANSWER_UI["en"]["official"])}</summary>'
            f"{official}</details>")


def confidence_words(confidence: float, lang: str) -> tuple[str, str]:
    """("High", why) or ("Medium", why) in `lang`: how sure the bot is, in words a person reads."""
    words = ANSWER_UI[lang]
    level = "high" if confidence >= HIGH else "medium"
    return words[level], words[f"{level}_why"]


def citation_text(citation: Citation, lang: str) -> str:
    """One line naming the source the way staff recognise it: document title, section and number."""
    words = ANSWER_UI[lang]
    section = citation.section_en if lang == "en" and citation.section_en else citation.section
    return f"{words['source']}: {citation.document(lang)} — {section} {words['no']}{citation.number}"


def citation_html(citation: Citation, lang: str, confidence: float | None = None) -> str:
    """The citation line; entry id, file and line, publisher, date and link unfold beneath it."""
    words = ANSWER_UI[lang]
    summary = html.escape(citation_text(citation, lang))
    detail = ""
    if confidence is not None:
        level, why = confidence_words(confidence, lang)
        summary += (f' · <span class="fb-conf" title="{html.escape(why, quote=True)}">'
                    f"{html.escape(words['confidence'])}: {html.escape(level)}</span>")
        detail = f'<p class="fb-why">{html.escape(words["confidence"])} {html.escape(level)}: {html.escape(why)}</p>'
    facts = [f"{words['entry']} {citation.id}",
             f"{words['file']} {citation.source} {words['line'].format(line=citation.line)}",
             citation.publisher, citation.date]
    where = " · ".join(html.escape(f) for f in facts if f)
    if citation.url:
        where += f" · {linkify(citation.url)}"
    return (f'<details class="fb-citation"><summary>{summary}</summary>'
            f'<p class="fb-where">{where}</p>{detail}</details>')


def plain_text(entry: Entry, lang: str) -> str:
    """The answer and its citation as plain text, for a ticket or an e-mail (what the copy button copies)."""
    citation = Citation.of(entry)
    parts = [f"{ANSWER_UI[lang]['question']}: {entry_question(entry, lang)}"]
    if lang == "en" and entry.answer_en:
        parts += [TRANSLATION_LABEL["en"], entry.answer_en.strip(), ANSWER_UI["en"]["official"] + ":"]
    parts.append(entry.answer.strip())
    where = [f"{citation.id}, {citation.source}:{citation.line}", citation.publisher, citation.date, citation.url]
    parts.append(f"{citation_text(citation, lang)} ({', '.join(w for w in where if w)})")
    return "\n\n".join(parts)


def copy_html(entry: Entry, lang: str, ui_lang: str) -> str:
    text = plain_text(entry, lang)
    return (f'<button type="button" class="fb-copy" value="{html.escape(text, quote=True)}">'
            f"{html.escape(UI[ui_lang]['copy'])}</button>")


def vote_html(key: str, ui_lang: str, rating: str | None = None) -> str:
    """👍/👎 for one answer (the answer's `key` in each button's value); the current vote is pressed."""
    words, buttons = UI[ui_lang], []
    for kind, icon in (("up", "👍"), ("down", "👎")):
        on = rating == kind  # Gradio's sanitizer drops aria-pressed: the page's script sets it from fb-pressed
        css = f"fb-vote fb-{kind}" + (" fb-pressed" if on else "")
        buttons.append(f'<button type="button" class="{css}" value="{kind} {html.escape(key, quote=True)}" '
                       f'aria-pressed="{"true" if on else "false"}"><span aria-hidden="true">{icon}</span> '
                       f"{html.escape(words[kind])}</button>")
    return (f'<div class="fb-votes" lang="{ui_lang}"><span class="fb-votes-q">{html.escape(words["votes"])}</span> '
            f'{"".join(buttons)}</div>')


def relabel(text: str, old: str, new: str) -> str:
    """A rendered reply with its page controls (votes, copy button, contact line) in UI language `new`.

    Only the exact fragments `render` writes are replaced; user and data text is escaped, so it cannot hold them.
    """
    was, now = UI[old], UI[new]
    pairs = [(f'<div class="fb-votes" lang="{old}"><span class="fb-votes-q">{html.escape(was["votes"])}</span>',
              f'<div class="fb-votes" lang="{new}"><span class="fb-votes-q">{html.escape(now["votes"])}</span>'),
             *((f'</span> {html.escape(was[k])}</button>', f'</span> {html.escape(now[k])}</button>')
               for k in ("up", "down")),
             (f'">{html.escape(was["copy"])}</button>', f'">{html.escape(now["copy"])}</button>')]
    for before, after in pairs:
        text = text.replace(before, after)
    return text


def _ask_buttons(entries: list[Entry], lang: str, css: str = "fb-ask") -> str:
    """Entries as buttons: `fb-ask` asks the question next, `fb-pick` shows that entry's answer (value = id)."""
    buttons = []
    for entry in entries:
        text = entry_question(entry, lang)
        label = text if len(text) <= RELATED_CHARS else text[: RELATED_CHARS - 1] + "…"
        value = text if css == "fb-ask" else entry.id
        buttons.append(f'<li><button type="button" class="{css}" value="{html.escape(value, quote=True)}" '
                       f'title="{html.escape(f"{entry.id}: {text}", quote=True)}">{html.escape(label)}</button></li>')
    return f'<ul class="fb-asks">{"".join(buttons)}</ul>'


def related_html(answer: Answer) -> str:
    """Related (or closest) entries as buttons; the page's script makes a click ask that question next."""
    return _ask_buttons(answer.related, answer.lang)


def entry_card(entry: Entry, lang: str, ui_lang: str, *, heading: str, confidence: float | None = None,
               marks: Mapping[str, frozenset[int]] | None = None) -> str:
    """An entry's matched question, answer, citation and copy button."""
    parts = [_matched_html(entry, lang, heading), _answer_body(entry, lang, marks)]
    citation = Citation.of(entry)
    parts.append(citation_html(citation, lang, confidence))
    if entry.has_answer:
        parts.append(copy_html(entry, lang, ui_lang))
    return "".join(parts)


def answer_html(answer: Answer, *, key: str = "", ui_lang: str | None = None, rating: str | None = None,
                marks: Mapping[str, frozenset[int]] | None = None, contact: str = "",
                show_confidence: bool = True) -> str:
    """One bot reply: notices, message, the answer card (or choices / see-also / closest entries), 👍/👎.

    `key` names the answer for votes (no vote buttons without one), `ui_lang` the page's language for its
    own controls, `marks` the highlighted sentences, `contact` whom to ask when there is no confident answer;
    `show_confidence` False for an entry the user picked (the bot's confidence is then beside the point).
    """
    lang, ui_lang = answer.lang, ui_lang or answer.lang
    words = ANSWER_UI[lang]
    parts = [f'<p class="fb-notice">⚠ {html.escape(n)}</p>' for n in answer.notices]
    if answer.message:
        parts.append(f'<p class="fb-message">{html.escape(answer.message)}</p>')
    if answer.status == "no_match" and contact:
        parts.append(f'<p class="fb-contact" lang="{ui_lang}">'
                     f"{html.escape(UI[ui_lang]['contact'].format(contact=contact))}</p>")
    entry = answer.entry
    if entry is not None:
        confidence = answer.confidence if entry.has_answer and show_confidence else None
        parts.append(entry_card(entry, lang, ui_lang, heading=words["question"], confidence=confidence, marks=marks))
    if answer.see_also:
        cards = "".join(f'<div class="fb-card">{entry_card(e, lang, ui_lang, heading=words["question"])}</div>'
                        for e in answer.see_also)
        heading = "" if answer.message else f'<p class="fb-related">{html.escape(words["see_also"])}:</p>'
        parts.append(heading + cards)
    if answer.choices:
        heading = "" if answer.message else f'<p class="fb-related">{html.escape(words["choose"])}</p>'
        parts.append(heading + _ask_buttons([h.entry for h in answer.choices], lang, "fb-pick"))
    elif answer.related:
        heading = words["related"] if entry is not None else words["closest"]
        parts.append(f'<p class="fb-related">{html.escape(heading)}:</p>{related_html(answer)}')
    if key and answer.status != "error":
        parts.append(vote_html(key, ui_lang, rating))
    return f'<div class="fb-answer" lang="{lang}">{"".join(parts)}</div>'


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
                    f"<td class=\"fb-sec\">{html.escape(section)}</td><td class=\"fb-num\">{e.number}</td>"
                    f"<td><details><summary>{html.escape(entry_question(e, lang))}</summary>{body}</details></td></tr>")
    header = "".join(f"<th>{html.escape(words[c])}</th>" for c in ("col_id", "col_section", "col_number",
                                                                     "col_question"))
    count = html.escape(words["count"].format(shown=len(shown), total=len(entries)))
    return (f'<p class="fb-count" lang="{lang}">{count}</p><table class="fb-browse" lang="{lang}"><thead>'
            f"<tr>{header}</tr></thead><tbody>{''.join(rows)}</tbody></table>")
