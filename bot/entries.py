"""Entries: read the FAQ files listed in data/sources.yaml, merge bilingual.yaml into them, give each a stable id.

The official Japanese text is the authority and is never rewritten: HTML in a cell is turned into
plain paragraphs (and its links kept as URLs) without changing a word. Every problem is collected
with its `file:line` and reported together (`DataError`); nothing malformed is dropped silently.
"""

from __future__ import annotations

import csv
import hashlib
import io
import unicodedata
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .bilingual import (
    BILINGUAL_FILE,
    LIST_KEYS,
    OUT_OF_SCOPE_FILE,
    check_record,
    load_out_of_scope,
    load_translations,
)
from .cells import clean_cell
from .datafiles import check_text, read_lines
from .errors import DataError, Problem
from .sources import MAIN_SECTION, SECTIONS, SOURCES_FILE, Source, load_sources

# the data files' names and readers live in bot/bilingual.py, bot/sources.py and bot/cells.py; importers use them
# from here too
__all__ = [
    "BILINGUAL_FILE", "MAIN_SECTION", "OUT_OF_SCOPE_FILE", "SECTIONS", "SOURCES_FILE", "TUNE_FILE", "Entry", "Source",
    "clean_cell", "collect", "data_fingerprint", "load_entries", "load_out_of_scope", "load_sources",
    "load_translations", "parse_sheet", "parse_table",
]

TUNE_FILE = "eval/tune.jsonl"


@dataclass(frozen=True, slots=True)
class Entry:
    """One curated Q&A pair: the official Japanese text plus its English translation and alternates."""

    id: str
    section: str
    section_en: str
    number: int
    question: str
    answer: str  # official Japanese, plain text, paragraphs separated by a blank line; "" when none
    source: str  # file name inside data/
    line: int  # 1-based line of the row in that file
    question_en: str = ""
    answer_en: str = ""
    alt_ja: tuple[str, ...] = ()
    alt_en: tuple[str, ...] = ()
    links: tuple[str, ...] = field(default=())  # URLs the official answer links to
    # questions that look like this entry but that it does not answer (counter-examples, per language)
    not_ja: tuple[str, ...] = ()
    not_en: tuple[str, ...] = ()
    see_also: tuple[str, ...] = ()  # ids of answered entries that meet the same need (entries without an answer)
    asks: tuple[str, ...] = ()  # kinds of information the official answer gives (asks.ASK_KINDS); () = not said
    # what a person needs to recognise the source document (from data/sources.yaml); "" when not given
    source_title: str = ""
    source_title_en: str = ""
    source_publisher: str = ""
    source_date: str = ""
    source_url: str = ""

    @property
    def has_answer(self) -> bool:
        return bool(self.answer)

    def to_json(self) -> dict:
        """The record `faqbot entries --json` prints; other tools read these names."""
        data = asdict(self)
        data["has_answer"] = self.has_answer
        for key in (*LIST_KEYS, "links"):
            data[key] = list(getattr(self, key))
        return data


# --------------------------------------------------------------------------- reading files
def _is_number(cell: str) -> bool:
    return unicodedata.normalize("NFKC", cell.strip()).isdigit()


