"""The one exception tree of faqbot.

    BotError                  anything the bot can explain to a user
    ├── DataError             the data files have problems (each one with file:line)
    ├── IndexError_           the built index is missing, stale, corrupt or from another model
    └── StoreError            the feedback/outcome store can't be opened, read or written (bot/store.py)
        └── RowRejected       the database refuses a row as data (the store sets it aside)

"No confident answer" is a normal result, never an exception. Library code raises these;
only the CLI and the web page turn them into messages.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


class BotError(Exception):
    """Base class: the message says what failed, where, and what to do next."""


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong in a data file, at a line a person can open."""

    path: Path
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


class DataError(BotError):
    """The data files have one or more problems; all are reported at once."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = list(problems)
        lines = "\n".join(f"  {p}" for p in self.problems)
        super().__init__(
            f"{len(self.problems)} problem(s) in the data files:\n{lines}\n"
            "Fix them, then run `faqbot check` again."
        )


class IndexError_(BotError):  # noqa: N801 - trailing underscore: don't shadow the builtin
    """The index can't be used as it is; the message says how to rebuild it."""


class StoreError(BotError):
    """The feedback/outcome store (bot/store.py) can't be opened, read or written; says where and what to do."""


class RowRejected(StoreError):
    """The database refuses a row as data (not a passing fault): the store sets it aside instead of retrying."""
