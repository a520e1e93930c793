"""Curate: the trainers' edits of data files — alternate questions, out-of-scope anchors, regressions.

`data/bilingual.yaml` and `data/out_of_scope.yaml` are written by people: their comments, quoting and
folded answers must survive a command's edit. ruamel.yaml's round trip keeps them; every write is
then checked to have only *added* lines (anything else is refused and the file left as it was) and
replaces the file atomically. An edit is refused, with the reason, when the id is unknown, the text
is already there (after normalisation: NFKC, case, spaces, trailing punctuation), or the question is
a labelled evaluation query (a test query copied into the data makes the test measure nothing; a
tuning query would bias the calibration). Each accepted fix can be kept as a regression query in
`data/eval/regressions.jsonl`, which `faqbot eval` and the test suite check, so it stays fixed.
A refused edit raises `BotError` saying why and what to do; the file is then unchanged.
"""

from __future__ import annotations

import difflib
import io
import json
import os
import re
import tempfile
from pathlib import Path

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError
from ruamel.yaml.scalarstring import DoubleQuotedScalarString

from . import yamlfile
from .entries import BILINGUAL_FILE, OUT_OF_SCOPE_FILE, TUNE_FILE, Entry, load_entries, load_out_of_scope
from .errors import BotError, DataError
from .queries import read_queries
from .text import LANGS, normalize

__all__ = ["LANGS", "REGRESSIONS_FILE", "TEST_FILE", "add_alternate", "add_out_of_scope", "add_regression",
           "labelled_queries", "text_key"]

TEST_FILE = "eval/test.jsonl"
REGRESSIONS_FILE = "eval/regressions.jsonl"
_TRAILING = re.compile(r"[\s?？!！。.、,，]+$")
_SPACES = re.compile(r"\s+")


def text_key(text: str) -> str:
    """What two questions share when they are "the same": NFKC, case, spaces and trailing punctuation ignored."""
    return _SPACES.sub("", _TRAILING.sub("", normalize(text).casefold()))


def labelled_queries(data_dir: Path) -> dict[str, tuple[Path, int]]:
    """text_key -> (file, line) of every labelled test and tuning query (missing files count as empty)."""
    out: dict[str, tuple[Path, int]] = {}
    for name in (TEST_FILE, TUNE_FILE):
        path = data_dir / name
        if not path.is_file():
            continue
        for q in read_queries(path):
            out.setdefault(text_key(q.q), (path, q.line))
    return out


def _yaml() -> YAML:
    yaml = YAML()  # round trip: comments, quotes, folded scalars and key order are kept
    yaml.width = 4096  # never re-wrap a long line
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.preserve_quotes = True
    return yaml


def _load(path: Path) -> tuple[str, object]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise BotError(f"{path} cannot be read ({err}); run `faqbot check`") from err
    try:
        yamlfile.compose(path, text)  # bounded first: ruamel would expand an alias bomb
    except DataError as err:
        raise BotError(f"{err.problems[0]}; fix it (`faqbot check`) before adding to it") from err
    try:
        return text, _yaml().load(text)
    except YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise BotError(f"{where}: not valid YAML ({getattr(err, 'problem', err)}); fix it (`faqbot check`) "
                          "before adding to it") from err


def _write_additions(path: Path, before: str, data: object) -> None:
    """Dump `data` to `path` only if the result differs from `before` by added lines alone."""
    buffer = io.StringIO()
    _yaml().dump(data, buffer)
    after = buffer.getvalue()
    changed = [line for line in difflib.ndiff(before.splitlines(), after.splitlines())
               if line.startswith(("- ", "+ "))]
    if any(line.startswith("- ") for line in changed) or not changed:
        raise BotError(f"{path}: the edit would rewrite existing lines, so it was not saved; add the text by "
                          "hand in an editor")
    _replace(path, after)


