"""Store: the one place outcomes (what the bot did with each question) and votes (👍/👎) are kept.

`open_store(target)` picks the backend: a `postgresql://` URL (several replicas share one database) or a
SQLite file path (the embedded default). Writes are write-behind: `record_outcome` and `set_vote` queue the
row and return a `Pending` at once, and ONE writer thread commits the queue in small batches, so a slow or
locked database never delays an answer (bot/store_writer.py). A failed batch is kept and retried with
backoff, never dropped; past 10,000 queued rows new ones go to an overflow file on disk (bot/store_spill.py)
that is replayed once the database takes writes again, also after a restart. Every row has a unique
`key`, so a retried or replayed write never makes a duplicate. Questions may hold personal details: they
are kept only here, never logged, and pruned after `keep_days`.
"""

from __future__ import annotations

import atexit
import csv
import json
import logging
import os
import threading
import weakref
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol, TextIO

from .errors import RowRejected, StoreError
from .store_rows import RATINGS, REASONS, STATUSES, outcome_row, utc_text, vote_row
from .store_schema import OUTCOME_COLUMNS, SCHEMA_VERSION, VOTE_COLUMNS
from .store_spill import Spill
from .store_writer import Pending, Writer

__all__ = ["EXPORT_COLUMNS", "OUTCOME_COLUMNS", "RATINGS", "REASONS", "SCHEMA_VERSION", "STATUSES", "VOTE_COLUMNS",
           "Pending", "RowRejected", "Store", "StoreError", "excel_safe", "open_store", "utc_text"]

logger = logging.getLogger(__name__)

#: Columns of `faqbot feedback export`: `kind` (outcome/vote), then every column of either table.
EXPORT_COLUMNS = ("kind", *OUTCOME_COLUMNS, *(c for c in VOTE_COLUMNS if c not in OUTCOME_COLUMNS))
#: Rows older than this many days are pruned; 0 keeps everything.
DEFAULT_KEEP_DAYS = 90
#: A cell starting with one of these is a formula to Excel/LibreOffice; the export prefixes it with `'`.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class Backend(Protocol):
    """What a database backend does for the `Store`: every method is one transaction."""

    where: str  # the database for messages (a path, or a URL without its password)

    # ("outcome"|"vote"|"unvote", row) in one transaction, all or none; RowRejected for rows it can never take
    def write(self, items: list[tuple[str, dict]]) -> None: ...
    def rows(self, table: str, since: datetime | None) -> list[dict]: ...
    def prune(self, cutoff: datetime) -> int: ...
    def close(self) -> None: ...


