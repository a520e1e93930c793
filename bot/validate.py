"""Validate: the trainers' data findings `faqbot check` adds to the file-format checks of `entries`.

Like `rasa data validate`, it looks across files for mistakes each file alone cannot show:

- an alternate question identical (after normalisation, see `curate.text_key`) to a labelled test
  query: the test then measures a copy, not the bot (a leak);
- the same alternate (or an entry's own question) under two entries: the two compete for it;
- an alternate equal to an out-of-scope anchor: the entry and the anchor cancel each other out.

Each finding is a `Problem` at the alternate's line in data/bilingual.yaml. A file that does not
parse is skipped here: its syntax error is reported once by the loaders, with no cascade.
"""

from __future__ import annotations

from pathlib import Path

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError

from . import yamlfile
from .curate import TEST_FILE, text_key
from .entries import BILINGUAL_FILE, OUT_OF_SCOPE_FILE, Entry
from .errors import DataError, Problem
from .queries import read_queries

__all__ = ["findings"]


def _load(path: Path) -> CommentedMap | None:
    try:
        text = path.read_text(encoding="utf-8")
        yamlfile.compose(path, text)  # bounded first: ruamel would expand an alias bomb
        data = YAML().load(text)
    except (OSError, UnicodeDecodeError, YAMLError, DataError):
        return None  # reported by the loaders
    return data if isinstance(data, CommentedMap) else None


def _alternates(path: Path) -> list[tuple[str, str, str, int]]:
    """(entry id, field, text, line) of every alternate question in the bilingual file."""
    data = _load(path)
    entries = data.get("entries") if data is not None else None
    out = []
    if not isinstance(entries, CommentedMap):
        return out
    for entry_id, record in entries.items():
        if not isinstance(record, CommentedMap):
            continue
        for field in ("alt_ja", "alt_en"):
            items = record.get(field)
            if isinstance(items, CommentedSeq):
                out += [(str(entry_id), field, text, items.lc.item(i)[0] + 1)
                        for i, text in enumerate(items) if isinstance(text, str)]
    return out


def _anchors(path: Path) -> dict[str, int]:
    """text_key -> line of every out-of-scope anchor."""
    data = _load(path)
    out: dict[str, int] = {}
    for lang in ("ja", "en"):
        items = data.get(lang) if data is not None else None
        if isinstance(items, CommentedSeq):
            for i, text in enumerate(items):
                if isinstance(text, str):
                    out.setdefault(text_key(text), items.lc.item(i)[0] + 1)
    return out


def findings(data_dir: Path, entries: list[Entry]) -> list[Problem]:
    """Leaks, alternates shared by two entries, alternates equal to anchors; one Problem each."""
    data_dir = Path(data_dir)
    path = data_dir / BILINGUAL_FILE
    problems: list[Problem] = []
    tests: dict[str, int] = {}
    try:
        for q in read_queries(data_dir / TEST_FILE) if (data_dir / TEST_FILE).is_file() else []:
            tests.setdefault(text_key(q.q), q.line)
    except DataError:
        pass  # `check` reports the bad lines of the query file itself
    anchors = _anchors(data_dir / OUT_OF_SCOPE_FILE)
    # an entry's official question and its translation belong to it too
    owners: dict[str, tuple[str, str]] = {}
    for e in entries:
        for field, text in (("question", e.question), ("question_en", e.question_en)):
            if text:
                owners.setdefault(text_key(text), (e.id, f"its {field}"))
    for entry_id, field, text, line in _alternates(path):
        key = text_key(text)
        where = f"{entry_id}.{field} {text!r}"
        if key in tests:
            problems.append(Problem(path, line, f"{where} is the labelled test query at {data_dir / TEST_FILE}:"
                                    f"{tests[key]} (a leak: the test would measure a copy); rephrase or remove it"))
        owner = owners.get(key)
        if owner and owner[0] != entry_id:
            problems.append(Problem(path, line, f"{where} is also under {owner[0]} ({owner[1]}); keep it under "
                                    "the one entry that answers it"))
        elif owner is None:
            owners[key] = (entry_id, f"{field} at line {line}")
        if key in anchors:
            problems.append(Problem(path, line, f"{where} is also an out-of-scope anchor at "
                                    f"{data_dir / OUT_OF_SCOPE_FILE}:{anchors[key]}; remove one of them"))
    return problems