def _replace(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, path.stat().st_mode & 0o777 if path.exists() else 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _clean(question: str, lang: str) -> str:
    if lang not in LANGS:
        raise BotError(f"language {lang!r} is not one of {', '.join(LANGS)}")
    text = normalize(question) if isinstance(question, str) else ""
    if not text_key(text):
        raise BotError("the question is empty")
    if len(text) > 500:
        raise BotError(f"the question is {len(text)} characters long; alternates are short phrasings (≤ 500)")
    return text


def _refuse_labelled(data_dir: Path, text: str) -> None:
    where = labelled_queries(data_dir).get(text_key(text))
    if where:
        path, line = where
        raise BotError(f"{text!r} is a labelled evaluation query ({path}:{line}); adding it to the data would "
                          "leak the answer into the evaluation. Add a different phrasing")


def _owners(entries: list[Entry]) -> dict[str, str]:
    """text_key -> entry id for every question-like text of every entry."""
    out: dict[str, str] = {}
    for e in entries:
        for text in (e.question, e.question_en, *e.alt_ja, *e.alt_en):
            if text:
                out.setdefault(text_key(text), e.id)
    return out


def _valid_entries(data_dir: Path) -> list[Entry]:
    """The entries, or a refusal: a curated edit is only made on data that passes `faqbot check`."""
    try:
        return load_entries(data_dir)
    except DataError as err:
        raise BotError(f"the data has problems; fix them first:\n{err}") from err


def add_alternate(data_dir: Path, entry_id: str, lang: str, question: str) -> str:
    """Append `question` to `alt_<lang>` of `entry_id` in data/bilingual.yaml; returns the text added."""
    data_dir = Path(data_dir)
    text = _clean(question, lang)
    entries = _valid_entries(data_dir)
    ids = {e.id for e in entries}
    if entry_id not in ids:
        close = difflib.get_close_matches(entry_id, sorted(ids), n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else " (`faqbot entries` lists them)"
        raise BotError(f"unknown entry id {entry_id!r}{hint}")
    owner = _owners(entries).get(text_key(text))
    if owner:
        raise BotError(f"{text!r} is already a question of {owner}" + ("" if owner == entry_id else
                          f"; to move it, delete it from {owner} in {data_dir / BILINGUAL_FILE} first"))
    target = next(e for e in entries if e.id == entry_id)
    for field in ("not_ja", "not_en"):  # counter-examples: questions near the entry that it does not answer
        if text_key(text) in {text_key(t) for t in getattr(target, field, ())}:
            raise BotError(f"{text!r} is a counter-example ({field}) of {entry_id}: the entry does not answer it; "
                           f"remove it from {entry_id}.{field} in {data_dir / BILINGUAL_FILE} first if it does")
    anchors = {text_key(a) for a in load_out_of_scope(data_dir, [])}
    if text_key(text) in anchors:
        raise BotError(f"{text!r} is an out-of-scope anchor in {data_dir / OUT_OF_SCOPE_FILE}; remove it "
                          "there first if an entry does answer it")
    _refuse_labelled(data_dir, text)
    path = data_dir / BILINGUAL_FILE
    before, data = _load(path)
    record = data["entries"].get(entry_id) if isinstance(data, CommentedMap) else None
    if not isinstance(record, CommentedMap):
        raise BotError(f"{path}: {entry_id} has no translation block to add to; add `{entry_id}:` with "
                          "question_en/answer_en first")
    key = f"alt_{lang}"
    if not isinstance(record.get(key), CommentedSeq):
        if key in record:
            raise BotError(f"{path}: {entry_id}.{key} is not a list; fix it by hand")
        record[key] = CommentedSeq()
    record[key].append(DoubleQuotedScalarString(text))
    _write_additions(path, before, data)
    return text


def add_out_of_scope(data_dir: Path, lang: str, question: str) -> str:
    """Append `question` to the `lang` list of data/out_of_scope.yaml; returns the text added."""
    data_dir = Path(data_dir)
    text = _clean(question, lang)
    entries = _valid_entries(data_dir)
    owner = _owners(entries).get(text_key(text))
    if owner:
        raise BotError(f"{text!r} is a question of {owner}: an entry answers it, so it is not out of scope")
    if text_key(text) in {text_key(a) for a in load_out_of_scope(data_dir, [])}:
        raise BotError(f"{text!r} is already an out-of-scope anchor")
    _refuse_labelled(data_dir, text)
    path = data_dir / OUT_OF_SCOPE_FILE
    if not path.exists():
        _replace(path, "# Questions the official sheet does not answer (see README, Adding entries).\nja: []\nen: []\n")
    before, data = _load(path)
    if not isinstance(data, CommentedMap):
        raise BotError(f"{path}: expected `ja:` and `en:` lists of questions")
    if not isinstance(data.get(lang), CommentedSeq):
        if data.get(lang) is not None:
            raise BotError(f"{path}: `{lang}:` is not a list; fix it by hand")
        data[lang] = CommentedSeq()
    data[lang].append(DoubleQuotedScalarString(text))
    _write_additions(path, before, data)
    return text


def add_regression(data_dir: Path, question: str, lang: str, expect: list[str]) -> bool:
    """Append `{"q", "lang", "expect"}` to data/eval/regressions.jsonl; False when the question is already there."""
    path = Path(data_dir) / REGRESSIONS_FILE
    key = text_key(question)
    if path.is_file() and any(text_key(q.q) == key for q in read_queries(path)):
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps({"q": normalize(question), "lang": lang, "expect": list(expect)}, ensure_ascii=False)
    with path.open("a", encoding="utf-8", newline="\n") as handle:
        if handle.tell() and not path.read_bytes().endswith(b"\n"):
            handle.write("\n")
        handle.write(line + "\n")
    return True
