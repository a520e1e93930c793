"""Labelled queries: the trainers' `{"q", "lang", "expect": [ids], "kind"}` JSON-lines files in data/eval/.

`kind` says what a query tests (see `KINDS`) so `faqbot eval` can report, say, near-domain false answers
apart from small talk; it is optional and defaults to "in" (with ids in `expect`) or "far" (without).
Kept apart from the search stack so `faqbot check` validates them without loading a model.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from .errors import DataError, Problem

#: in: an ordinary in-scope question; confusable: in scope, but close to another entry that does not answer it;
#: far: out of scope and unlike any entry (small talk, other hospital business); near: out of scope but shares
#: terms with an entry (asks what the sheet does not say).
KINDS = ("in", "confusable", "far", "near")
IN_SCOPE_KINDS = frozenset({"in", "confusable"})


@dataclass(frozen=True, slots=True)
class LabelledQuery:
    q: str
    lang: str
    expect: tuple[str, ...]  # empty: out of scope
    line: int
    kind: str = ""  # one of KINDS; "" = "in" with `expect`, "far" without

    @property
    def category(self) -> str:
        return self.kind or ("in" if self.expect else "far")


def read_queries(path: Path, known_ids: set[str] | None = None) -> list[LabelledQuery]:
    """Labelled queries from a JSON-lines file; every bad line is reported with its number."""
    problems: list[Problem] = []
    out: list[LabelledQuery] = []
    if not path.is_file():
        raise DataError([Problem(path, 1, "missing: labelled queries {\"q\", \"lang\", \"expect\": [ids]}")])
    for number, line in enumerate(path.read_bytes().split(b"\n"), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line.decode("utf-8"))
            q, lang, expect = row["q"], row.get("lang", ""), row["expect"]
            if not isinstance(q, str) or not q.strip() or not isinstance(expect, list):
                raise ValueError("`q` must be non-empty text and `expect` a list of entry ids")
            kind = row.get("kind") or ("in" if expect else "far")
            if kind not in KINDS:
                raise ValueError(f"`kind` {kind!r} is not one of {', '.join(KINDS)}")
            if (kind in IN_SCOPE_KINDS) != bool(expect):
                raise ValueError(f"kind {kind!r} needs " + ("ids in `expect`" if kind in IN_SCOPE_KINDS
                                                            else "an empty `expect` (out of scope)"))
        except (ValueError, KeyError, TypeError, UnicodeDecodeError) as err:
            problems.append(Problem(path, number, f"bad labelled query ({err}); expected "
                                    "{\"q\": \"...\", \"lang\": \"ja\", \"expect\": [\"qa-1\"]}"))
            continue
        unknown = [i for i in expect if known_ids is not None and i not in known_ids]
        if unknown:
            problems.append(Problem(path, number, f"unknown entry id(s) {unknown}"))
            continue
        out.append(LabelledQuery(q=q, lang=lang, expect=tuple(expect), line=number, kind=kind))
    if problems:
        raise DataError(problems)
    return out
