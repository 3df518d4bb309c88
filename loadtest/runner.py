"""Run a load over one or more client processes, merge their results, show progress.

With one process the worker runs in this process's event loop. With several, each is a
``multiprocessing`` child (spawned, never forked: a forked gRPC runtime is unsafe); all
build their requests and connect first, then start together on a shared signal. Every
second each sends its interval counts, from which the progress line is drawn, and at
the end its encoded histograms, which are merged here.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import queue
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, TextIO

from loadtest.recording import (
    DONE,
    MEASURE,
    Interval,
    WorkerResult,
    merge,
    new_histogram,
    percentiles_ms,
)
from loadtest.worker import WorkerSpec, run_worker

READY_TIMEOUT = 120.0
"""Seconds child processes get to import, build their requests and report ready."""


class LoadRunError(RuntimeError):
    """A client process failed; the message says which and why."""


@dataclass
class RunSummary:
    """The merged measurement of one load run against one target."""

    target: str
    seconds: float
    calls: int
    calls_per_second: float
    latency_ms: dict[str, float]
    methods: dict[str, dict[str, Any]]
    errors: dict[str, int]
    client_cpu_percent: float
    unsent: int = 0
    max_lag_ms: float = 0.0
    server: dict[str, float] = field(default_factory=dict)
    """Filled in by the caller when it knows the server's processes: ``cpu_us_per_call``,
    ``cpu_percent``, ``rss_mb``."""

    def as_dict(self) -> dict[str, Any]:
        """The summary as plain JSON values."""
        return {
            "target": self.target,
            "seconds": round(self.seconds, 3),
            "calls": self.calls,
            "calls_per_second": round(self.calls_per_second, 1),
            "latency_ms": self.latency_ms,
            "methods": self.methods,
            "errors": self.errors,
            "client_cpu_percent": round(self.client_cpu_percent, 1),
            "unsent": self.unsent,
            "max_lag_ms": round(self.max_lag_ms, 3),
            "server": self.server,
        }


def summarize(target: str, results: list[WorkerResult]) -> RunSummary:
    """Merge the results of every client process into one summary."""
    seconds = max((r.elapsed for r in results), default=0.0)
    names = sorted({name for r in results for name in r.histograms})
    total = new_histogram()
    methods: dict[str, dict[str, Any]] = {}
    for name in names:
        histogram = merge([r.histograms[name] for r in results if name in r.histograms])
        total.add(histogram)
        calls = sum(r.calls.get(name, 0) for r in results)
        methods[name] = {
            "calls": calls,
            "calls_per_second": round(calls / seconds, 1) if seconds else 0.0,
            "errors": sum(r.errors_by_method.get(name, 0) for r in results),
            "latency_ms": percentiles_ms(histogram),
        }
    errors: dict[str, int] = {}
    for r in results:
        for code, count in r.errors.items():
            errors[code] = errors.get(code, 0) + count
    calls = sum(sum(r.calls.values()) for r in results)
    cpu = sum(r.cpu_seconds for r in results)
    return RunSummary(
        target=target,
        seconds=seconds,
        calls=calls,
        calls_per_second=calls / seconds if seconds else 0.0,
        latency_ms=percentiles_ms(total),
        methods=methods,
        errors=dict(sorted(errors.items())),
        client_cpu_percent=100 * cpu / seconds if seconds else 0.0,
        unsent=sum(r.unsent for r in results),
        max_lag_ms=1000 * max((r.max_lag for r in results), default=0.0),
    )


class ProgressLine:
    """The live line on stderr: phase, elapsed seconds, calls/s, p99, errors.

    On a terminal the line is redrawn in place; otherwise one line per second is
    written, which keeps logs readable.
    """

    def __init__(self, label: str, processes: int, stream: TextIO | None = None) -> None:
        self.label = label
        self.processes = processes
        self.stream = stream if stream is not None else sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._pending: dict[int, list[Interval]] = {}
        self._drawn = False

    def add(self, interval: Interval) -> None:
        """One process's second; the line is drawn once every process reported it."""
        batch = self._pending.setdefault(interval.index, [])
        batch.append(interval)
        if len(batch) >= self.processes:
            del self._pending[interval.index]
            self._draw(interval.index, batch)

    def _draw(self, index: int, batch: list[Interval]) -> None:
        calls = sum(i.calls for i in batch)
        errors = sum(i.errors for i in batch)
        p99 = percentiles_ms(merge([i.histogram for i in batch]))["p99"]
        phase = "warm-up" if all(i.phase != MEASURE for i in batch) else "measuring"
        if any(i.phase == DONE for i in batch):
            phase = "finishing"
        line = (
            f"{self.label} [{index:4d}s {phase:9s}] {calls:8,d} calls/s  "
            f"p99 {p99:8.2f} ms  errors {errors:,d}"
        )
        if self.tty:
            self.stream.write("\r" + line + "\x1b[K")
        else:
            self.stream.write(line + "\n")
        self.stream.flush()
        self._drawn = True

    def close(self) -> None:
        """End the line (on a terminal) so the report starts on its own line."""
        if self.tty and self._drawn:
            self.stream.write("\n")
            self.stream.flush()