def parse_sheet(path: Path, prefix: str, problems: list[Problem], broken: set[str]) -> list[Entry]:
    """Entries of a sheet in the official format (tab-separated number, question, answer; section lines).

    Ids of rows that could not be read go into `broken`, so their translations are not reported again.
    """
    entries: list[Entry] = []
    section = MAIN_SECTION
    extra_sections: dict[str, str] = {}
    for line_no, line in enumerate(read_lines(path, problems), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        cols = line.split("\t")
        first = cols[0].strip()
        if not _is_number(first):
            if not first:
                problems.append(Problem(path, line_no, "row has no number in the first column"))
            elif any(c.strip() for c in cols[1:]):
                problems.append(
                    Problem(path, line_no, f"first column {first[:20]!r} is not a number, but the row has text "
                            "in other columns; a section line has only its name")
                )
            else:
                section = first
            continue
        if section in SECTIONS:
            key, section_en = SECTIONS[section]
        else:
            key = extra_sections.setdefault(section, f"s{len(extra_sections) + 1}")
            section_en = section
        number = int(unicodedata.normalize("NFKC", first))
        entry_id = f"{prefix}{key}-{number}"
        if len(cols) != 3:
            problems.append(
                Problem(path, line_no,
                        f"expected 3 tab-separated columns (number, question, answer), found {len(cols)}")
            )
            broken.add(entry_id)
            continue
        question, q_links = clean_cell(cols[1])
        answer, links = clean_cell(cols[2])
        if not question:
            problems.append(Problem(path, line_no, "empty question"))
            broken.add(entry_id)
            continue
        check_text(path, line_no, "question", question, problems)
        check_text(path, line_no, "answer", answer, problems)
        entries.append(
            Entry(
                id=entry_id, section=section, section_en=section_en, number=number,
                question=question, answer=answer, source=path.name, line=line_no,
                links=tuple(dict.fromkeys(q_links + links)),
            )
        )
    return entries


def _csv_rows(reader, path: Path, problems: list[Problem]):  # noqa: ANN001, ANN202 - a csv.reader in, its rows out
    """The rows of `reader`; a malformed row (stray carriage return, huge field) ends the file with one problem."""
    try:
        yield from reader
    except csv.Error as err:
        problems.append(Problem(path, max(reader.line_num, 1), f"not valid CSV ({err}); put text containing line "
                                "breaks, quotes or the delimiter in double quotes"))


def parse_table(path: Path, name: str, problems: list[Problem]) -> list[Entry]:
    """Entries of a plain CSV/TSV of question,answer (an optional header row is skipped)."""
    text = "\n".join(read_lines(path, problems))
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    entries: list[Entry] = []
    start = 1
    for row in _csv_rows(reader, path, problems):
        line_no, start = start, reader.line_num + 1
        if not any(cell.strip() for cell in row):
            continue
        if not entries and [c.strip().lower() for c in row] in (["question", "answer"], ["質問", "回答"]):
            continue
        if len(row) != 2:
            problems.append(Problem(path, line_no, f"expected 2 columns (question, answer), found {len(row)}"))
            continue
        question, q_links = clean_cell(row[0])
        answer, links = clean_cell(row[1])
        if not question:
            problems.append(Problem(path, line_no, "empty question"))
            continue
        check_text(path, line_no, "question", question, problems)
        check_text(path, line_no, "answer", answer, problems)
        number = len(entries) + 1
        entries.append(
            Entry(
                id=f"{name}-{number}", section=name, section_en=name, number=number, question=question,
                answer=answer, source=path.name, line=line_no, links=tuple(dict.fromkeys(q_links + links)),
            )
        )
    return entries

# --------------------------------------------------------------------------- merging the bilingual file


def _merge(entries: list[Entry], sources: dict[str, Source], data_dir: Path,
           translations: dict[str, tuple[int, dict]], problems: list[Problem], broken: set[str]) -> list[Entry]:
    path = data_dir / BILINGUAL_FILE
    by_id = {e.id: e for e in entries}
    for entry_id, (line, _) in translations.items():
        if entry_id not in by_id and entry_id not in broken:
            problems.append(Problem(path, line, f"unknown entry id {entry_id!r}: no source row has this id"))
    merged = []
    for e in entries:
        line, t = translations.get(e.id, (0, None))
        official = sources[e.source].official
        described = sources[e.source].describe()
        if t is None:
            if official:
                problems.append(Problem(data_dir / e.source, e.line, f"{e.id} has no English translation in {path}"))
            merged.append(Entry(**{**{k: getattr(e, k) for k in e.__dataclass_fields__}, **described}))
            continue
        if not t["question_en"]:
            problems.append(Problem(path, line, f"{e.id}: question_en is empty"))
        if e.has_answer and official and not t["answer_en"]:
            problems.append(Problem(path, line, f"{e.id}: answer_en is empty but the entry has an official answer"))
        if not e.has_answer and t["answer_en"]:
            problems.append(
                Problem(path, line, f"{e.id}: answer_en must be empty: the entry has no official answer to translate")
            )
        check_record(e.id, t, path, problems)
        fields = {k: v for k, v in t.items() if not k.startswith("_")}
        merged.append(
            Entry(**{**{k: getattr(e, k) for k in e.__dataclass_fields__}, **fields, **described})  # type: ignore[arg-type]
        )
    _check_see_also(merged, translations, path, problems)
    return merged

def _check_see_also(entries: list[Entry], translations: dict[str, tuple[int, dict]], path: Path,
                    problems: list[Problem]) -> None:
    """`see_also` names other entries that exist and have an official answer to show instead."""
    by_id = {e.id: e for e in entries}
    for e in entries:
        lines = translations.get(e.id, (0, {}))[1].get("_see_also_lines", [])
        for target, line in zip(e.see_also, lines, strict=False):
            if target == e.id:
                problems.append(Problem(path, line, f"{e.id}.see_also names {e.id} itself; name other entries"))
            elif target not in by_id:
                problems.append(Problem(path, line, f"{e.id}.see_also: unknown entry id {target!r}"))
            elif not by_id[target].has_answer:
                problems.append(Problem(path, line, f"{e.id}.see_also: {target} has no official answer to show; "
                                        "name an entry that has one"))

def collect(data_dir: Path) -> tuple[list[Entry], list[Problem]]:
    """All entries and all problems found in data/ (no exception: `faqbot check` lists them)."""
    problems: list[Problem] = []
    sources = load_sources(data_dir, problems)
    if not sources and problems:  # no source list: its problem alone, not "unknown entry id" per translation
        return [], problems
    entries: list[Entry] = []
    broken: set[str] = set()
    for src in sources:
        path = data_dir / src.file
        prefix = "" if src.official else f"{src.name}-"
        if src.format == "sheet":
            entries += parse_sheet(path, prefix, problems, broken)
        else:
            entries += parse_table(path, src.name, problems)
    seen: dict[str, Entry] = {}
    for e in entries:
        if e.id in seen:
            first = seen[e.id]
            problems.append(
                Problem(data_dir / e.source, e.line, f"duplicate id {e.id} (also {first.source}:{first.line})")
            )
        else:
            seen[e.id] = e
    before = len(problems)
    translations = load_translations(data_dir / BILINGUAL_FILE, problems)
    if translations or len(problems) == before:
        merged = _merge(list(seen.values()), {s.file: s for s in sources}, data_dir, translations, problems, broken)
    else:  # the bilingual file could not be read: that one problem, not one "no translation" per entry
        merged = list(seen.values())
    load_out_of_scope(data_dir, problems)
    return merged, problems


def load_entries(data_dir: Path) -> list[Entry]:
    """Validated entries, in source order; raises `DataError` listing every problem."""
    entries, problems = collect(data_dir)
    if problems:
        raise DataError(problems)
    if not entries:
        raise DataError([Problem(data_dir / SOURCES_FILE, 1, "no entries: list at least one FAQ file")])
    return entries


def data_fingerprint(data_dir: Path) -> str:
    """sha256 over every file the index depends on, so a changed file makes the index stale."""
    digest = hashlib.sha256()
    problems: list[Problem] = []
    files = [SOURCES_FILE, BILINGUAL_FILE, TUNE_FILE, OUT_OF_SCOPE_FILE]
    files += [s.file for s in load_sources(data_dir, problems)]
    for name in files:
        path = data_dir / name
        digest.update(name.encode() + b"\0")
        try:
            digest.update(path.read_bytes() if path.is_file() else b"<missing>")
        except OSError as err:
            raise DataError([Problem(path, 1, f"cannot be read ({err.strerror})")]) from err
    return digest.hexdigest()
