"""Bilingual: data/bilingual.yaml (per entry: English translation, alternates, counter-examples, see-also,
what the answer gives) and data/out_of_scope.yaml (questions the sheet does not answer).

Both are trainer-edited YAML, read node by node so each problem names its line. Merging the records into
the entries (and the checks that need every entry, such as `see_also`) is bot/entries.py's job.
"""

from __future__ import annotations

import unicodedata
from pathlib import Path

import yaml

from .asks import ASK_KINDS
from .datafiles import check_text, scalar, string_list, yaml_nodes
from .errors import Problem

__all__ = ["BILINGUAL_FILE", "LIST_KEYS", "OUT_OF_SCOPE_FILE", "TRANSLATION_KEYS", "check_record",
           "load_out_of_scope", "load_translations"]

BILINGUAL_FILE = "bilingual.yaml"
OUT_OF_SCOPE_FILE = "out_of_scope.yaml"
TRANSLATION_KEYS = {"question_en", "answer_en", "alt_ja", "alt_en", "not_ja", "not_en", "see_also", "asks"}
#: Per-entry keys of bilingual.yaml that hold lists of text.
LIST_KEYS = ("alt_ja", "alt_en", "not_ja", "not_en", "see_also", "asks")


def load_translations(path: Path, problems: list[Problem]) -> dict[str, tuple[int, dict]]:
    """id -> (line, {question_en, answer_en, alt_ja, alt_en, not_ja, not_en, see_also, asks}) from the bilingual
    file."""
    if not path.is_file():
        problems.append(Problem(path, 1, "missing: it holds the English translation of every official entry"))
        return {}
    root = yaml_nodes(path, problems)
    if root is None:
        return {}
    entries = None
    if isinstance(root, yaml.MappingNode):
        entries = next((v for k, v in root.value if scalar(k) == "entries"), None)
    if not isinstance(entries, yaml.MappingNode):
        problems.append(Problem(path, 1, "expected a top-level `entries:` mapping of entry id -> translation"))
        return {}
    out: dict[str, tuple[int, dict]] = {}
    for key_node, value in entries.value:
        entry_id, line = scalar(key_node) or "", key_node.start_mark.line + 1
        if entry_id in out:
            problems.append(Problem(path, line, f"{entry_id} appears twice (first at line {out[entry_id][0]})"))
            continue
        if not isinstance(value, yaml.MappingNode):
            problems.append(Problem(path, line, f"{entry_id}: expected question_en, answer_en, alt_ja, alt_en"))
            continue
        record: dict = {"question_en": "", "answer_en": "", **dict.fromkeys(LIST_KEYS, ())}
        seen: set[str | None] = set()
        for k, v in value.value:
            name = scalar(k)
            if name in seen:  # YAML would keep the last silently: a trainer's list lost without a word
                problems.append(Problem(path, k.start_mark.line + 1, f"{entry_id}: {name!r} appears twice; "
                                        "merge the two into one"))
                continue
            seen.add(name)
            if name not in TRANSLATION_KEYS:
                problems.append(Problem(path, k.start_mark.line + 1, f"{entry_id}: unknown key {name!r}"))
            elif name in LIST_KEYS:
                record[name] = string_list(v, path, f"{entry_id}.{name}", problems)
                record[f"_{name}_lines"] = [n.start_mark.line + 1 for n in getattr(v, "value", ())
                                            if isinstance(n, yaml.ScalarNode) and n.value.strip()]
            elif scalar(v) is None:
                problems.append(Problem(path, v.start_mark.line + 1, f"{entry_id}.{name} must be text"))
            else:
                record[name] = v.value.strip()
                check_text(path, v.start_mark.line + 1, f"{entry_id}.{name}", v.value, problems)
        out[entry_id] = (line, record)
    return out


def check_record(entry_id: str, record: dict, path: Path, problems: list[Problem]) -> None:
    """Checks of one entry's record that need no other entry: counter-examples and `asks:` kinds."""
    _check_counter_examples(entry_id, record, path, problems)
    for kind, kind_line in zip(record["asks"], record.get("_asks_lines", []), strict=False):
        if kind not in ASK_KINDS:
            problems.append(Problem(path, kind_line, f"{entry_id}.asks: unknown kind {kind!r}; use "
                                    + ", ".join(ASK_KINDS)))


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


def load_out_of_scope(data_dir: Path, problems: list[Problem]) -> list[str]:
    """Anchor questions the sheet does not answer (optional file): `ja:` and `en:` lists of text."""
    path = data_dir / OUT_OF_SCOPE_FILE
    if not path.is_file():
        return []
    root = yaml_nodes(path, problems)
    if root is None:
        return []
    if not isinstance(root, yaml.MappingNode):
        problems.append(Problem(path, 1, "expected `ja:` and `en:` lists of questions"))
        return []
    anchors: list[str] = []
    for key, value in root.value:
        if scalar(key) not in ("ja", "en"):
            problems.append(Problem(path, key.start_mark.line + 1, f"unknown key {scalar(key)!r}: use ja or en"))
            continue
        anchors += string_list(value, path, scalar(key) or "", problems)
    return anchors
