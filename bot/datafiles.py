"""Data files: read the trainers' text and YAML files so that every bad line is reported with its `file:line`.

Shared by the sheet, sources.yaml, bilingual.yaml and out_of_scope.yaml readers (bot/entries.py,
bot/sources.py, bot/bilingual.py): undecodable bytes and control characters are problems to report, never
guessed at, and YAML goes through the size-bounded loader in bot/yamlfile.py.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from . import yamlfile
from .errors import DataError, Problem

__all__ = ["check_text", "read_lines", "scalar", "string_list", "yaml_nodes"]

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def read_lines(path: Path, problems: list[Problem]) -> list[str]:
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


def check_text(path: Path, line: int, what: str, text: str, problems: list[Problem]) -> None:
    if _CONTROL.search(text):
        problems.append(Problem(path, line, f"{what} contains a control character; remove it"))


def yaml_nodes(path: Path, problems: list[Problem]) -> yaml.Node | None:
    """The node tree of a YAML data file, size-bounded (bot/yamlfile.py); None after reporting why not."""
    try:
        yamlfile.check_size(path)
        return yamlfile.compose(path, "\n".join(read_lines(path, problems)))
    except DataError as err:
        problems += err.problems
        return None


def scalar(node: yaml.Node) -> str | None:
    return node.value if isinstance(node, yaml.ScalarNode) else None


def string_list(node: yaml.Node, path: Path, what: str, problems: list[Problem]) -> tuple[str, ...]:
    if not isinstance(node, yaml.SequenceNode) or not all(isinstance(n, yaml.ScalarNode) for n in node.value):
        problems.append(Problem(path, node.start_mark.line + 1, f"{what} must be a list of strings"))
        return ()
    out = tuple(n.value.strip() for n in node.value if n.value.strip())
    for n in node.value:
        check_text(path, n.start_mark.line + 1, what, n.value, problems)
    return out
