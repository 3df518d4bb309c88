"""Prometheus metrics, one CollectorRegistry per server so several can run in one process.

    grpc_server_handled_total{grpc_service, grpc_method, grpc_code}   calls by status code
    grpc_server_handling_seconds{grpc_service, grpc_method}          latency histogram
    decide_decisions_total{placement, campaign, variant, reason}     one per placement decided
    decide_ruleset_version                                            store version served
    decide_ruleset_loaded_timestamp_seconds                           when it was loaded
    decide_ruleset_reloads_total / decide_ruleset_reload_errors_total
    decide_events_total{type}                                         events in committed batches
    decide_events_duplicates_total                                    of those, already stored
    decide_exposures_total / decide_exposures_dropped_total           exposures written / dropped
    decide_activity_backfill_pending                                  profiles to back-fill

The gRPC names follow go-grpc-prometheus, so existing dashboards work. Decisions for a
placement the rules do not define are counted under ``placement="(unknown)"``: callers
choose placement ids, and one label value per typo would grow without bound.
"""

from __future__ import annotations

import threading
from bisect import bisect_left
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from decision import Decision, Reason

if TYPE_CHECKING:
    from decision.profile import Event
    from server.profiles.backfill import BackfillStatus

UNKNOWN_PLACEMENT_LABEL = "(unknown)"

_LATENCY_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
)  # fmt: skip


class _CallCounts(Collector):
    """``grpc_server_handled_total``, ``grpc_server_handling_seconds`` and
    ``decide_decisions_total``, counted in plain dicts and lists.

    prometheus_client's labelled metrics take a lock on every increment and observation;
    these three change on every call, always on the server's event loop thread, so they
    are kept here without locks (measured: 2.3 -> 0.6 us a three-placement Decide) and
    turned into metric families when scraped (``collect``, on the scraping thread). A
    scrape copies each container in one step under the GIL; a histogram read while a
    call is being counted may show its ``_count`` one ahead of its buckets.
    """

    def __init__(self) -> None:
        self.handled: dict[tuple[str, str], int] = {}  # (method, code) -> calls
        # method -> [bucket counts..., +Inf count, sum]
        self.latency: dict[str, list[float]] = {}
        self.decisions: dict[tuple[str, str, str, str], int] = {}

    def call(self, method: str, code: str, seconds: float) -> None:
        key = (method, code)
        handled = self.handled
        handled[key] = handled.get(key, 0) + 1
        row = self.latency.get(method)
        if row is None:
            row = self.latency[method] = [0.0] * (len(_LATENCY_BUCKETS) + 2)
        row[bisect_left(_LATENCY_BUCKETS, seconds)] += 1
        row[-1] += seconds

    def collect(self) -> Iterator[Metric]:
        handled = CounterMetricFamily(
            "grpc_server_handled",
            "RPCs completed on the server, by status code.",
            labels=["grpc_service", "grpc_method", "grpc_code"],
        )
        for (method, code), count in self.handled.copy().items():
            service, _, name = method.lstrip("/").rpartition("/")
            handled.add_metric([service, name, code], count)
        yield handled
        latency = HistogramMetricFamily(
            "grpc_server_handling_seconds",
            "Time to handle an RPC on the server.",
            labels=["grpc_service", "grpc_method"],
        )
        for method, row in self.latency.copy().items():
            row = list(row)
            service, _, name = method.lstrip("/").rpartition("/")
            cumulative = 0.0
            buckets = []
            for bound, in_bucket in zip((*_LATENCY_BUCKETS, float("inf")), row[:-1], strict=True):
                cumulative += in_bucket
                buckets.append((floatToGoString(bound), cumulative))  # type: ignore[no-untyped-call]
            latency.add_metric([service, name], buckets, row[-1])
        yield latency
        decisions = CounterMetricFamily(
            "decide_decisions",
            "Placement decisions made, by placement, campaign, variant and reason.",
            labels=["placement", "campaign", "variant", "reason"],
        )
        for labels, count in self.decisions.copy().items():
            decisions.add_metric(list(labels), count)
        yield decisions


