"""Store: the one place outcomes (what the bot did with each question) and votes (👍/👎) are kept.

`open_store(target)` picks the backend: a `postgresql://` URL (several replicas share one database) or a
SQLite file path (the embedded default). Writes are write-behind: `record_outcome` and `set_vote` queue the
row and return a `Pending` at once, and ONE writer thread commits the queue in small batches, so a slow or
locked database never delays an answer. A failed batch is kept and retried with backoff, never dropped;
past `MAX_QUEUE` queued rows new ones go to an overflow file on disk (bot/store_spill.py) that is replayed
once the database takes writes again, also after a restart. Every row has a unique `key`, so a retried or
replayed write never makes a duplicate. Questions may hold personal details: they are kept only here,
never logged, and pruned after `keep_days`.
"""

from __future__ import annotations

import atexit
import contextlib
import csv
import itertools
import json
import logging
import math
import os
import threading
import time
import weakref
from collections import deque
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol, TextIO

from .errors import BotError
from .store_spill import Spill

logger = logging.getLogger(__name__)

#: The schema both backends create; bump it (and add a migration) when a table changes.
SCHEMA_VERSION = 1
#: Answer statuses an outcome may have (the same as `bot.answer.STATUSES`, kept here so the store stays light).
STATUSES = ("answered", "no_official_answer", "ambiguous", "no_match", "error")
RATINGS = ("up", "down")
REASONS = ("wrong", "outdated", "not_asked", "other", "")
OUTCOME_COLUMNS = ("id", "key", "created_at", "session", "lang", "question", "status", "entry_id", "confidence",
                   "margin", "top", "build")
VOTE_COLUMNS = ("id", "key", "created_at", "updated_at", "session", "rating", "reason", "comment", "question",
                "entry_id", "lang", "confidence", "status")
#: Columns of `faqbot feedback export`: `kind` (outcome/vote), then every column of either table.
EXPORT_COLUMNS = ("kind", *OUTCOME_COLUMNS, *(c for c in VOTE_COLUMNS if c not in OUTCOME_COLUMNS))
#: Rows older than this many days are pruned; 0 keeps everything.
DEFAULT_KEEP_DAYS = 90
#: Rows committed in one transaction.
BATCH = 200
#: Rows held in memory before new ones overflow to the spill file.
MAX_QUEUE = 10_000
#: Retry delays after a failed batch grow from the first to the last value (seconds).
BACKOFF = (0.05, 2.0)
PRUNE_EVERY_S = 24 * 3600
#: While writes keep failing, the log says so again this often (seconds).
REMIND_EVERY_S = 300
#: A cell starting with one of these is a formula to Excel/LibreOffice; the export prefixes it with `'`.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_MAX_KEY = 200


class StoreError(BotError):
    """The feedback store can't be opened, read or written; the message says where and what to do."""


class RowRejected(StoreError):
    """The database refuses these rows as they are (a data error, not a passing fault): retrying can't help."""


class Backend(Protocol):
    """What a database backend does for the `Store`: every method is one transaction."""

    where: str  # the database for messages (a path, or a URL without its password)

    # ("outcome"|"vote"|"unvote", row) in one transaction, all or none; RowRejected for rows it can never take
    def write(self, items: list[tuple[str, dict]]) -> None: ...
    def rows(self, table: str, since: datetime | None) -> list[dict]: ...
    def prune(self, cutoff: datetime) -> int: ...
    def close(self) -> None: ...


class Pending:
    """A queued write; `wait(timeout)` is True once it is committed to the database."""

    __slots__ = ("_event", "__weakref__")

    def __init__(self) -> None:
        self._event = threading.Event()

    def wait(self, timeout: float) -> bool:
        return self._event.wait(timeout)

    @property
    def durable(self) -> bool:
        return self._event.is_set()

    def _done(self) -> None:
        self._event.set()


def utc_text(moment: datetime) -> str:
    """The one timestamp format of both backends' rows: UTC ISO 8601 with microseconds and `Z`."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


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


def _text(row: dict, name: str, limit: int | None = None) -> str:
    """A text column: NUL and lone surrogates (which PostgreSQL or UTF-8 refuse) replaced, cut to `limit`."""
    value = row.get(name)
    value = "" if value is None else str(value)
    value = value.replace("\x00", "\ufffd").encode("utf-8", "replace").decode("utf-8")
    return value[:limit] if limit else value


def _number(row: dict, name: str) -> float | None:
    value = row.get(name)
    if value is None or value == "":
        return None
    try:
        number = float(value)
    except (TypeError, ValueError) as err:
        raise StoreError(f"{name} must be a number, not {value!r:.40}") from err
    return number if math.isfinite(number) else None


def _time(row: dict, name: str) -> str:
    """A timestamp column: the row's own (any ISO 8601 with a zone) in the one format, else now."""
    value = row.get(name)
    if value in (None, ""):
        return utc_text(datetime.now(UTC))
    try:
        moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    except ValueError as err:
        raise StoreError(f"{name} must be an ISO 8601 time such as 2026-01-05T10:00:00Z, not {value!r:.40}") from err
    if moment.tzinfo is None:
        raise StoreError(f"{name} must say its time zone (e.g. a trailing Z for UTC), not {value!r:.40}")
    return utc_text(moment)


