"""Entries: read the FAQ sources and the bilingual file, validate them, give each entry a stable id.

The official Japanese text is the authority and is never rewritten: HTML in a cell is turned into
plain paragraphs (and its links kept as URLs) without changing a word. Every problem is collected
with its `file:line` and reported together (`DataError`); nothing malformed is dropped silently.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
import unicodedata
from dataclasses import asdict, dataclass, field
from html import unescape
from html.parser import HTMLParser
from pathlib import Path

import yaml

from . import yamlfile
from .asks import ASK_KINDS
from .errors import DataError, Problem

SOURCES_FILE = "sources.yaml"
BILINGUAL_FILE = "bilingual.yaml"
TUNE_FILE = "eval/tune.jsonl"
OUT_OF_SCOPE_FILE = "out_of_scope.yaml"

#: Known section names of the sheet: id prefix and English name. Rows before the first section
#: line belong to the main Q&A section.
SECTIONS = {
    "質疑応答": ("qa", "Q&A"),
    "資料・アーカイブ": ("archive", "Materials and archive"),
    "その他": ("other", "Other"),
}
MAIN_SECTION = "質疑応答"

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_TAG = re.compile(r"</?[a-zA-Z][^>]*>")
_TRANSLATION_KEYS = {"question_en", "answer_en", "alt_ja", "alt_en", "not_ja", "not_en", "see_also", "asks"}
#: Per-entry keys of bilingual.yaml that hold lists of text.
_LIST_KEYS = ("alt_ja", "alt_en", "not_ja", "not_en", "see_also", "asks")


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
        for key in (*_LIST_KEYS, "links"):
            data[key] = list(getattr(self, key))
        return data


# --------------------------------------------------------------------------- HTML cells


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


# --------------------------------------------------------------------------- reading files


def _read_lines(path: Path, problems: list[Problem]) -> list[str]:
    """Lines of a UTF-8 text file; every undecodable line is reported, not guessed at."""
    try:
        raw = path.read_bytes()
    except OSError as err:
        problems.append(Problem(path, 1, f"cannot be read ({err.strerror}); check that it exists and is readable"))
        return []
    lines: list[str] = []
    for number, chunk in enumerate(raw.split(b"\n"), start=1):
        try:
            line = chunk.decode("utf-8")
        except UnicodeDecodeError as err:
            problems.append(
                Problem(path, number, f"bytes that are not UTF-8 at column {err.start + 1}; save the file as UTF-8")
            )
            line = ""
        lines.append(line.removeprefix("\ufeff") if number == 1 else line)
    return [line.removesuffix("\r") for line in lines]


def _check_text(path: Path, line: int, what: str, text: str, problems: list[Problem]) -> None:
    if _CONTROL.search(text):
        problems.append(Problem(path, line, f"{what} contains a control character; remove it"))


def _is_number(cell: str) -> bool:
    return unicodedata.normalize("NFKC", cell.strip()).isdigit()


def parse_sheet(path: Path, prefix: str, problems: list[Problem], broken: set[str]) -> list[Entry]:
    """Entries of a sheet in the official format (tab-separated number, question, answer; section lines).

    Ids of rows that could not be read go into `broken`, so their translations are not reported again.
    """
    entries: list[Entry] = []
    section = MAIN_SECTION
    extra_sections: dict[str, str] = {}
    for line_no, line in enumerate(_read_lines(path, problems), start=1):
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
        _check_text(path, line_no, "question", question, problems)
        _check_text(path, line_no, "answer", answer, problems)
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
    text = "\n".join(_read_lines(path, problems))
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
        _check_text(path, line_no, "question", question, problems)
        _check_text(path, line_no, "answer", answer, problems)
        number = len(entries) + 1
        entries.append(
            Entry(
                id=f"{name}-{number}", section=name, section_en=name, number=number, question=question,
                answer=answer, source=path.name, line=line_no, links=tuple(dict.fromkeys(q_links + links)),
            )
        )
    return entries


# --------------------------------------------------------------------------- sources and translations


@dataclass(frozen=True, slots=True)
class Source:
    """One FAQ file listed in data/sources.yaml."""

    file: str
    name: str
    format: str  # "sheet" | "table"
    official: bool  # official source: ids without prefix, English translation required
    line: int
    title: str = ""  # the document's title as staff know it (Japanese)
    title_en: str = ""
    publisher: str = ""
    date: str = ""
    url: str = ""

    def describe(self) -> dict[str, str]:
        """The Entry fields that carry this source's description."""
        return {"source_title": self.title, "source_title_en": self.title_en, "source_publisher": self.publisher,
                "source_date": self.date, "source_url": self.url}


