"""Spill: the overflow file of the store's write-behind queue, so a long database outage loses no row.

When the queue is full (or the store closes while the database is still away) rows are appended as JSON
lines to `<base>.spill-<pid>-<n>.jsonl` beside the SQLite file (for PostgreSQL: in a temp folder). The
writer replays them, oldest first, once the database takes writes again; a store that starts finds the
files of stores that are gone (a crash, a restart) and replays those first. Rows are idempotent by key, so
a replay that is cut short and repeated makes no duplicates.
"""

from __future__ import annotations

import itertools
import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

_INSTANCES = itertools.count(1)
#: Spill tokens of the stores open in this process, so two stores in one process never take each other's files.
_LIVE: set[str] = set()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _parse(text: str) -> dict | None:
    """One spilled row; None for a line cut short by a crash (it was never acknowledged)."""
    try:
        line = json.loads(text)
    except ValueError:
        return None
    return line if isinstance(line, dict) and "op" in line and "row" in line else None


class Spill:
    """The spill files of one store (see the module docstring); every method is thread-safe."""

    def __init__(self, base: Path) -> None:
        self.token = f"{os.getpid()}-{next(_INSTANCES)}"
        self._base = base.name
        self._prefix = base.name + ".spill-"
        self._dir = base.parent
        self.path = self._dir / f"{self._prefix}{self.token}.jsonl"
        self.active = False  # True while new rows must go to the file (to stay behind the rows already there)
        self._lock = threading.Lock()
        self._replays: list[tuple[int, Path]] = []
        _LIVE.add(self.token)
        self._claim_orphans()

    def _claim_orphans(self) -> None:
        """Take over the files of stores that no longer run, in the order they were written."""
        if not self._dir.is_dir():
            return
        for path in self._dir.glob(f"{self._prefix}*.jsonl"):
            owner, _, rest = path.name[len(self._prefix):-len(".jsonl")].partition(".replay-")
            pid = owner.split("-")[0]
            if owner in _LIVE or not pid.isdigit() or (int(pid) != os.getpid() and _alive(int(pid))):
                continue
            try:
                order = int(rest) if rest.isdigit() else path.stat().st_mtime_ns
                target = self._dir / f"{self._prefix}{self.token}.replay-{order}.jsonl"
                path.rename(target)
            except OSError:  # another store claimed it first
                continue
            self._replays.append((order, target))
        self._replays.sort()
        self.active = bool(self._replays)

    def append(self, op: str, row: dict, ticket: int) -> bool:
        """Add one row; True when this starts a new overflow (the caller logs it once)."""
        line = json.dumps({"op": op, "row": row, "owner": self.token, "ticket": ticket}, ensure_ascii=False)
        with self._lock:
            started = not self.active
            self.active = True
            self._dir.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as handle:
                handle.write(line + "\n")
        return started

    def waiting(self) -> bool:
        """True while rows wait in a spill file."""
        return self.active or bool(self._replays)

    def mine(self, line: dict) -> bool:
        return line.get("owner") == self.token

    def replay(self, size: int) -> Iterator[list[dict]]:
        """Chunks of at most `size` spilled rows, oldest first; a file is deleted after its last chunk is taken
        back (so a failure while writing a chunk keeps the file for the next try)."""
        with self._lock:
            if self.path.exists():
                order = time.time_ns()
                target = self._dir / f"{self._prefix}{self.token}.replay-{order}.jsonl"
                self.path.rename(target)
                self._replays.append((order, target))
        while self._replays:
            _, path = self._replays[0]
            with path.open(encoding="utf-8") as handle:
                lines = [line for line in map(_parse, handle) if line is not None]
            for start in range(0, len(lines), size):
                yield lines[start:start + size]
            path.unlink(missing_ok=True)
            self._replays.pop(0)
        with self._lock:
            if not self.path.exists():
                self.active = False

    def keep_first(self, items: list[tuple[str, dict]]) -> None:
        """At close: keep rows the database did not take, ahead of rows already spilled, for the next start."""
        with self._lock:
            order = time.time_ns()
            if self.path.exists():
                self.path.rename(self._dir / f"{self._prefix}{self.token}.replay-{order + 1}.jsonl")
            self._dir.mkdir(parents=True, exist_ok=True)
            with (self._dir / f"{self._prefix}{self.token}.replay-{order}.jsonl").open("w", encoding="utf-8") as f:
                for op, row in items:
                    f.write(json.dumps({"op": op, "row": row, "owner": ""}, ensure_ascii=False) + "\n")
                f.flush()
                os.fsync(f.fileno())

    def reject(self, op: str, row: dict) -> Path:
        """Keep a row the database refused as data, in `<base>.rejected.jsonl`, for a person to look at."""
        path = self._dir / f"{self._base}.rejected.jsonl"
        with self._lock:
            self._dir.mkdir(parents=True, exist_ok=True)
            with path.open("a", encoding="utf-8") as handle:
                handle.write(json.dumps({"op": op, "row": row}, ensure_ascii=False) + "\n")
        return path

    def close(self) -> None:
        _LIVE.discard(self.token)