def _key(row: dict) -> str:
    key = row.get("key")
    if not isinstance(key, str) or not key.strip() or len(key) > _MAX_KEY or "\x00" in key:
        shown = str(key)[:40]
        raise StoreError(f"a stored row needs a `key`: a non-empty string of at most {_MAX_KEY} characters "
                         f"(e.g. uuid4().hex), not {shown!r}")
    return key


def outcome_row(row: dict) -> dict:
    """`row` checked and completed to the `outcomes` columns (no `id`); bad values raise `StoreError`."""
    status = _text(row, "status")
    if status not in STATUSES:
        raise StoreError(f"outcome status must be one of {STATUSES}, not {status!r}")
    top = row.get("top") or []
    try:
        top = [{"id": str(t["id"]), "score": _number({"score": t["score"]}, "score")} for t in list(top)[:3]]
    except (KeyError, TypeError, ValueError, StoreError) as err:
        raise StoreError(f"outcome top must be a list of {{'id', 'score'}} (up to 3), not {top!r:.80}") from err
    return {"key": _key(row), "created_at": _time(row, "created_at"),
            "session": _text(row, "session", 200), "lang": _text(row, "lang", 8), "question": _text(row, "question"),
            "status": status, "entry_id": _text(row, "entry_id", 200), "confidence": _number(row, "confidence"),
            "margin": _number(row, "margin"), "top": json.dumps(top), "build": _text(row, "build", 200)}