_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


def _yaml_nodes(path: Path, problems: list[Problem]) -> yaml.Node | None:
    """The node tree of a YAML data file, size-bounded (bot/yamlfile.py); None after reporting why not."""
    try:
        yamlfile.check_size(path)
        return yamlfile.compose(path, "\n".join(_read_lines(path, problems)))
    except DataError as err:
        problems += err.problems
        return None


def _scalar(node: yaml.Node) -> str | None:
    return node.value if isinstance(node, yaml.ScalarNode) else None


def load_sources(data_dir: Path, problems: list[Problem]) -> list[Source]:
    """The FAQ files to load, from data/sources.yaml."""
    path = data_dir / SOURCES_FILE
    if not path.is_file():
        problems.append(Problem(path, 1, "missing: it lists the FAQ files to load (see README, 'Adding entries')"))
        return []
    root = _yaml_nodes(path, problems)
    if root is None:
        return []
    items = None
    if isinstance(root, yaml.MappingNode):
        items = next((v for k, v in root.value if _scalar(k) == "sources"), None)
    if not isinstance(items, yaml.SequenceNode):
        problems.append(Problem(path, 1, "expected a top-level `sources:` list"))
        return []
    sources: list[Source] = []
    for item in items.value:
        line = item.start_mark.line + 1
        fields = {_scalar(k): _scalar(v) for k, v in item.value} if isinstance(item, yaml.MappingNode) else {}
        titles = _titles(item, path, problems) if isinstance(item, yaml.MappingNode) else {}
        file, name, fmt = fields.get("file"), fields.get("name"), fields.get("format", "sheet")
        official = (fields.get("official") or "false").lower() == "true"
        if not file or not name:
            problems.append(Problem(path, line, "each source needs `file:` and `name:`"))
            continue
        if not _NAME.match(name) or name in {key for key, _ in SECTIONS.values()}:
            problems.append(
                Problem(path, line, f"source name {name!r}: use lower-case letters, digits and _, "
                        "not qa/archive/other (ids are prefixed with it)")
            )
            continue
        if fmt not in ("sheet", "table"):
            problems.append(
                Problem(path, line, f"format {fmt!r}: use `sheet` (the official layout) or `table` (CSV/TSV)")
            )
            continue
        if not (data_dir / file).is_file():
            problems.append(Problem(path, line, f"source file {data_dir / file} does not exist"))
            continue
        url = fields.get("url") or ""
        if url and not url.startswith(("https://", "http://")):
            problems.append(Problem(path, line, f"url {url!r}: give the document's web address (http:// or https://)"))
            continue
        sources.append(Source(file=file, name=name, format=fmt, official=official, line=line,
                              title=titles.get("ja", ""), title_en=titles.get("en", ""),
                              publisher=fields.get("publisher") or "", date=fields.get("date") or "", url=url))
    if sum(s.official for s in sources) > 1:
        problems.append(Problem(path, 1, "only one source can be `official: true`"))
    names = [s.name for s in sources]
    for s in sources:
        if names.count(s.name) > 1:
            problems.append(Problem(path, s.line, f"source name {s.name!r} is used twice"))
    return sources


def _titles(item: yaml.MappingNode, path: Path, problems: list[Problem]) -> dict[str, str]:
    """`title:` of a source: one string, or `ja:` / `en:` strings."""
    node = next((v for k, v in item.value if _scalar(k) == "title"), None)
    if node is None:
        return {}
    if isinstance(node, yaml.ScalarNode):
        return {"ja": node.value.strip(), "en": node.value.strip()}
    if isinstance(node, yaml.MappingNode):
        titles = {_scalar(k): _scalar(v) for k, v in node.value}
        if set(titles) <= {"ja", "en"} and all(isinstance(v, str) for v in titles.values()):
            return {k: v.strip() for k, v in titles.items()}
    problems.append(Problem(path, node.start_mark.line + 1, "title: give one text, or `ja:` and `en:` texts"))
    return {}


def _string_list(node: yaml.Node, path: Path, what: str, problems: list[Problem]) -> tuple[str, ...]:
    if not isinstance(node, yaml.SequenceNode) or not all(isinstance(n, yaml.ScalarNode) for n in node.value):
        problems.append(Problem(path, node.start_mark.line + 1, f"{what} must be a list of strings"))
        return ()
    out = tuple(n.value.strip() for n in node.value if n.value.strip())
    for n in node.value:
        _check_text(path, n.start_mark.line + 1, what, n.value, problems)
    return out