def excel_safe(value: object) -> object:
    """A cell value Excel shows as text: a leading formula character gets a `'` in front."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def keep_days_from_env(value: int | None = None) -> int:
    """`value`, else FAQBOT_KEEP_DAYS, else 90; a bad value is refused with what to set instead."""
    raw: object = value if value is not None else os.environ.get("FAQBOT_KEEP_DAYS", "").strip() or DEFAULT_KEEP_DAYS
    try:
        days = int(raw)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        days = -1
    if days < 0 or str(raw).strip() not in (str(days), f"+{days}"):
        raise StoreError(f"keep_days (FAQBOT_KEEP_DAYS) must be a whole number of days >= 0 (0 keeps rows forever), "
                         f"not {raw!r}")
    return days


#: Stores not closed yet, closed (flushed, or spilled to disk) at interpreter exit.
_OPEN: weakref.WeakSet[Store] = weakref.WeakSet()


@atexit.register
def _close_open_stores() -> None:
    for store in list(_OPEN):
        store.close(timeout=5.0)


class Store:
    """One backend behind one write-behind queue and its writer thread (see the module docstring)."""

    def __init__(self, backend: Backend, *, keep_days: int, spill_base: Path) -> None:
        self.backend = backend
        self.keep_days = keep_days
        self._lock = threading.Lock()
        self._closed = False
        self._writer = Writer(backend, Spill(spill_base), self._scheduled_prune)
        _OPEN.add(self)

    @property
    def where(self) -> str:
        """The database for logs and messages: the SQLite path, or the PostgreSQL URL without its password."""
        return self.backend.where

    # -- the answering path: never blocks -------------------------------------------------------------------

    def record_outcome(self, row: dict) -> Pending:
        """Queue what the bot did with one question; returns at once (bad rows raise `StoreError`)."""
        return self._writer.put("outcome", outcome_row(row))

    def set_vote(self, row: dict) -> Pending:
        """Queue a 👍/👎 for the answer `row["key"]`, replacing an earlier one; rating None removes it."""
        clean = vote_row(row)
        return self._writer.put("vote" if clean["rating"] else "unvote", clean)

    # -- reading and housekeeping ---------------------------------------------------------------------------

    def outcomes(self, since: datetime | None = None) -> list[dict]:
        """Committed outcomes (created at or after `since`), oldest first; `top` as a list."""
        rows = self.backend.rows("outcomes", since)
        for row in rows:
            row["top"] = json.loads(row["top"] or "[]")
        return rows

    def votes(self, since: datetime | None = None) -> list[dict]:
        """Current votes (last changed at or after `since`), one per answer key, oldest first."""
        return self.backend.rows("votes", since)

    def prune(self) -> int:
        """Delete rows older than `keep_days` (0 keeps all); returns how many were deleted."""
        if not self.keep_days:
            return 0
        return self.backend.prune(datetime.now(UTC) - timedelta(days=self.keep_days))

    def _scheduled_prune(self) -> int:
        pruned = self.prune()
        if pruned:
            logger.info("feedback store: pruned %d rows older than %d days", pruned, self.keep_days)
        return pruned

    def export_csv(self, handle: TextIO) -> int:
        """Every outcome, then every vote, as one Excel-safe CSV (`EXPORT_COLUMNS`); returns the row count."""
        writer = csv.writer(handle)
        writer.writerow(EXPORT_COLUMNS)
        count = 0
        for kind, rows in (("outcome", self.outcomes()), ("vote", self.votes())):
            for row in rows:
                if kind == "outcome":
                    row["top"] = json.dumps(row["top"], ensure_ascii=False)
                cells = {"kind": kind, **row}
                writer.writerow([excel_safe("" if cells.get(c) is None else cells.get(c)) for c in EXPORT_COLUMNS])
                count += 1
        return count

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything queued so far (spill file included) is committed; False after `timeout`."""
        return self._writer.flush(timeout)

    def close(self, timeout: float = 10.0) -> None:
        """Flush (up to `timeout`), stop the writer; rows still not written are kept in the spill file.

        Runs by itself at interpreter exit for a store nobody closed, so queued rows survive a plain exit."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        _OPEN.discard(self)
        self._writer.close(timeout)
        self.backend.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_store(target: str | Path, *, keep_days: int | None = None, create: bool = True) -> Store:
    """The store at `target`: a `postgresql://` URL, or a SQLite file path (created with its folder).

    `create=False` refuses a SQLite file that does not exist (for tools that only read, like export).
    """
    days = keep_days_from_env(keep_days)
    text = str(target)
    if text.startswith(("postgresql://", "postgres://")):
        from .store_pg import PostgresBackend

        backend: Backend = PostgresBackend(text)
        spill_base = backend.spill_base()  # type: ignore[attr-defined]
    else:
        from .store_sqlite import SqliteBackend

        path = Path(target)
        if not create and not path.is_file():
            raise StoreError(f"no feedback database at {path}: run from the folder where `faqbot serve` runs, "
                             "or set FAQBOT_FEEDBACK_DB")
        backend = SqliteBackend(path, repair=create)
        spill_base = path
    return Store(backend, keep_days=days, spill_base=spill_base)
