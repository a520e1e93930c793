"""Schema: the tables and the idempotent writes both store backends run, written once for SQLite and PostgreSQL.

Each backend fills in its own column types (`ID`, `TIME`, `REAL`) and parameter style. Writes are
idempotent by `key`: an outcome is inserted once (a retry does nothing), a vote is an upsert that only a
newer change may overwrite, and an un-vote deletes the vote unless a newer one arrived in between.
"""

from __future__ import annotations

from collections.abc import Callable

#: The schema both backends create; bump it (and add a migration) when a table changes.
SCHEMA_VERSION = 1

OUTCOME_FIELDS = ("key", "created_at", "session", "lang", "question", "status", "entry_id", "confidence", "margin",
                  "top", "build")
VOTE_FIELDS = ("key", "created_at", "updated_at", "session", "rating", "reason", "comment", "question", "entry_id",
               "lang", "confidence", "status")

#: Columns as read back (`id` first).
OUTCOME_COLUMNS = ("id", *OUTCOME_FIELDS)
VOTE_COLUMNS = ("id", *VOTE_FIELDS)

_TABLES = """
CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS outcomes (
    id {ID},
    key TEXT NOT NULL UNIQUE,
    created_at {TIME} NOT NULL,
    session TEXT NOT NULL DEFAULT '',
    lang TEXT NOT NULL DEFAULT '',
    question TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL,
    entry_id TEXT NOT NULL DEFAULT '',
    confidence {REAL},
    margin {REAL},
    top TEXT NOT NULL DEFAULT '[]',
    build TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS outcomes_created_at ON outcomes (created_at);
CREATE TABLE IF NOT EXISTS votes (
    id {ID},
    key TEXT NOT NULL UNIQUE,
    created_at {TIME} NOT NULL,
    updated_at {TIME} NOT NULL,
    session TEXT NOT NULL DEFAULT '',
    rating TEXT NOT NULL CHECK (rating IN ('up', 'down')),
    reason TEXT NOT NULL DEFAULT '',
    comment TEXT NOT NULL DEFAULT '',
    question TEXT NOT NULL DEFAULT '',
    entry_id TEXT NOT NULL DEFAULT '',
    lang TEXT NOT NULL DEFAULT '',
    confidence {REAL},
    status TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS votes_updated_at ON votes (updated_at);
"""


def tables(id_type: str, time_type: str, real_type: str) -> list[str]:
    """The CREATE statements (each idempotent) with the backend's column types."""
    text = _TABLES.format(ID=id_type, TIME=time_type, REAL=real_type)
    return [s.strip() for s in text.split(";") if s.strip()]


def writes(param: Callable[[str], str]) -> dict[str, str]:
    """The statement for each write op ("outcome", "vote", "unvote"), with `param(name)` as placeholders."""
    def values(fields: tuple[str, ...]) -> str:
        return ", ".join(param(f) for f in fields)

    changed = ", ".join(f"{f} = excluded.{f}" for f in VOTE_FIELDS if f not in ("key", "created_at"))
    return {
        "outcome": f"INSERT INTO outcomes ({', '.join(OUTCOME_FIELDS)}) VALUES ({values(OUTCOME_FIELDS)}) "
                   "ON CONFLICT (key) DO NOTHING",
        "vote": f"INSERT INTO votes ({', '.join(VOTE_FIELDS)}) VALUES ({values(VOTE_FIELDS)}) "
                f"ON CONFLICT (key) DO UPDATE SET {changed} WHERE votes.updated_at <= excluded.updated_at",
        "unvote": f"DELETE FROM votes WHERE key = {param('key')} AND updated_at <= {param('updated_at')}",
    }


def params(op: str, row: dict) -> dict:
    """The named parameters `writes()[op]` takes from a stored row."""
    if op == "outcome":
        return {f: row[f] for f in OUTCOME_FIELDS}
    if op == "vote":
        return {f: row[f] for f in VOTE_FIELDS}
    return {"key": row["key"], "updated_at": row["updated_at"]}