def load_translations(path: Path, problems: list[Problem]) -> dict[str, tuple[int, dict]]:
    """id -> (line, {question_en, answer_en, alt_ja, alt_en, not_ja, not_en, see_also, asks}) from the bilingual
    file."""
    if not path.is_file():
        problems.append(Problem(path, 1, "missing: it holds the English translation of every official entry"))
        return {}
    root = _yaml_nodes(path, problems)
    if root is None:
        return {}
    entries = None
    if isinstance(root, yaml.MappingNode):
        entries = next((v for k, v in root.value if _scalar(k) == "entries"), None)
    if not isinstance(entries, yaml.MappingNode):
        problems.append(Problem(path, 1, "expected a top-level `entries:` mapping of entry id -> translation"))
        return {}
    out: dict[str, tuple[int, dict]] = {}
    for key_node, value in entries.value:
        entry_id, line = _scalar(key_node) or "", key_node.start_mark.line + 1
        if entry_id in out:
            problems.append(Problem(path, line, f"{entry_id} appears twice (first at line {out[entry_id][0]})"))
            continue
        if not isinstance(value, yaml.MappingNode):
            problems.append(Problem(path, line, f"{entry_id}: expected question_en, answer_en, alt_ja, alt_en"))
            continue
        record: dict = {"question_en": "", "answer_en": "", **dict.fromkeys(_LIST_KEYS, ())}
        for k, v in value.value:
            name = _scalar(k)
            if name not in _TRANSLATION_KEYS:
                problems.append(Problem(path, k.start_mark.line + 1, f"{entry_id}: unknown key {name!r}"))
            elif name in _LIST_KEYS:
                record[name] = _string_list(v, path, f"{entry_id}.{name}", problems)
                record[f"_{name}_lines"] = [n.start_mark.line + 1 for n in getattr(v, "value", ())
                                            if isinstance(n, yaml.ScalarNode) and n.value.strip()]
            elif _scalar(v) is None:
                problems.append(Problem(path, v.start_mark.line + 1, f"{entry_id}.{name} must be text"))
            else:
                record[name] = v.value.strip()
                _check_text(path, v.start_mark.line + 1, f"{entry_id}.{name}", v.value, problems)
        out[entry_id] = (line, record)
    return out


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
        _check_counter_examples(e.id, t, path, problems)
        for kind, kind_line in zip(t["asks"], t.get("_asks_lines", []), strict=False):
            if kind not in ASK_KINDS:
                problems.append(Problem(path, kind_line, f"{e.id}.asks: unknown kind {kind!r}; use "
                                        + ", ".join(ASK_KINDS)))
        fields = {k: v for k, v in t.items() if not k.startswith("_")}
        merged.append(
            Entry(**{**{k: getattr(e, k) for k in e.__dataclass_fields__}, **fields, **described})  # type: ignore[arg-type]
        )
    _check_see_also(merged, translations, path, problems)
    return merged


def _folded(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold().strip()


def _check_counter_examples(entry_id: str, record: dict, path: Path, problems: list[Problem]) -> None:
    """A counter-example (`not_ja`/`not_en`) must not also be an alternate question of the same entry."""
    alternates = {_folded(t) for t in (*record["alt_ja"], *record["alt_en"])}
    for key in ("not_ja", "not_en"):
        for text, line in zip(record[key], record.get(f"_{key}_lines", []), strict=False):
            if _folded(text) in alternates:
                problems.append(Problem(path, line,
                                        f"{entry_id}.{key}: {text!r} is also an alternate question of {entry_id}; "
                                        "an entry cannot both answer and not answer it — remove one"))


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


def load_out_of_scope(data_dir: Path, problems: list[Problem]) -> list[str]:
    """Anchor questions the sheet does not answer (optional file): `ja:` and `en:` lists of text."""
    path = data_dir / OUT_OF_SCOPE_FILE
    if not path.is_file():
        return []
    root = _yaml_nodes(path, problems)
    if root is None:
        return []
    if not isinstance(root, yaml.MappingNode):
        problems.append(Problem(path, 1, "expected `ja:` and `en:` lists of questions"))
        return []
    anchors: list[str] = []
    for key, value in root.value:
        if _scalar(key) not in ("ja", "en"):
            problems.append(Problem(path, key.start_mark.line + 1, f"unknown key {_scalar(key)!r}: use ja or en"))
            continue
        anchors += _string_list(value, path, _scalar(key) or "", problems)
    return anchors


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
