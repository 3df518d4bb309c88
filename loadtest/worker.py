"""One client process: an asyncio loop driving gRPC calls, closed or open loop.

Calls go through ``grpc.aio`` multi-callables without serializers: the request is
pre-serialized bytes and the response stays bytes, so the client pays for the
transport and nothing else. Each of ``connections`` channels opens its own TCP
connection (a local subchannel pool; by default channels with equal arguments share
one), which is what spreads calls over the processes of a ``--processes`` server:
the kernel balances SO_REUSEPORT listeners per connection, not per call.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import grpc

from loadtest.recording import DONE, MEASURE, WARMUP, Interval, Recorder, WorkerResult
from loadtest.schedule import OpenLoopSchedule, latency_us
from loadtest.workload import VISITOR_PREFIX, Call, WorkloadSpec, call_source

API_KEY_KEY = "x-api-key"

STALL_LIMIT = 1.0
"""Open loop: seconds past the end of the window after which calls still waiting for a
free slot are given up (and reported as unsent) rather than sent."""

Progress = Callable[[Interval], None]
Sender = Callable[[int, Call], Awaitable[str | None]]
"""Sends one call on connection ``i``; returns None on success, else the status code name."""


@dataclass(frozen=True, slots=True)
class WorkerSpec:
    """Everything one client process needs; picklable, so it can cross a spawn."""

    target: str
    workload: WorkloadSpec
    warmup: float
    duration: float
    concurrency: int = 16
    rate: float | None = None
    """Open loop: this process's target calls per second; None: closed loop."""
    connections: int = 4
    timeout: float = 5.0
    api_key: str | None = None
    max_in_flight: int = 1000
    index: int = 0
    run_id: str = "run"
    options: tuple[tuple[str, Any], ...] = field(default=())


def grpc_sender(spec: WorkerSpec) -> tuple[Sender, Callable[[], Awaitable[None]]]:
    """A sender over ``spec.connections`` channels, and a coroutine function closing them."""
    options = [("grpc.use_local_subchannel_pool", 1), *spec.options]
    channels = [
        grpc.aio.insecure_channel(spec.target, options=options) for _ in range(spec.connections)
    ]
    callables: dict[str, list[Any]] = {}
    metadata = ((API_KEY_KEY, spec.api_key),) if spec.api_key else None
    timeout = spec.timeout
    error = grpc.aio.AioRpcError

    async def send(i: int, call: Call) -> str | None:
        stubs = callables.get(call.method)
        if stubs is None:
            stubs = callables[call.method] = [c.unary_unary(call.method) for c in channels]
        try:
            await stubs[i % len(stubs)](call.payload, timeout=timeout, metadata=metadata)
        except error as exc:
            return str(exc.code().name)
        return None

    async def close() -> None:
        await asyncio.gather(*(channel.close() for channel in channels))

    return send, close


async def run_worker(
    spec: WorkerSpec,
    progress: Progress | None = None,
    on_phase: Callable[[str], None] | None = None,
    sender: Sender | None = None,
) -> WorkerResult:
    """Warm up, measure for ``spec.duration`` seconds, and return what was measured.

    ``progress`` gets one ``Interval`` per second; ``on_phase`` is told when the
    measurement phase starts and ends. ``sender`` replaces the gRPC transport (tests).
    """
    next_call = call_source(
        spec.workload,
        seed=spec.workload.seed + 1000 * spec.index,
        prefix=f"{VISITOR_PREFIX}{spec.run_id}-{spec.index}",
    )
    close: Callable[[], Awaitable[None]] | None = None
    if sender is None:
        sender, close = grpc_sender(spec)
    recorder = Recorder()
    try:
        if spec.rate is None:
            return await _closed_loop(spec, sender, next_call, recorder, progress, on_phase)
        return await _open_loop(spec, sender, next_call, recorder, progress, on_phase)
    finally:
        if close is not None:
            await close()


async def _ticker(recorder: Recorder, progress: Progress | None) -> None:
    index = 0
    while True:
        await asyncio.sleep(1.0)
        index += 1
        interval = recorder.take_interval(index)
        if progress is not None:
            progress(interval)


