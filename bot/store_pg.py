"""PostgreSQL backend of the store: one database that several `faqbot serve` replicas share.

psycopg 3 with a small `psycopg_pool.ConnectionPool` (opened in the background, so a database that is down
at start delays only the writer). The schema is created on first use under an advisory lock, so replicas
that start together don't race. Writes are idempotent by key (bot/store_schema.py): two replicas, or a batch
retried after a lost connection, never duplicate or lose a row.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
from datetime import datetime
from itertools import groupby
from pathlib import Path

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import ConnectionPool, PoolTimeout

from .errors import RowRejected, StoreError
from .store_rows import utc_text
from .store_schema import OUTCOME_COLUMNS, SCHEMA_VERSION, VOTE_COLUMNS, params, tables, writes

#: How long a write or read waits for a connection before the batch goes back to the queue.
CONNECT_TIMEOUT_S = 5.0
#: The advisory lock key under which the schema is created (any constant; "faqbot" in ASCII).
_SCHEMA_LOCK = 0x666171626F74
_WRITES = writes(lambda name: f"%({name})s")
_COLUMNS = {"outcomes": OUTCOME_COLUMNS, "votes": VOTE_COLUMNS}
_ORDER = {"outcomes": "created_at", "votes": "updated_at"}


def safe_url(url: str) -> str:
    """The URL without its password, for messages and logs."""
    try:
        parts = conninfo_to_dict(url)
    except psycopg.ProgrammingError as err:
        raise StoreError(f"FAQBOT_FEEDBACK_DB is not a valid PostgreSQL URL ({err}): use "
                         "postgresql://USER:PASSWORD@HOST:PORT/DATABASE") from err
    host = parts.get("host") or "localhost"
    return f"postgresql://{parts.get('user') or ''}@{host}:{parts.get('port') or 5432}/{parts.get('dbname') or ''}"


class PostgresBackend:
    """The store's tables in one PostgreSQL database (schema created on first use)."""

    def __init__(self, url: str) -> None:
        self.where = safe_url(url)
        self._ready = False
        self._ready_lock = threading.Lock()
        self._pool = ConnectionPool(url, min_size=1, max_size=4, open=False, name="faqbot-store")
        self._pool.open(wait=False)

    def spill_base(self) -> Path:
        """Where this database's overflow file goes: a temp folder (or FAQBOT_SPILL_DIR), one name per database."""
        folder = Path(os.environ.get("FAQBOT_SPILL_DIR") or tempfile.gettempdir())
        return folder / f"faqbot-store-{hashlib.sha256(self.where.encode()).hexdigest()[:12]}"

    def _explain(self, err: Exception) -> str:
        if isinstance(err, PoolTimeout):
            return (f"PostgreSQL at {self.where} did not accept a connection within {CONNECT_TIMEOUT_S:g}s: check "
                    "that it runs and that the URL, user and password in FAQBOT_FEEDBACK_DB are right")
        first = str(err).strip().splitlines()[0][:200] if str(err).strip() else type(err).__name__
        return f"PostgreSQL at {self.where} refused the operation ({first}): check the server log and the grants"

    def _ensure_schema(self) -> None:
        if self._ready:
            return
        with self._ready_lock:
            if self._ready:
                return
            try:
                with self._pool.connection(timeout=CONNECT_TIMEOUT_S) as conn, conn.transaction():
                    conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
                    for statement in tables("BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY", "TIMESTAMPTZ",
                                            "DOUBLE PRECISION"):
                        conn.execute(statement)
                    found = conn.execute("SELECT max(version) FROM schema_version").fetchone()[0]
                    if found is None:
                        conn.execute("INSERT INTO schema_version (version) VALUES (%s)", (SCHEMA_VERSION,))
                    elif found > SCHEMA_VERSION:
                        raise StoreError(f"PostgreSQL at {self.where} has store schema version {found}, newer than "
                                         f"this faqbot ({SCHEMA_VERSION}): upgrade faqbot on this replica")
            except (psycopg.Error, PoolTimeout) as err:
                raise StoreError(self._explain(err)) from err
            self._ready = True

    def write(self, items: list[tuple[str, dict]]) -> None:
        self._ensure_schema()
        try:
            with self._pool.connection(timeout=CONNECT_TIMEOUT_S) as conn, conn.transaction(), conn.cursor() as cur:
                for op, run in groupby(items, key=lambda item: item[0]):  # same-op runs, order kept
                    cur.executemany(_WRITES[op], [params(op, row) for _, row in run])
        except psycopg.errors.UndefinedTable as err:
            self._ready = False  # dropped while we ran: recreate on the next try
            raise StoreError(self._explain(err)) from err
        except (psycopg.DataError, psycopg.IntegrityError) as err:  # this data can never go in
            raise RowRejected(self._explain(err)) from err
        except (psycopg.Error, PoolTimeout) as err:
            raise StoreError(self._explain(err)) from err

    def rows(self, table: str, since: datetime | None) -> list[dict]:
        self._ensure_schema()
        columns = _COLUMNS[table]
        where = f" WHERE {_ORDER[table]} >= %(since)s" if since is not None else ""
        query = f"SELECT {', '.join(columns)} FROM {table}{where} ORDER BY {_ORDER[table]}, id"
        try:
            with self._pool.connection(timeout=CONNECT_TIMEOUT_S) as conn:
                found = conn.execute(query, {"since": since}).fetchall()
        except (psycopg.Error, PoolTimeout) as err:
            raise StoreError(self._explain(err)) from err
        rows = [dict(zip(columns, row, strict=True)) for row in found]
        for row in rows:
            for name in ("created_at", "updated_at"):
                if isinstance(row.get(name), datetime):
                    row[name] = utc_text(row[name])
        return rows

    def prune(self, cutoff: datetime) -> int:
        self._ensure_schema()
        try:
            with self._pool.connection(timeout=CONNECT_TIMEOUT_S) as conn, conn.transaction():
                gone = conn.execute("DELETE FROM outcomes WHERE created_at < %s", (cutoff,)).rowcount
                gone += conn.execute("DELETE FROM votes WHERE updated_at < %s", (cutoff,)).rowcount
        except (psycopg.Error, PoolTimeout) as err:
            raise StoreError(self._explain(err)) from err
        return gone

    def close(self) -> None:
        self._pool.close(timeout=5.0)
