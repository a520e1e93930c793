"""Rows: what an outcome or a vote may hold, checked and completed before it is queued.

A bad row is refused here, in the caller's thread, with a message saying which field is wrong, so nothing
the database would refuse ever reaches the writer's queue. Text is kept as asked except for what no database
can store (NUL, lone surrogates); times are UTC ISO 8601 text in both backends.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime

from .errors import StoreError

#: Answer statuses an outcome may have (the same as `bot.answer.STATUSES`, kept here so the store stays light).
STATUSES = ("answered", "no_official_answer", "ambiguous", "no_match", "error")
RATINGS = ("up", "down")
REASONS = ("wrong", "outdated", "not_asked", "other", "")
_MAX_KEY = 200


def utc_text(moment: datetime) -> str:
    """The one timestamp format of both backends' rows: UTC ISO 8601 with microseconds and `Z`."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


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