async def _phases(
    spec: WorkerSpec, recorder: Recorder, on_phase: Callable[[str], None] | None
) -> tuple[float, float]:
    """Run the warm-up and measurement clocks; returns (elapsed, cpu seconds) measured."""
    if spec.warmup > 0:
        await asyncio.sleep(spec.warmup)
    recorder.phase = MEASURE
    if on_phase is not None:
        on_phase(MEASURE)
    started, cpu = time.perf_counter(), time.process_time()
    await asyncio.sleep(spec.duration)
    recorder.phase = DONE
    elapsed, used = time.perf_counter() - started, time.process_time() - cpu
    if on_phase is not None:
        on_phase(DONE)
    return elapsed, used


async def _closed_loop(
    spec: WorkerSpec,
    send: Sender,
    next_call: Callable[[], Call],
    recorder: Recorder,
    progress: Progress | None,
    on_phase: Callable[[str], None] | None,
) -> WorkerResult:
    running = True
    clock = time.perf_counter_ns

    async def lane(i: int) -> None:
        record = recorder.record
        while running:
            call = next_call()
            start = clock()
            code = await send(i, call)
            record(call.name, (clock() - start) // 1000, code)

    lanes = [asyncio.create_task(lane(i)) for i in range(spec.concurrency)]
    ticker = asyncio.create_task(_ticker(recorder, progress))
    try:
        elapsed, cpu = await _phases(spec, recorder, on_phase)
        running = False
        await asyncio.gather(*lanes)  # each finishes its call in flight (bounded by timeout)
    finally:
        ticker.cancel()
        for task in lanes:
            task.cancel()
    return recorder.result(elapsed, cpu)


async def _open_loop(
    spec: WorkerSpec,
    send: Sender,
    next_call: Callable[[], Call],
    recorder: Recorder,
    progress: Progress | None,
    on_phase: Callable[[str], None] | None,
) -> WorkerResult:
    assert spec.rate is not None
    loop = asyncio.get_running_loop()
    now = loop.time
    schedule = OpenLoopSchedule(spec.rate, now())
    measure_from = schedule.start + spec.warmup
    measure_until = measure_from + spec.duration
    slots = asyncio.Semaphore(spec.max_in_flight)
    in_flight: set[asyncio.Task[None]] = set()
    counter = 0
    unsent = 0
    max_lag = 0.0

    async def one(i: int, call: Call, intended: float, phase: str) -> None:
        try:
            code = await send(i, call)
            recorder.record(call.name, latency_us(intended, now()), code, phase)
        finally:
            slots.release()

    ticker = asyncio.create_task(_ticker(recorder, progress))
    phases = asyncio.create_task(_phases(spec, recorder, on_phase))
    try:
        stalled = False
        while not stalled and schedule.next_time < measure_until:
            t = now()
            due = [when for when in schedule.due(t) if when < measure_until]
            if due:
                max_lag = max(max_lag, t - due[0])
            for k, intended in enumerate(due):
                # Waiting for a slot delays the send, not the intended time: the wait is
                # part of the latency recorded for this call and every overdue one after it.
                await slots.acquire()
                if now() >= measure_until + STALL_LIMIT:
                    slots.release()
                    unsent += sum(1 for when in due[k:] if when >= measure_from)
                    stalled = True
                    break
                phase = MEASURE if intended >= measure_from else WARMUP
                task = asyncio.create_task(one(counter, next_call(), intended, phase))
                counter += 1
                in_flight.add(task)
                task.add_done_callback(in_flight.discard)
            await asyncio.sleep(max(0.0, min(schedule.next_time, measure_until) - now()))
        unsent += schedule.pending_before(measure_until, since=measure_from)
        elapsed, cpu = await phases
        if in_flight:  # calls due in the window are measured to the end, however late
            await asyncio.wait(in_flight, timeout=spec.timeout + 1)
    finally:
        ticker.cancel()
        phases.cancel()
        for task in in_flight:
            task.cancel()
    result = recorder.result(elapsed, cpu)
    result.unsent = unsent
    result.max_lag = max_lag
    return result
