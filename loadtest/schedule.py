"""The open-loop schedule, and latency measured from when a call was meant to start.

A closed-loop tester sends the next call only when one returns, so when the server
stalls it simply stops sending and the stall shows up as one slow call: the "coordinated
omission" of latency (Gil Tene). An open-loop tester has a timetable instead: call i is
due at ``start + i / rate`` whatever happened before. When the client falls behind
(the server stalled, or the client was starved of CPU) the overdue calls go out in a
burst, and each call's latency counts from its *intended* time, so the wait it spent
queued behind the stall is part of its latency, as it would be for a real user who
arrived on time.
"""

from __future__ import annotations

import math


class OpenLoopSchedule:
    """Intended start times ``start + i / rate`` for i = 0, 1, 2, ...

    ``due(now)`` hands out every intended time that has come, in order, each once.
    Times are in seconds on any monotonic clock the caller uses consistently.
    """

    def __init__(self, rate: float, start: float) -> None:
        if not rate > 0:
            raise ValueError(f"the rate must be > 0 calls/s, got {rate}")
        self.rate = rate
        self.start = start
        self.sent = 0

    def intended(self, index: int) -> float:
        """When call ``index`` is meant to start."""
        return self.start + index / self.rate

    @property
    def next_time(self) -> float:
        """The intended time of the next call not yet handed out."""
        return self.intended(self.sent)

    def due(self, now: float) -> list[float]:
        """The intended times of every call due by ``now`` not yet handed out."""
        times = []
        while (when := self.intended(self.sent)) <= now:
            times.append(when)
            self.sent += 1
        return times

    def pending_before(self, until: float, since: float | None = None) -> int:
        """How many calls not yet handed out are due before ``until`` (and, when given, at
        or after ``since``): the calls a stalled sender never got to send."""
        first = self.sent
        if since is not None:
            first = max(first, math.ceil((since - self.start) * self.rate))
        end = math.ceil((until - self.start) * self.rate)
        return max(0, end - first)


def latency_us(intended: float, completed: float) -> int:
    """A call's latency in whole microseconds, counted from its intended start (at least 1,
    the smallest value the histogram records)."""
    return max(1, round((completed - intended) * 1_000_000))
