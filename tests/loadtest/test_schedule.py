"""The open-loop schedule: latency counts from the intended start, not the actual send."""

from __future__ import annotations

import asyncio
import time

import pytest

from loadtest.recording import decode, percentiles_ms
from loadtest.schedule import OpenLoopSchedule, latency_us
from loadtest.worker import WorkerSpec, run_worker
from loadtest.workload import Call, WorkloadSpec


class TestOpenLoopSchedule:
    def test_calls_are_due_at_start_plus_i_over_rate(self):
        """At 10 calls/s from t=100, the calls due by t=100.25 are those of 100.0-100.2."""
        schedule = OpenLoopSchedule(rate=10, start=100.0)

        assert [100.0, 100.1, 100.2] == pytest.approx(schedule.due(100.25))
        assert [] == schedule.due(100.25)

    def test_a_stalled_sender_gets_the_overdue_calls_with_their_own_times(self):
        """After a stall the overdue calls come out in a burst, each still carrying the
        time it was meant to start: that is what makes the latency honest."""
        schedule = OpenLoopSchedule(rate=10, start=0.0)
        schedule.due(0.0)
        overdue = schedule.due(0.5)  # the sender was stuck from 0.0 to 0.5

        assert [0.1, 0.2, 0.3, 0.4, 0.5] == pytest.approx(overdue)
        assert [400_000, 300_000, 200_000, 100_000, 1] == [
            latency_us(intended, 0.5) for intended in overdue
        ]

    def test_pending_before_counts_calls_never_handed_out(self):
        """Calls due before the end but never handed out are counted (from ``since``)."""
        schedule = OpenLoopSchedule(rate=10, start=0.0)
        schedule.due(0.25)  # 0.0, 0.1, 0.2 handed out

        assert 7 == schedule.pending_before(1.0)
        assert 5 == schedule.pending_before(1.0, since=0.5)

    def test_rate_must_be_positive(self):
        """A zero rate is refused."""
        with pytest.raises(ValueError):
            OpenLoopSchedule(rate=0, start=0.0)


class TestOpenLoopWorker:
    def test_a_stall_shows_in_the_latency_of_every_call_queued_behind_it(self):
        """One call stalls 300 ms with one call allowed in flight: the ~30 calls due
        meanwhile are sent late, and each is recorded as late from its intended time
        (measured from the send, they would all look fast)."""
        spec = WorkerSpec(
            target="unused",
            workload=WorkloadSpec(visitors=10, placements=("a",)),
            warmup=0.0,
            duration=1.0,
            rate=100.0,
            max_in_flight=1,
        )
        calls = 0

        async def sender(i: int, call: Call) -> str | None:
            nonlocal calls
            calls += 1
            await asyncio.sleep(0.3 if calls == 20 else 0.0)
            return None

        started = time.perf_counter()
        result = asyncio.run(run_worker(spec, sender=sender))
        latency = percentiles_ms(decode(result.histograms["Decide"]))
        histogram = decode(result.histograms["Decide"])
        slow = sum(
            item.count_at_value_iterated_to
            for item in histogram.get_recorded_iterator()
            if item.value_iterated_to >= 100_000
        )

        assert time.perf_counter() - started < 3
        assert 95 <= result.calls["Decide"] <= 101
        assert latency["max"] >= 290
        assert latency["p90"] >= 100
        assert 15 <= slow <= 25
        assert result.max_lag >= 0.25
