"""Pool: the service's workers and the one queue of questions waiting for them (used by `bot.service`).

Answers are served in the order they asked. A question asked only to store a vote waits while any answer
waits, so a burst of votes never overtakes answers; it uses at most all workers but one, and after
`VOTE_YIELD_S` it takes its turn at the end of the answers' queue, so votes are delayed, never starved.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .answer import FaqBot

#: How long a question asked only for a vote lets answers go first before it takes its turn with them.
VOTE_YIELD_S = 1.0


class Pool:
    """The workers and the one queue of questions waiting for them (see the module docstring).

    Answers are served in the order they asked. A borrower `for_vote` is served only when no answer waits, on
    at most `vote_share` workers at once (all but one, at least one); after `VOTE_YIELD_S` of waiting it joins
    the answers' queue at its end, so votes are delayed, never starved. A returned worker is handed straight to
    the next waiter (one thread woken, not all of them).
    """

    def __init__(self, workers: list[FaqBot]) -> None:
        self._free = list(workers)
        self.vote_share = max(1, len(workers) - 1)
        self._lock = threading.Lock()
        self._answers: deque[_Waiter] = deque()
        self._votes: deque[_Waiter] = deque()
        self.votes_lent = 0

    @property
    def answers_waiting(self) -> int:
        return len(self._answers)

    @property
    def votes_waiting(self) -> int:
        return len(self._votes)

    @contextmanager
    def borrow(self, for_vote: bool = False) -> Iterator[FaqBot]:
        """A worker for the `with` block (given back after it, even if `use` swapped the service's pool)."""
        worker = self._take(for_vote)
        try:
            yield worker
        finally:
            self._give_back(worker, for_vote)

    def _take(self, for_vote: bool) -> FaqBot:
        waiter = _Waiter(for_vote)
        with self._lock:
            if self._free and not self._answers and (not for_vote or (not self._votes and self._vote_room())):
                self.votes_lent += for_vote
                return self._free.pop()
            (self._votes if for_vote else self._answers).append(waiter)
        if for_vote and not waiter.ready.wait(VOTE_YIELD_S):
            with self._lock:
                if waiter.worker is None:  # waited long enough: from now on, in line with the answers
                    self._votes.remove(waiter)
                    self._answers.append(waiter)
        waiter.ready.wait()
        return waiter.worker  # type: ignore[return-value]  # set before `ready`

    def _give_back(self, worker: FaqBot, for_vote: bool) -> None:
        with self._lock:
            self.votes_lent -= for_vote
            if self._answers:
                waiter = self._answers.popleft()
            elif self._votes and self._vote_room():
                waiter = self._votes.popleft()
            else:
                self._free.append(worker)
                return
            self.votes_lent += waiter.for_vote
            waiter.worker = worker
        waiter.ready.set()

    def _vote_room(self) -> bool:
        return self.votes_lent < self.vote_share


class _Waiter:
    """One borrower waiting in the pool's queue: woken once a worker is handed to it."""

    __slots__ = ("for_vote", "ready", "worker")

    def __init__(self, for_vote: bool) -> None:
        self.for_vote = for_vote
        self.ready = threading.Event()
        self.worker: FaqBot | None = None
