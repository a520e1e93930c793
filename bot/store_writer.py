"""Writer: the store's write-behind queue and the ONE thread that commits it, so no caller ever waits.

`put` queues a checked row and returns a `Pending` at once. The thread commits the queue in batches of
`BATCH` (one transaction each), marks each `Pending` durable after the commit, and on a failure keeps the
batch and retries with growing delays, never dropping a row. Past `MAX_QUEUE` rows, and at close, rows go
to the spill file (bot/store_spill.py) and are replayed in order once the database takes writes again. A
row the database refuses as data is set aside (`.rejected.jsonl`) so it can't block the others. The thread
also prunes old rows when it starts and once a day. Log lines name the database and the key, never a
question.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

from .errors import RowRejected, StoreError
from .store_spill import Spill

if TYPE_CHECKING:
    from .store import Backend

logger = logging.getLogger("bot.store")

#: Rows committed in one transaction.
BATCH = 200
#: Rows held in memory before new ones overflow to the spill file.
MAX_QUEUE = 10_000
#: Retry delays after a failed batch grow from the first to the last value (seconds).
BACKOFF = (0.05, 2.0)
PRUNE_EVERY_S = 24 * 3600
#: While writes keep failing, the log says so again this often (seconds).
REMIND_EVERY_S = 300


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


def _describe(err: Exception) -> str:
    """An error without question text: our own messages, or the exception type and its first line."""
    if isinstance(err, StoreError):
        return str(err)
    return f"{type(err).__name__}: {str(err).splitlines()[0][:200] if str(err) else ''}"


class Writer:
    """The queue and the writer thread of one store (see the module docstring)."""

    def __init__(self, backend: Backend, spill: Spill, prune: Callable[[], int]) -> None:
        self.backend = backend
        self._spill = spill
        self._prune = prune
        self._queue: deque[tuple[str, dict, Pending]] = deque()
        self._cond = threading.Condition()
        self._stopping = False
        self._inflight = 0
        self._tickets = itertools.count(1)
        self._spilled: weakref.WeakValueDictionary[int, Pending] = weakref.WeakValueDictionary()
        self._thread = threading.Thread(target=self._run, name="faqbot-store-writer", daemon=True)
        self._thread.start()

    def put(self, op: str, row: dict) -> Pending:
        """Queue one checked row ("outcome", "vote" or "unvote"); returns at once."""
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

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything queued so far (spill file included) is committed; False after `timeout`."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._queue or self._inflight or self._spill.waiting():
                left = deadline - time.monotonic()
                if left <= 0 or not self._thread.is_alive():
                    return False
                self._cond.wait(min(left, 0.1))
        return True

    def close(self, timeout: float = 10.0) -> None:
        """Flush (up to `timeout`), stop the thread; rows still not written are kept in the spill file."""
        self.flush(timeout)
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self._thread.join(timeout=max(timeout, 1.0))
        with self._cond:
            left = [(op, row) for op, row, _ in self._queue]
            self._queue.clear()
        if left:
            self._spill.keep_first(left)
            logger.warning("feedback store: %s did not take %d rows before closing; they are kept in %s and "
                           "written when the bot next starts", self.backend.where, len(left), self._spill.path)
        self._spill.close()

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
                    self._prune()
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