PhaseHook = Callable[[str], None]


def run_load(
    spec: WorkerSpec,
    processes: int = 1,
    progress: ProgressLine | None = None,
    on_phase: PhaseHook | None = None,
) -> RunSummary:
    """Run ``spec`` in ``processes`` client processes (an open-loop rate is split between
    them) and return the merged summary. ``on_phase`` hears MEASURE when the first
    process starts measuring and DONE when the last one stops."""
    if processes < 1:
        raise ValueError(f"processes must be >= 1, got {processes}")
    add = progress.add if progress is not None else None
    try:
        if processes == 1:
            results = [asyncio.run(run_worker(spec, add, on_phase))]
        else:
            results = _run_children(spec, processes, add, on_phase)
    finally:
        if progress is not None:
            progress.close()
    return summarize(spec.target, results)


def measure(
    spec: WorkerSpec,
    processes: int = 1,
    progress: ProgressLine | None = None,
    server_pids: Callable[[], list[int]] | None = None,
) -> RunSummary:
    """``run_load``, and when ``server_pids`` names the server's processes, their CPU per
    call and share of a core, and their resident memory, over the measurement phase."""
    from loadtest.targets import cpu_seconds, rss_bytes

    marks: dict[str, tuple[float, float, int]] = {}

    def on_phase(phase: str) -> None:
        if server_pids is not None:
            pids = server_pids()
            marks[phase] = (time.perf_counter(), cpu_seconds(pids), rss_bytes(pids))

    summary = run_load(spec, processes, progress, on_phase)
    if MEASURE in marks and DONE in marks and summary.calls:
        (t0, cpu0, rss0), (t1, cpu1, rss1) = marks[MEASURE], marks[DONE]
        summary.server = {
            "cpu_us_per_call": round((cpu1 - cpu0) * 1e6 / summary.calls, 1),
            "cpu_percent": round(100 * (cpu1 - cpu0) / (t1 - t0), 1),
            "rss_mb_start": round(rss0 / 2**20, 1),
            "rss_mb_end": round(rss1 / 2**20, 1),
        }
    return summary


def _child(spec: WorkerSpec, messages: Any, go: Any) -> None:
    """A client process: get ready, wait for the common start, run, send the result."""
    try:
        from loadtest.workload import call_source

        call_source(spec.workload, seed=spec.workload.seed, prefix="probe")  # warm imports
        messages.put(("ready", spec.index, None))
        if not go.wait(READY_TIMEOUT):
            return
        result = asyncio.run(
            run_worker(
                spec,
                lambda interval: messages.put(("interval", spec.index, interval)),
                lambda phase: messages.put(("phase", spec.index, phase)),
            )
        )
        messages.put(("result", spec.index, result))
    except BaseException as exc:  # noqa: BLE001  # report it: never leave the parent waiting
        messages.put(("error", spec.index, f"{type(exc).__name__}: {exc}"))


def _run_children(
    spec: WorkerSpec,
    processes: int,
    progress: Callable[[Interval], None] | None,
    on_phase: PhaseHook | None,
) -> list[WorkerResult]:
    context = multiprocessing.get_context("spawn")
    messages = context.Queue()
    go = context.Event()
    rate = spec.rate / processes if spec.rate is not None else None
    children = [
        context.Process(
            target=_child,
            args=(replace(spec, index=i, rate=rate), messages, go),
            name=f"decide-loadtest-{i}",
            daemon=True,
        )
        for i in range(processes)
    ]
    for child in children:
        child.start()
    results: dict[int, WorkerResult] = {}
    ready: set[int] = set()
    phases: dict[str, set[int]] = {MEASURE: set(), DONE: set()}
    deadline = time.monotonic() + READY_TIMEOUT + spec.warmup + spec.duration + spec.timeout + 30
    try:
        while len(results) < processes:
            try:
                kind, index, payload = messages.get(timeout=1.0)
            except queue.Empty:
                dead = [c for c in children if not c.is_alive() and c.exitcode not in (0, None)]
                if dead:
                    raise LoadRunError(
                        f"client process {dead[0].name} died (exit {dead[0].exitcode})"
                    )
                if time.monotonic() > deadline:
                    raise LoadRunError("client processes did not finish in time") from None
                continue
            if kind == "ready":
                ready.add(index)
                if len(ready) == processes:
                    go.set()
            elif kind == "interval" and progress is not None:
                progress(payload)
            elif kind == "phase":
                phases[payload].add(index)
                if on_phase is not None and (
                    (payload == MEASURE and len(phases[MEASURE]) == 1)
                    or (payload == DONE and len(phases[DONE]) == processes)
                ):
                    on_phase(payload)
            elif kind == "result":
                results[index] = payload
            elif kind == "error":
                raise LoadRunError(f"client process {index} failed: {payload}")
    finally:
        go.set()
        for child in children:
            child.join(timeout=10)
            if child.is_alive():
                child.terminate()
                child.join(timeout=5)
    return [results[i] for i in range(processes)]
