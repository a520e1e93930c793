"""Sources: data/sources.yaml, the list of FAQ files to load, each with how to parse it and how to cite it.

One source may be `official: true` (the government sheet: ids without prefix, an English translation
required); the others are a hospital's own FAQ files, whose ids are prefixed with the source's name.
The title, publisher, date and URL given here become each entry's citation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from .datafiles import scalar, yaml_nodes
from .errors import Problem

__all__ = ["MAIN_SECTION", "SECTIONS", "SOURCES_FILE", "Source", "load_sources"]

SOURCES_FILE = "sources.yaml"

#: Known section names of the sheet: id prefix and English name. Rows before the first section
#: line belong to the main Q&A section.
SECTIONS = {
    "質疑応答": ("qa", "Q&A"),
    "資料・アーカイブ": ("archive", "Materials and archive"),
    "その他": ("other", "Other"),
}
MAIN_SECTION = "質疑応答"


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


def load_sources(data_dir: Path, problems: list[Problem]) -> list[Source]:
    """The FAQ files to load, from data/sources.yaml."""
    path = data_dir / SOURCES_FILE
    if not path.is_file():
        problems.append(Problem(path, 1, "missing: it lists the FAQ files to load (see README, 'Adding entries')"))
        return []
    root = yaml_nodes(path, problems)
    if root is None:
        return []
    items = None
    if isinstance(root, yaml.MappingNode):
        items = next((v for k, v in root.value if scalar(k) == "sources"), None)
    if not isinstance(items, yaml.SequenceNode):
        problems.append(Problem(path, 1, "expected a top-level `sources:` list"))
        return []
    sources: list[Source] = []
    for item in items.value:
        line = item.start_mark.line + 1
        fields = {scalar(k): scalar(v) for k, v in item.value} if isinstance(item, yaml.MappingNode) else {}
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
    node = next((v for k, v in item.value if scalar(k) == "title"), None)
    if node is None:
        return {}
    if isinstance(node, yaml.ScalarNode):
        return {"ja": node.value.strip(), "en": node.value.strip()}
    if isinstance(node, yaml.MappingNode):
        titles = {scalar(k): scalar(v) for k, v in node.value}
        if set(titles) <= {"ja", "en"} and all(isinstance(v, str) for v in titles.values()):
            return {k: v.strip() for k, v in titles.items()}
    problems.append(Problem(path, node.start_mark.line + 1, "title: give one text, or `ja:` and `en:` texts"))
    return {}
