"""SQLite backend of the store: one file, WAL, written only by the store's writer thread.

The writer keeps one connection with a short busy timeout, so a database locked by a backup or a DB browser
delays only the writer (the queue holds the rows meanwhile). Before and after each batch it checks that the
file is still the one it opened: a deleted or replaced file is recreated, schema included, and the batch
written again (writes are idempotent by key). A damaged file is moved aside as `<name>.damaged-<time>` and a
fresh one created. An old `feedback` table (before the store) is copied into `outcomes`/`votes` and kept.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
import time
from datetime import datetime
from pathlib import Path

from .errors import RowRejected, StoreError
from .store_rows import utc_text
from .store_schema import OUTCOME_COLUMNS, SCHEMA_VERSION, VOTE_COLUMNS, params, tables, writes

logger = logging.getLogger(__name__)

#: How long the writer waits for a lock before giving the batch back to the queue (the users never wait).
WRITER_BUSY_MS = 200
#: How long a reader (export, review, notebook) waits for a lock.
READER_BUSY_S = 5.0
_WRITES = writes(lambda name: f":{name}")
_REFUSED = (sqlite3.IntegrityError, sqlite3.DataError, sqlite3.InterfaceError, UnicodeEncodeError, OverflowError)
_COLUMNS = {"outcomes": OUTCOME_COLUMNS, "votes": VOTE_COLUMNS}
_ORDER = {"outcomes": "created_at", "votes": "updated_at"}
_LEGACY = [  # rows of the table before the store (kinds up/down/unanswered) -> votes / outcomes, keys legacy-<id>
    "INSERT INTO votes (key, created_at, updated_at, session, rating, question, entry_id, lang, confidence, status) "
    "SELECT 'legacy-' || id, substr(created_at, 1, 19) || '.000000Z', substr(created_at, 1, 19) || '.000000Z', "
    "session, kind, question, entry_id, lang, confidence, CASE WHEN answered THEN 'answered' ELSE 'no_match' END "
    "FROM feedback WHERE id > :done AND kind IN ('up', 'down') ON CONFLICT (key) DO NOTHING",
    "INSERT INTO outcomes (key, created_at, session, lang, question, status, entry_id, confidence, build) "
    "SELECT 'legacy-' || id, substr(created_at, 1, 19) || '.000000Z', session, lang, question, 'no_match', "
    "entry_id, confidence, 'legacy' FROM feedback WHERE id > :done AND kind = 'unanswered' "
    "ON CONFLICT (key) DO NOTHING",
]


def _damaged(err: sqlite3.Error) -> bool:
    name = getattr(err, "sqlite_errorname", "")
    return name in ("SQLITE_NOTADB", "SQLITE_CORRUPT") or "not a database" in str(err) or "malformed" in str(err)


class SqliteBackend:
    """The store's tables in one SQLite file (created with its folder on the first write)."""

    def __init__(self, path: Path, *, repair: bool = True) -> None:
        self.path = Path(path)
        self.where = str(self.path)
        self.repair = repair
        self._conn: sqlite3.Connection | None = None
        self._inode: int | None = None
        self._lock = threading.Lock()  # the writer connection is used by one thread at a time
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise StoreError(f"can't create the folder for the feedback database {self.path} ({err}); "
                             "set FAQBOT_FEEDBACK_DB to a writable path") from err
        if self.path.is_dir():
            raise StoreError(f"feedback database {self.path} is a folder: set FAQBOT_FEEDBACK_DB to a file path")

    # -- writing (the writer thread) ------------------------------------------------------------------------

    def write(self, items: list[tuple[str, dict]]) -> None:
        with self._lock:
            conn = self._connection()
            try:
                conn.execute("BEGIN IMMEDIATE")
                for op, row in items:
                    conn.execute(_WRITES[op], params(op, row))
                conn.execute("COMMIT")
            except _REFUSED as err:  # this data can never go in: the store sets the row aside
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
                raise RowRejected(f"feedback database {self.path} refused a row ({type(err).__name__}: "
                                  f"{str(err)[:200]})") from err
            except sqlite3.Error as err:
                self._fail(conn, err)
            if self._replaced():  # deleted while we wrote: the rows went with the old file, write them again
                self._reset()
                raise StoreError(f"feedback database {self.path} was deleted or replaced while writing; "
                                 "a new one is created and the rows are written again")

    def prune(self, cutoff: datetime) -> int:
        with self._lock:
            conn = self._connection()
            try:
                conn.execute("BEGIN IMMEDIATE")
                gone = conn.execute("DELETE FROM outcomes WHERE created_at < ?", (utc_text(cutoff),)).rowcount
                gone += conn.execute("DELETE FROM votes WHERE updated_at < ?", (utc_text(cutoff),)).rowcount
                conn.execute("COMMIT")
            except sqlite3.Error as err:
                self._fail(conn, err)
            return gone

    def close(self) -> None:
        with self._lock:
            self._reset()

    def _connection(self) -> sqlite3.Connection:
        """The writer's connection to the file at `path` now: reopened (schema and all) if the file changed."""
        if self._conn is not None and not self._replaced():
            return self._conn
        if self._conn is not None:
            logger.warning("feedback database %s was deleted or replaced while the bot ran; writing to a new one "
                           "(restore the old file from a backup to keep its rows)", self.path)
            self._reset()
        if not self.path.exists():  # a WAL left by a deleted file must not be applied to the new one
            for suffix in ("-wal", "-shm"):
                Path(f"{self.path}{suffix}").unlink(missing_ok=True)
            with contextlib.suppress(OSError):  # its folder may have gone too (the error, if any, comes below)
                self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            conn = self._open()
        except sqlite3.Error as err:
            if not (_damaged(err) and self.repair):
                raise StoreError(self._explain(err)) from err
            self._move_aside()
            try:
                conn = self._open()
            except sqlite3.Error as again:
                raise StoreError(self._explain(again)) from again
        self._conn = conn
        return conn

    def _open(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False,
                               timeout=WRITER_BUSY_MS / 1000)
        try:
            conn.execute(f"PRAGMA busy_timeout={WRITER_BUSY_MS}")
            conn.execute("PRAGMA journal_mode=WAL")
            self._inode = os.stat(self.path).st_ino
            conn.execute("BEGIN IMMEDIATE")
            for statement in tables("INTEGER PRIMARY KEY AUTOINCREMENT", "TEXT", "REAL"):
                conn.execute(statement)
            self._check_version(conn)
            self._migrate(conn)
            conn.execute("COMMIT")
        except (sqlite3.Error, StoreError):
            conn.close()
            raise
        return conn

    def _check_version(self, conn: sqlite3.Connection) -> None:
        row = conn.execute("SELECT max(version) FROM schema_version").fetchone()
        if row[0] is None:
            conn.execute("INSERT INTO schema_version (version) VALUES (?)", (SCHEMA_VERSION,))
        elif row[0] > SCHEMA_VERSION:
            raise StoreError(f"feedback database {self.path} has schema version {row[0]}, newer than this faqbot "
                             f"({SCHEMA_VERSION}): upgrade faqbot, or point FAQBOT_FEEDBACK_DB at another file")

    def _migrate(self, conn: sqlite3.Connection) -> None:
        """Copy rows of the pre-store `feedback` table that are not copied yet; the table itself is kept."""
        if not conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'feedback'").fetchone():
            return
        conn.execute("CREATE TABLE IF NOT EXISTS store_meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL)")
        done = conn.execute("SELECT value FROM store_meta WHERE name = 'legacy_feedback_id'").fetchone()
        done = done[0] if done else 0
        last = conn.execute("SELECT coalesce(max(id), 0) FROM feedback").fetchone()[0]
        if last <= done:
            return
        for statement in _LEGACY:
            conn.execute(statement, {"done": done})
        conn.execute("INSERT INTO store_meta (name, value) VALUES ('legacy_feedback_id', ?) "
                     "ON CONFLICT (name) DO UPDATE SET value = excluded.value", (last,))
        logger.info("feedback database %s: copied %d rows of the old feedback table into outcomes/votes "
                    "(the old table is kept)", self.path, last - done)

    def _replaced(self) -> bool:
        try:
            return os.stat(self.path).st_ino != self._inode
        except OSError:
            return True

    def _fail(self, conn: sqlite3.Connection, err: sqlite3.Error) -> None:
        """Roll back, repair what can be repaired (a lost table, a damaged file), and raise a `StoreError`."""
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")
        if "no such table" in str(err) or _damaged(err) or self._replaced():
            self._reset()  # the next batch reopens, recreating the schema (or the file)
            if _damaged(err) and self.repair:
                self._move_aside()
        raise StoreError(self._explain(err)) from err

    def _reset(self) -> None:
        if self._conn is not None:
            self._conn.close()
        self._conn, self._inode = None, None

    def _move_aside(self) -> None:
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        target = self.path.with_name(f"{self.path.name}.damaged-{stamp}")
        for suffix in ("", "-wal", "-shm"):
            source = Path(f"{self.path}{suffix}")
            if source.exists():
                source.rename(f"{target}{suffix}")
        logger.error("feedback database %s is damaged; moved it aside as %s (keep it for recovery) and started "
                     "a new one", self.path, target)

    def _explain(self, err: sqlite3.Error) -> str:
        text = str(err)
        if "locked" in text or "busy" in text:
            return (f"feedback database {self.path} is locked by another program: the rows wait until it is "
                    "released (close the DB browser or let the backup finish)")
        if _damaged(err):
            return (f"feedback database {self.path} is damaged or not a SQLite file ({text}): move it aside "
                    "(keep it for recovery); `faqbot serve` starts a new one")
        return (f"feedback database {self.path} can't be used ({text}): check that the file and its folder "
                "are readable and writable, or set FAQBOT_FEEDBACK_DB to another path")

    # -- reading (any thread, own connection) ---------------------------------------------------------------

    def rows(self, table: str, since: datetime | None) -> list[dict]:
        columns = _COLUMNS[table]
        where = f" WHERE {_ORDER[table]} >= :since" if since is not None else ""
        query = f"SELECT {', '.join(columns)} FROM {table}{where} ORDER BY {_ORDER[table]}, id"
        if not self.path.exists():
            return []
        with self._lock, contextlib.suppress(StoreError):  # schema and old rows first, unless the file is locked
            self._connection()
        conn = None
        try:
            conn = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True, timeout=READER_BUSY_S)
            found = conn.execute(query, {"since": utc_text(since) if since else None}).fetchall()
        except sqlite3.Error as err:
            if "no such table" in str(err):
                return []  # the writer has not created it yet
            raise StoreError(self._explain(err)) from err
        finally:
            if conn is not None:
                conn.close()
        return [dict(zip(columns, row, strict=True)) for row in found]
