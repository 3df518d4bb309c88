"""Latency histograms (HDR), call and error counts, and merging them across processes.

Latencies are recorded in microseconds into ``hdrh`` histograms (HdrHistogram: fixed
memory, 3 significant digits over 1 us .. 1 h). A histogram crosses a process boundary
in its compressed wire encoding, and merging is adding counts, so the percentiles of a
multi-process run are those of every call, not an average of per-process percentiles.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from hdrh.histogram import HdrHistogram

LOWEST_US = 1
HIGHEST_US = 3_600_000_000
SIGNIFICANT_DIGITS = 3

PERCENTILES = (50.0, 90.0, 99.0, 99.9)

WARMUP = "warmup"
MEASURE = "measure"
DONE = "done"


def new_histogram() -> HdrHistogram:
    """An empty latency histogram in microseconds."""
    return HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_DIGITS)


def decode(encoded: bytes) -> HdrHistogram:
    """A histogram from its ``encode()`` form."""
    histogram = new_histogram()
    histogram.decode_and_add(encoded)
    return histogram


def merge(encoded: list[bytes]) -> HdrHistogram:
    """One histogram holding the counts of every encoded histogram."""
    merged = new_histogram()
    for item in encoded:
        if item:
            merged.decode_and_add(item)
    return merged


def percentiles_ms(histogram: HdrHistogram) -> dict[str, float]:
    """p50/p90/p99/p99.9, mean and max in milliseconds (0.0 for an empty histogram)."""
    if histogram.get_total_count() == 0:
        return {**{_label(p): 0.0 for p in PERCENTILES}, "mean": 0.0, "max": 0.0}
    values = {_label(p): histogram.get_value_at_percentile(p) / 1000 for p in PERCENTILES}
    values["mean"] = histogram.get_mean_value() / 1000
    values["max"] = histogram.get_max_value() / 1000
    return {key: round(value, 3) for key, value in values.items()}


def _label(percentile: float) -> str:
    return f"p{percentile:g}"


@dataclass
class Interval:
    """One second of one process, for the progress line: every phase is counted."""

    index: int
    phase: str
    calls: int
    errors: int
    histogram: bytes


@dataclass
class WorkerResult:
    """What one client process measured during the measurement phase."""

    histograms: dict[str, bytes] = field(default_factory=dict)
    """Encoded latency histogram per method name (``Decide``, ``Track``)."""
    calls: dict[str, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    """Failed calls by status code name."""
    errors_by_method: dict[str, int] = field(default_factory=dict)
    elapsed: float = 0.0
    """Seconds the measurement phase lasted."""
    cpu_seconds: float = 0.0
    """CPU time this process used during the measurement phase."""
    unsent: int = 0
    """Open loop: calls due within the measurement phase that were never sent because
    ``max_in_flight`` calls were already outstanding."""
    max_lag: float = 0.0
    """Open loop: the most the sender was ever behind its timetable, in seconds."""


class Recorder:
    """Counts calls of the current phase; not thread-safe (one event loop owns it)."""

    def __init__(self) -> None:
        self.phase = WARMUP
        self.histograms: dict[str, HdrHistogram] = {}
        self.calls: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        self.errors_by_method: Counter[str] = Counter()
        self.interval = new_histogram()
        self.interval_calls = 0
        self.interval_errors = 0

    def record(self, name: str, micros: int, code: str | None, phase: str | None = None) -> None:
        """One finished call: ``code`` is None on success, else the status code name.

        ``phase`` overrides the current phase (the open loop files a call under the phase
        of its intended start).
        """
        micros = min(max(micros, LOWEST_US), HIGHEST_US)
        self.interval.record_value(micros)
        self.interval_calls += 1
        if code is not None:
            self.interval_errors += 1
        if (phase or self.phase) != MEASURE:
            return
        histogram = self.histograms.get(name)
        if histogram is None:
            histogram = self.histograms[name] = new_histogram()
        histogram.record_value(micros)
        self.calls[name] += 1
        if code is not None:
            self.errors[code] += 1
            self.errors_by_method[name] += 1

    def take_interval(self, index: int) -> Interval:
        """The counts since the last call, reset for the next second."""
        interval = Interval(
            index, self.phase, self.interval_calls, self.interval_errors, self.interval.encode()
        )
        self.interval.reset()
        self.interval_calls = 0
        self.interval_errors = 0
        return interval

    def result(self, elapsed: float, cpu_seconds: float) -> WorkerResult:
        """The measurement phase's results, encoded for another process."""
        return WorkerResult(
            histograms={name: h.encode() for name, h in self.histograms.items()},
            calls=dict(self.calls),
            errors=dict(self.errors),
            errors_by_method=dict(self.errors_by_method),
            elapsed=elapsed,
            cpu_seconds=cpu_seconds,
        )