def vote_row(row: dict) -> dict:
    """`row` checked and completed to the `votes` columns (no `id`); bad values raise `StoreError`."""
    rating = row.get("rating")
    if rating not in (*RATINGS, None):
        raise StoreError(f"vote rating must be 'up', 'down' or None (to remove the vote), not {rating!r}")
    reason = _text(row, "reason")
    if reason not in REASONS:
        raise StoreError(f"vote reason must be one of {REASONS}, not {reason!r}")
    status = _text(row, "status")
    if status and status not in STATUSES:
        raise StoreError(f"vote status must be one of {STATUSES}, not {status!r}")
    now = utc_text(datetime.now(UTC))
    created = _time(row, "created_at") if row.get("created_at") else now
    return {"key": _key(row), "created_at": created, "updated_at": now,
            "session": _text(row, "session", 200), "rating": rating, "reason": reason,
            "comment": _text(row, "comment", 2000), "question": _text(row, "question"),
            "entry_id": _text(row, "entry_id", 200), "lang": _text(row, "lang", 8),
            "confidence": _number(row, "confidence"), "status": status}


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
        self._queue: deque[tuple[str, dict, Pending]] = deque()
        self._cond = threading.Condition()
        self._stopping = False
        self._inflight = 0
        self._tickets = itertools.count(1)
        self._spilled: weakref.WeakValueDictionary[int, Pending] = weakref.WeakValueDictionary()
        self._spill = Spill(spill_base)
        self._closed = False
        self._writer = threading.Thread(target=self._run, name="faqbot-store-writer", daemon=True)
        self._writer.start()
        _OPEN.add(self)

    @property
    def where(self) -> str:
        """The database for logs and messages: the SQLite path, or the PostgreSQL URL without its password."""
        return self.backend.where

    # -- the answering path: never blocks -------------------------------------------------------------------

    def record_outcome(self, row: dict) -> Pending:
        """Queue what the bot did with one question; returns at once (bad rows raise `StoreError`)."""
        return self._put("outcome", outcome_row(row))

    def set_vote(self, row: dict) -> Pending:
        """Queue a 👍/👎 for the answer `row["key"]`, replacing an earlier one; rating None removes it."""
        clean = vote_row(row)
        return self._put("vote" if clean["rating"] else "unvote", clean)

    def _put(self, op: str, row: dict) -> Pending:
        pending = Pending()
        with self._cond:
            if self._stopping:
                raise StoreError(f"the feedback store for {self.backend.where} is closed: open it again")
            if self._spill.active or len(self._queue) >= MAX_QUEUE:
                ticket = next(self._tickets)
                self._spilled[ticket] = pending
                if self._spill.append(op, row, ticket):
                    logger.warning("feedback store: %d rows waiting for %s; new rows go to %s until it takes "
                                   "writes again (nothing is lost)", len(self._queue), self.backend.where,
                                   self._spill.path)
            else:
                self._queue.append((op, row, pending))
            self._cond.notify_all()
        return pending

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
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._queue or self._inflight or self._spill.waiting():
                left = deadline - time.monotonic()
                if left <= 0 or not self._writer.is_alive():
                    return False
                self._cond.wait(min(left, 0.1))
        return True

    def close(self, timeout: float = 10.0) -> None:
        """Flush (up to `timeout`), stop the writer; rows still not written are kept in the spill file.

        Runs by itself at interpreter exit for a store nobody closed, so queued rows survive a plain exit."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
        _OPEN.discard(self)
        self.flush(timeout)
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self._writer.join(timeout=max(timeout, 1.0))
        with self._cond:
            left = [(op, row) for op, row, _ in self._queue]
            self._queue.clear()
        if left:
            self._spill.keep_first(left)
            logger.warning("feedback store: %s did not take %d rows before closing; they are kept in %s and "
                           "written when the bot next starts", self.backend.where, len(left), self._spill.path)
        self._spill.close()
        self.backend.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the writer thread ----------------------------------------------------------------------------------

    def _run(self) -> None:
        delay, failing_since, reminded, next_prune = 0.0, 0.0, 0.0, 0.0
        while True:
            with self._cond:
                while not (self._queue or self._spill.waiting() or self._stopping or time.monotonic() >= next_prune):
                    self._cond.wait(max(0.05, min(next_prune - time.monotonic(), 60.0)))
                if self._stopping and (failing_since or not (self._queue or self._spill.waiting())):
                    return
                batch = list(itertools.islice(self._queue, BATCH))
                self._inflight = len(batch)
            accepted: list[bool] = []
            try:
                if batch:
                    accepted = self._commit([(op, row) for op, row, _ in batch])
                elif self._spill.waiting():
                    self._replay()
                else:
                    next_prune = time.monotonic() + PRUNE_EVERY_S
                    pruned = self.prune()
                    if pruned:
                        logger.info("feedback store: pruned %d rows older than %d days", pruned, self.keep_days)
                    continue
            except Exception as err:  # noqa: BLE001 - the writer must outlive any database fault
                with self._cond:
                    self._inflight = 0
                if not batch and not self._spill.waiting():  # a failed prune: try again in an hour
                    next_prune = time.monotonic() + 3600
                now = time.monotonic()
                if not failing_since or now - reminded >= REMIND_EVERY_S:
                    failing_since, reminded = failing_since or now, now
                    logger.error("feedback store: writing to %s failed (%s); %d rows wait (none are lost) and are "
                                 "retried", self.backend.where, _describe(err), len(self._queue))
                delay = min(max(delay * 2, BACKOFF[0]), BACKOFF[1])
                with self._cond:
                    self._cond.wait_for(lambda: self._stopping, timeout=delay)
                continue
            if failing_since:
                logger.info("feedback store: %s takes writes again after %.0f s", self.backend.where,
                            time.monotonic() - failing_since)
            delay, failing_since = 0.0, 0.0
            with self._cond:
                for _ in range(min(len(batch), len(self._queue))):  # close() may have spilled them meanwhile
                    self._queue.popleft()
                self._inflight = 0
                self._cond.notify_all()
            for (_, _, pending), ok in zip(batch, accepted, strict=True):
                if ok:
                    pending._done()

    def _commit(self, items: list[tuple[str, dict]]) -> list[bool]:
        """Write `items` in one transaction; if the database refuses the batch as data, write them one by one
        and set each refused row aside (in the `.rejected.jsonl` file, logged by key) so it can't block the rest."""
        with contextlib.suppress(RowRejected):  # the usual case: the whole batch goes in
            self.backend.write(items)
            return [True] * len(items)
        accepted = []
        for op, row in items:
            try:
                self.backend.write([(op, row)])
                accepted.append(True)
            except RowRejected as err:
                where = self._spill.reject(op, row)
                logger.error("feedback store: %s refused the %s row with key %s (%s); it is kept in %s for a "
                             "person to look at", self.backend.where, op, row["key"][:40], _describe(err), where)
                accepted.append(False)
        return accepted

    def _replay(self) -> None:
        """Write the spill file's rows in batches (oldest first) and mark their `Pending`s durable."""
        for chunk in self._spill.replay(BATCH):
            accepted = self._commit([(line["op"], line["row"]) for line in chunk])
            for line, ok in zip(chunk, accepted, strict=True):
                pending = self._spilled.pop(line.get("ticket", 0), None) if self._spill.mine(line) else None
                if pending is not None and ok:
                    pending._done()
        with self._cond:
            self._cond.notify_all()


def _describe(err: Exception) -> str:
    """An error without question text: our own messages, or the exception type and its first line."""
    if isinstance(err, StoreError):
        return str(err)
    return f"{type(err).__name__}: {str(err).splitlines()[0][:200] if str(err) else ''}"


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