class Metrics:
    """The server's metrics, registered in their own registry."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        # Per call: counted in plain dicts by the event loop, exported at scrape time
        # (see ``_CallCounts``).
        self._calls = _CallCounts()
        r.register(self._calls)
        self.ruleset_version = Gauge(
            "decide_ruleset_version", "Store version of the ruleset being served.", registry=r
        )
        self.ruleset_loaded = Gauge(
            "decide_ruleset_loaded_timestamp_seconds",
            "When the ruleset being served was loaded (Unix time).",
            registry=r,
        )
        self.reloads = Counter("decide_ruleset_reloads", "Successful ruleset reloads.", registry=r)
        self.reload_errors = Counter(
            "decide_ruleset_reload_errors",
            "Ruleset reloads that failed (the previous ruleset kept serving).",
            registry=r,
        )
        self.events = Counter(
            "decide_events",
            "Events in committed Track/TrackStream batches (duplicates included), by type.",
            ["type"],
            registry=r,
        )
        self.event_duplicates = Counter(
            "decide_events_duplicates",
            "Events whose event_id was already stored; they changed nothing.",
            registry=r,
        )
        self.exposures_written = Counter(
            "decide_exposures", "Campaign exposures written to the store.", registry=r
        )
        self.exposures_dropped = Counter(
            "decide_exposures_dropped",
            "Campaign exposures dropped because the writer fell behind (reports undercount).",
            registry=r,
        )
        self.backfill_pending = Gauge(
            "decide_activity_backfill_pending",
            "Stored profiles not yet completed with the activity the served rules read.",
            registry=r,
        )
        self._http: WSGIServer | None = None
        self._http_thread: threading.Thread | None = None

    def observe_call(self, method: str, code: str, seconds: float) -> None:
        """Count one finished RPC. ``method`` is the full ``/package.Service/Method``."""
        self._calls.call(method, code, seconds)

    def observe_decisions(self, decisions: list[Decision]) -> None:
        """Count the decisions of one Decide call."""
        counts = self._calls.decisions
        for d in decisions:
            key = (
                UNKNOWN_PLACEMENT_LABEL if d.reason is Reason.UNKNOWN_PLACEMENT else d.placement,
                d.campaign_id or "",
                d.variant_id or "",
                d.reason.value,
            )
            counts[key] = counts.get(key, 0) + 1

    def observe_events(self, events: Sequence[Event], duplicates: int) -> None:
        """Count one committed batch: its events by type, and its duplicates."""
        counts: dict[str, int] = {}
        for event in events:
            counts[event.type] = counts.get(event.type, 0) + 1
        for event_type, count in counts.items():
            self.events.labels(event_type).inc(count)
        if duplicates:
            self.event_duplicates.inc(duplicates)

    def observe_load(self, version: int, loaded_at: float) -> None:
        """Record a successful reload."""
        self.reloads.inc()
        self.ruleset_version.set(version)
        self.ruleset_loaded.set(loaded_at)

    def observe_reload_error(self) -> None:
        """Record a failed reload."""
        self.reload_errors.inc()

    def watch_backfill(self, status: Callable[[], BackfillStatus]) -> None:
        """Read the activity back-fill's pending count from ``status`` at each scrape."""
        self.backfill_pending.set_function(lambda: status().pending)

    def serve(self, port: int, host: str) -> int:
        """Start the HTTP endpoint on ``host:port`` (0: any free port); returns the port."""
        self._http, self._http_thread = start_http_server(port, addr=host, registry=self.registry)
        return int(self._http.server_port)

    def shutdown(self) -> None:
        """Stop the HTTP endpoint, if started. Idempotent."""
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            if self._http_thread is not None:
                self._http_thread.join(timeout=5)
            self._http = None
            self._http_thread = None
