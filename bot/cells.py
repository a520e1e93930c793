"""Cells: the official sheet's HTML cells as plain paragraphs and link URLs, without changing a word.

The sheet uses a small HTML subset (<p>, <br>, <a href>); the official wording is the authority, so a
cell without tags is kept exactly as written and a link's target is kept next to its text.
"""

from __future__ import annotations

import re
from html import unescape
from html.parser import HTMLParser

__all__ = ["clean_cell"]

_TAG = re.compile(r"</?[a-zA-Z][^>]*>")


class _CellParser(HTMLParser):
    """Collects paragraphs and link targets from the small HTML subset the sheet uses."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.paragraphs: list[list[str]] = [[]]
        self.links: list[str] = []
        self._href: str | None = None
        self._link_text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "p":
            self.paragraphs.append([])
        elif tag == "br":
            self.paragraphs[-1].append("\n")
        elif tag == "a":
            self._href = dict(attrs).get("href") or ""
            self._link_text = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "p":
            self.paragraphs.append([])
        elif tag == "a" and self._href is not None:
            text = "".join(self._link_text).strip()
            if self._href.startswith(("http://", "https://")):
                self.links.append(self._href)
                if self._href not in text:
                    self.paragraphs[-1].append(f" ({self._href})")
            self._href = None

    def handle_data(self, data: str) -> None:
        self.paragraphs[-1].append(data)
        if self._href is not None:
            self._link_text.append(data)


def clean_cell(text: str) -> tuple[str, tuple[str, ...]]:
    """Plain text (paragraphs joined by a blank line) and link URLs of one sheet cell.

    Cells without tags are returned as they are: the official wording, spaces included, is kept.
    """
    if not _TAG.search(text):
        return unescape(text).strip(), ()
    parser = _CellParser()
    parser.feed(text)
    parser.close()
    paragraphs = ["".join(p).strip() for p in parser.paragraphs]
    return "\n\n".join(p for p in paragraphs if p), tuple(dict.fromkeys(parser.links))
