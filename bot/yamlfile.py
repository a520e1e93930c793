"""YAML files: the data files' YAML read with bounds, and syntax errors a person can fix.

A data file is small and hand-written, so anything huge in it is a mistake or an attack: a file over
`MAX_FILE_BYTES`, one text over `MAX_TEXT_CHARS`, more than `MAX_ALIASES` aliases (`*name`), or aliases
that expand to more than `MAX_EXPANDED_CHARS` of text (a few hundred kB of `*a` pointing at one long string
would otherwise become gigabytes of questions to embed). All are refused while the file is composed —
before anything is expanded — as one `Problem` with the file and line. Only the node tree is built
(`compose`, never `load`): no tag is ever turned into a Python object.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from .errors import DataError, Problem

__all__ = ["MAX_ALIASES", "MAX_EXPANDED_CHARS", "MAX_FILE_BYTES", "MAX_TEXT_CHARS", "check_size", "compose"]

#: The largest data file read (data/bilingual.yaml is ~45 kB for 60 entries).
MAX_FILE_BYTES = 5_000_000
#: The longest single text (a question, an alternate, a translated answer); the longest today is ~1,500.
MAX_TEXT_CHARS = 5_000
#: Aliases (`*name`) allowed in one file; hand-written data files need few, if any.
MAX_ALIASES = 100
#: All text of a file with every alias expanded.
MAX_EXPANDED_CHARS = 2 * MAX_FILE_BYTES

#: What to do about PyYAML's most common complaints, by the start of its message.
HINTS = {
    "mapping values are not allowed here":
        "a text containing ': ' must be quoted (\"...\") or written as a `|` block",
    "found character '\\t' that cannot start any token": "indent with spaces, not tabs",
    "found undefined alias": "an alias *name needs an anchor &name earlier in the file",
    "found unexpected end of stream": "a quote is not closed",
    "found unknown escape character": "in double quotes a backslash starts an escape: write \\\\ or use single quotes",
    "expected <block end>, but found '<scalar>'":
        "text goes on after its closing quote: double a quote inside the text ('') or use the other quotes",
    "expected <block end>": "check this line's indentation against the lines above it",
    "could not find expected ':'": "a key is missing its ':', or a text running over lines needs quotes",
    "did not find expected key": "check this line's indentation against the lines above it",
    "expected ',' or ']'": "a [list] is not closed",
    "expected ',' or '}'": "a {mapping} is not closed",
    "found character": "a text starting with @, ` , %, | or > must be quoted",
}


class _Bounded(yaml.SafeLoader):
    """SafeLoader's composer, counting aliases and the expanded size of every node as it is composed."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.aliases = 0
        self.sizes: dict[int, int] = {}  # id(node) -> characters of text under it, aliases expanded

    def compose_node(self, parent, index):  # noqa: ANN001, ANN201 - PyYAML's signature
        if self.check_event(yaml.AliasEvent):
            self.aliases += 1
            if self.aliases > MAX_ALIASES:
                raise _Refused(self.peek_event().start_mark,
                               f"more than {MAX_ALIASES} aliases (*name); write the text out instead")
        node = super().compose_node(parent, index)
        if id(node) not in self.sizes:  # an alias returns its anchor's node, sized already
            self.sizes[id(node)] = self._size(node)
        return node

    def _size(self, node: yaml.Node) -> int:
        if isinstance(node, yaml.ScalarNode):
            if len(node.value) > MAX_TEXT_CHARS:
                raise _Refused(node.start_mark, f"a text of {len(node.value):,} characters; texts in data files are "
                                                f"at most {MAX_TEXT_CHARS:,}: shorten or split it")
            return len(node.value)
        children = [n for pair in node.value for n in pair] if isinstance(node, yaml.MappingNode) else node.value
        size = sum(self.sizes.get(id(child), 0) for child in children)
        if size > MAX_EXPANDED_CHARS:
            raise _Refused(node.start_mark, f"expands to over {MAX_EXPANDED_CHARS:,} characters of text "
                                            "(aliases repeated); write each text once")
        return size


class _Refused(yaml.YAMLError):
    def __init__(self, mark: yaml.Mark, problem: str) -> None:
        super().__init__(problem)
        self.problem_mark, self.problem = mark, problem


def check_size(path: Path) -> None:
    """Refuse a data file too large to be hand-written, before reading it."""
    try:
        size = path.stat().st_size
    except OSError:
        return  # reading it reports why
    if size > MAX_FILE_BYTES:
        raise DataError([Problem(path, 1, f"{size:,} bytes; data files are at most {MAX_FILE_BYTES:,}: "
                                          "is this the right file?")])


def compose(path: Path, text: str) -> yaml.Node | None:
    """The node tree of one YAML document (None when empty); any problem raises `DataError` with its line."""
    if len(text) > MAX_FILE_BYTES:
        raise DataError([Problem(path, 1, f"{len(text):,} characters; data files are at most {MAX_FILE_BYTES:,}")])
    loader = None
    try:
        loader = _Bounded(text)  # its reader already refuses control characters
        return loader.get_single_node()
    except yaml.reader.ReaderError as err:
        line = text.count("\n", 0, err.position) + 1
        raise DataError([Problem(path, line, f"not valid YAML: character {err.character:#06x} is not allowed "
                                             "in YAML; remove it")]) from None
    except yaml.YAMLError as err:
        raise DataError([_problem(path, err)]) from None
    finally:
        if loader is not None:
            loader.dispose()


def _problem(path: Path, err: yaml.YAMLError) -> Problem:
    """One problem at the line PyYAML stopped at, with what to do about it."""
    mark = getattr(err, "problem_mark", None)
    what = str(getattr(err, "problem", None) or err)
    if isinstance(err, _Refused):
        return Problem(path, mark.line + 1, what)
    hint = next((h for start, h in HINTS.items() if what.startswith(start)), "")
    context, started = getattr(err, "context", None), getattr(err, "context_mark", None)
    if started is not None and (what.startswith("expected ','") or ("end" in what and "stream" in what)):
        mark = started  # an unclosed quote or bracket: point where it opened, not where the parser gave up
    message = f"not valid YAML: {what}" + (f" ({context})" if context else "") + (f"; {hint}" if hint else "")
    return Problem(path, (mark.line + 1) if mark else 1, message)
