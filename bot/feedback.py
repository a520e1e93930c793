"""Feedback: 👍/👎 on answers and the questions the bot could not answer, kept in a local SQLite file.

Each write is one short transaction on its own connection, so the web page's worker threads (and
`faqbot feedback export` from another process) never share a connection. The database runs in WAL mode:
readers don't block the writer, and a busy timeout makes concurrent writers wait instead of failing.
Rows are only ever added, so the file survives restarts and can be backed up by copying it.
"""

from __future__ import annotations

import contextlib
import csv
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from .errors import BotError

#: What a row records: a rating of an answer, or a question that got no confident answer.
KINDS = ("up", "down", "unanswered")
#: Columns of the table and of the exported CSV, in order.
COLUMNS = ("id", "created_at", "kind", "session", "lang", "question", "entry_id", "answered", "confidence")
#: How long a writer waits for another one before giving up with a "locked" message.
BUSY_TIMEOUT_S = 10.0
#: A cell starting with one of these is a formula to Excel/LibreOffice; the export prefixes it with `'`.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS feedback (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('up', 'down', 'unanswered')),
    session TEXT NOT NULL DEFAULT '',
    lang TEXT NOT NULL DEFAULT '',
    question TEXT NOT NULL,
    entry_id TEXT NOT NULL DEFAULT '',
    answered INTEGER NOT NULL DEFAULT 0,
    confidence REAL NOT NULL DEFAULT 0
)
"""


class FeedbackError(BotError):
    """The feedback database can't be opened, read or written; the page keeps answering without it."""


@dataclass(frozen=True, slots=True)
class Feedback:
    """One row: who (session) said what (kind) about which answer to which question."""

    kind: str
    question: str
    entry_id: str = ""
    answered: bool = False
    confidence: float = 0.0
    lang: str = ""
    session: str = ""


def excel_safe(value: object) -> object:
    """A cell value Excel shows as text: a leading formula character gets a `'` in front."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


class FeedbackStore:
    """The feedback table in one SQLite file (created with its folder on first use)."""

    def __init__(self, path: Path | str, timeout: float = BUSY_TIMEOUT_S) -> None:
        self.path = Path(path)
        self.timeout = timeout
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise FeedbackError(f"can't create the folder for the feedback database {self.path} ({err}); "
                                "set FAQBOT_FEEDBACK_DB to a writable path") from err
        with self._connect() as conn:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(_SCHEMA)

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        """A connection for one transaction; every SQLite failure becomes a `FeedbackError` saying what to do."""
        conn = None
        try:
            conn = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None)
            conn.execute(f"PRAGMA busy_timeout={int(self.timeout * 1000)}")
            yield conn
        except sqlite3.Error as err:
            raise FeedbackError(self._explain(err)) from err
        finally:
            if conn is not None:
                conn.close()

    def _explain(self, err: sqlite3.Error) -> str:
        text = str(err)
        if "locked" in text or "busy" in text:
            return (f"feedback database {self.path} is locked by another program (waited {self.timeout:g}s): "
                    "close whatever holds it open (a DB browser, a backup tool) and try again")
        if "not a database" in text or "malformed" in text or "corrupt" in text:
            return (f"feedback database {self.path} is damaged or not a SQLite file ({text}): move it aside "
                    "(keep it for recovery); a new empty one is created on the next start")
        return (f"feedback database {self.path} can't be used ({text}): check that the file and its folder "
                "exist and are readable and writable, or set FAQBOT_FEEDBACK_DB to another path")

    def add(self, item: Feedback) -> int:
        """Store one row and return its id; it is on disk (committed) when this returns."""
        if item.kind not in KINDS:
            raise ValueError(f"feedback kind must be one of {KINDS}, not {item.kind!r}")
        created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        with self._connect() as conn:
            cursor = conn.execute(
                "INSERT INTO feedback (created_at, kind, session, lang, question, entry_id, answered, confidence) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (created, item.kind, item.session, item.lang, item.question, item.entry_id, int(item.answered),
                 float(item.confidence)),
            )
            return int(cursor.lastrowid)

    def rows(self) -> list[dict]:
        """Every row, oldest first, as dicts keyed by `COLUMNS`."""
        with self._connect() as conn:
            cursor = conn.execute(f"SELECT {', '.join(COLUMNS)} FROM feedback ORDER BY id")
            return [dict(zip(COLUMNS, row, strict=True)) for row in cursor.fetchall()]

    def export_csv(self, handle: TextIO) -> int:
        """Write every row as CSV (header first) that is safe to open in Excel; returns the number of rows."""
        rows = self.rows()
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        for row in rows:
            writer.writerow([excel_safe(row[c]) for c in COLUMNS])
        return len(rows)
