"""``decisioning.v1.InsightsService``: campaign and segment reports, estimates, exports.

Counting lives in ``server.analytics.attribution`` (exposures x events) and ``server.analytics.scans``
(filters over stored profiles); the statistics in ``insights`` (pure). This module
checks requests, fills in defaults, picks the weights a campaign's split is checked
against, and converts ``insights.model`` values to proto messages and back
(the client converts responses back: ``client._insights``).

Segment sizes over time come from daily snapshots: ``SizeSnapshots`` (a background
thread of the server) counts every segment's stored profiles once per UTC day into
``segment_sizes(day, segment_id, size, profiles, taken_at, ruleset_version)``. That is
the size the segment had, as it was defined that day; days before the first snapshot
(or when no server ran) are simply absent, never interpolated.
"""

from __future__ import annotations

import json
import logging
import math
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import timestamp_pb2

import decision
from decision import BUCKETS, Campaign, InvalidRequestError, Problem, Ruleset
from insights import (
    VariantCounts,
    VariantResult,
    analyze_campaign,
)
from protos import decisioning_pb2 as pb
from protos import decisioning_pb2_grpc as pb_grpc
from server.analytics import attribution, estimates
from server.analytics import scans as audiences
from server.analytics.exposures import HOLDOUT_VARIANT, ExposureRecorder
from server.analytics.scan_pool import ScanPool
from server.api.status import handles_errors, map_errors
from server.errors import RulesNotLoadedError, SubjectNotFoundError
from server.rules.snapshot import Snapshot

logger = logging.getLogger("decide.server")

Clock = Callable[[], datetime]

DEFAULT_PERIOD = timedelta(days=7)
DEFAULT_SAMPLE_SIZE = 10
MAX_SAMPLE_SIZE = 100
DEFAULT_PAGE_SIZE = 1000
MAX_PAGE_SIZE = 10_000
MAX_REPORT_SEGMENTS = 32
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

_STATUS = {"ok": pb.REPORT_STATUS_OK, "not_enough_data": pb.REPORT_STATUS_NOT_ENOUGH_DATA}

SIZES_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS segment_sizes (day TEXT NOT NULL, segment_id TEXT NOT NULL,"
    " size INTEGER NOT NULL, profiles INTEGER NOT NULL, taken_at TEXT NOT NULL,"
    " ruleset_version INTEGER NOT NULL, PRIMARY KEY (day, segment_id))"
)


# -- periods ------------------------------------------------------------------------------


def _moment(stamp: timestamp_pb2.Timestamp) -> datetime:
    return _EPOCH + timedelta(seconds=stamp.seconds, microseconds=stamp.nanos // 1000)


def _stamp(moment: datetime | None) -> timestamp_pb2.Timestamp | None:
    if moment is None:
        return None
    message = timestamp_pb2.Timestamp()
    message.FromDatetime(moment)
    return message


def resolve_period(request: Any, now: datetime) -> tuple[datetime, datetime]:
    """``(start, end)`` of a request's ``period``: end defaults to now, start to 7 days
    before end. ``InvalidRequestError`` when start is not before end."""
    period = request.period
    end = _moment(period.end) if period.HasField("end") else now
    start = _moment(period.start) if period.HasField("start") else end - DEFAULT_PERIOD
    if start >= end:
        raise InvalidRequestError([Problem("period", "start must be before end")])
    return start, end


def _period(start: datetime | None, end: datetime | None) -> pb.Period:
    return pb.Period(start=_stamp(start), end=_stamp(end))


# -- campaign weights ---------------------------------------------------------------------


def arm_weights(rule: Campaign | None, seen: Sequence[str]) -> dict[str, int]:
    """Arms in report order with the weights their exposed visitors should follow.

    Among visitors who enter a campaign, ``holdout`` buckets of 10,000 are held out and
    the rest split by variant weight: variant i expects (10000 - holdout) * w_i, the
    holdout arm holdout * sum(w). Traffic allocation and exclusion-group slots decide who
    enters, not the split, so they do not appear. Arms seen only in exposures (a variant
    since removed) get weight 0 and stay out of the check. Without a rule (a campaign no
    longer in the rules) every arm seen is expected in equal shares.
    """
    if rule is None:
        return dict.fromkeys(sorted(seen), 1)
    total = sum(v.weight for v in rule.variants)
    weights = {v.id: (BUCKETS - rule.holdout) * v.weight for v in rule.variants}
    if rule.holdout:
        weights[HOLDOUT_VARIANT] = rule.holdout * total
    divisor = math.gcd(*weights.values()) or 1
    weights = {arm: weight // divisor for arm, weight in weights.items()}
    for arm in sorted(seen):
        weights.setdefault(arm, 0)
    return weights


def expected_weights_note(rule: Campaign | None, campaign: str, version: int) -> str:
    """Which split the sample-ratio check expects, in words."""
    if rule is None:
        return (
            f"the active rules (version {version}) have no campaign {campaign}:"
            " every arm seen is expected in equal shares"
        )
    split = " : ".join(f"{v.id} {v.weight}" for v in rule.variants)
    parts = [f"variants by weight ({split})"]
    if rule.holdout:
        share = rule.holdout / BUCKETS
        parts.append(
            f"after a {share:.2%} holdout: the holdout arm expects {share:.2%} of exposed"
            f" visitors and the variants share the other {1 - share:.2%}"
        )
    if rule.group_slots is not None:
        lo, hi = rule.group_slots
        parts.append(
            f"exclusion group {rule.exclusion_group} (slots {lo}-{hi - 1}) decides who"
            " enters the campaign, not which arm, so it does not change the expected split"
        )
    elif rule.traffic < BUCKETS:
        parts.append(
            f"traffic allocation {rule.traffic / BUCKETS:.2%} decides who enters the"
            " campaign, not which arm, so it does not change the expected split"
        )
    parts.append(f"weights of rules version {version}; a weight change in the period shows up")
    return "; ".join(parts)


def _baseline(requested: str, rule: Campaign | None, arms: Sequence[str]) -> str:
    if requested:
        if requested not in arms:
            raise InvalidRequestError(
                [Problem("baseline", f"{requested!r} is not an arm ({', '.join(arms)})")]
            )
        return requested
    if rule is not None:
        control = next((v.id for v in rule.variants if v.control), None)
        if control is not None:
            return control
    if HOLDOUT_VARIANT in arms:
        return HOLDOUT_VARIANT
    return arms[0]


def _counts(
    tallies: dict[str, attribution.Tally], weights: dict[str, int], baseline: str
) -> list[VariantCounts]:
    return [
        VariantCounts(
            arm,
            control=arm == baseline,
            weight=weight,
            exposed=tallies[arm].exposed if arm in tallies else 0,
            clicks=tallies[arm].clicks if arm in tallies else 0,
            conversions=tallies[arm].conversions if arm in tallies else 0,
            revenue=round(tallies[arm].revenue, 6) if arm in tallies else 0.0,
        )
        for arm, weight in weights.items()
    ]


# -- model <-> proto ------------------------------------------------------------------


def _interval(bounds: tuple[float, float] | None) -> pb.Interval | None:
    return None if bounds is None else pb.Interval(low=bounds[0], high=bounds[1])


def variant_message(result: VariantResult) -> pb.VariantReport:
    """The proto form of one arm's results."""
    c = result.counts
    return pb.VariantReport(
        variant_id=c.variant_id,
        control=c.control,
        weight=c.weight,
        exposed=c.exposed,
        clicks=c.clicks,
        conversions=c.conversions,
        revenue=c.revenue,
        ctr=result.ctr,
        conversion_rate=result.conversion_rate,
        conversion_ci=_interval(result.conversion_ci),
        revenue_per_visitor=result.revenue_per_visitor,
        lift=result.lift,
        lift_ci=_interval(result.lift_ci),
        p_value=result.p_value,
        prob_beat_control=result.prob_beat_control,
        enough_data=result.enough_data,
    )


# -- daily size snapshots -----------------------------------------------------------------


def read_sizes(
    conn: sqlite3.Connection, segment_ids: Sequence[str], start: datetime, end: datetime
) -> dict[str, list[tuple[str, int]]]:
    """Snapshot sizes of ``segment_ids`` for the UTC days from start's to end's."""
    sizes: dict[str, list[tuple[str, int]]] = {s: [] for s in segment_ids}
    marks = ", ".join("?" * len(segment_ids))
    try:
        rows = conn.execute(
            f"SELECT day, segment_id, size FROM segment_sizes WHERE segment_id IN ({marks})"
            " AND day >= ? AND day <= ? ORDER BY day",
            [*segment_ids, start.date().isoformat(), end.date().isoformat()],
        ).fetchall()
    except sqlite3.OperationalError:  # no snapshot was ever taken on this file
        return sizes
    for day, segment_id, size in rows:
        sizes[segment_id].append((day, size))
    return sizes


class SizeSnapshots:
    """Counts every segment's stored profiles once per UTC day (``segment_sizes``).

    A background thread checks ``first_check`` seconds after start and then every
    ``check_interval`` seconds whether today has a snapshot, and takes one if not.
    ``take(now)`` does it at once (tests, or an operator). Several server processes on
    one file may each take one; the last write of a day wins.
    """

    def __init__(
        self,
        path: str | Path,
        source: Any,
        clock: Clock,
        *,
        first_check: float = 60.0,
        check_interval: float = 3600.0,
    ) -> None:
        self.path = Path(path)
        self._source = source
        self._clock = clock
        self._first_check = first_check
        self._check_interval = check_interval
        self._stopping = threading.Event()
        with closing(sqlite3.connect(str(self.path), timeout=5.0)) as conn:
            conn.execute(SIZES_SCHEMA)
            conn.commit()
        self._thread = threading.Thread(target=self._run, name="decide-segment-sizes", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join()

    def take(self, now: datetime | None = None) -> int:
        """Record today's sizes (the day of ``now``); returns the segments recorded."""
        snapshot: Snapshot | None = self._source.snapshot
        if snapshot is None:
            return 0
        now = now or self._clock()
        with closing(audiences.connect(self.path)) as conn:
            profiles, sizes = audiences.segment_sizes(conn, snapshot.ruleset, now)
        day = now.date().isoformat()
        with closing(sqlite3.connect(str(self.path), timeout=5.0)) as conn:
            conn.executemany(
                "INSERT OR REPLACE INTO segment_sizes VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (day, segment_id, size, profiles, now.isoformat(), snapshot.version)
                    for segment_id, size in sizes.items()
                ],
            )
            conn.commit()
        return len(sizes)

    def _taken(self, day: str) -> bool:
        with closing(sqlite3.connect(str(self.path), timeout=5.0)) as conn:
            return (
                conn.execute("SELECT 1 FROM segment_sizes WHERE day = ?", (day,)).fetchone()
                is not None
            )

    def _run(self) -> None:
        wait = self._first_check
        while not self._stopping.wait(wait):
            wait = self._check_interval
            try:
                now = self._clock()
                if not self._taken(now.date().isoformat()):
                    self.take(now)
            except Exception:  # the job must survive a busy or broken file; logged
                logger.exception("segment size snapshot failed", extra={"event": "sizes_error"})


# -- the service --------------------------------------------------------------------------


class InsightsServicer(pb_grpc.InsightsServiceServicer):
    """Reports over the profile store's file; pending exposures are written first.

    ``scan_pool``: worker processes for estimates over large stores (owned by the
    caller, which closes it when the server stops); without one, every scan runs in
    the calling thread."""

    def __init__(
        self,
        source: Any,
        path: str | Path,
        *,
        clock: Clock,
        window_days: float,
        exposures: ExposureRecorder | None = None,
        scan_pool: ScanPool | None = None,
    ) -> None:
        self._source = source
        self._path = Path(path)
        self._clock = clock
        self._window = timedelta(days=window_days)
        self._window_days = window_days
        self._exposures = exposures
        self._scan_pool = scan_pool
        self._sizes = estimates.SizeCache()

    def _snapshot(self) -> Snapshot:
        snapshot: Snapshot | None = self._source.snapshot
        if snapshot is None:
            raise RulesNotLoadedError()
        return snapshot

    def _flush(self) -> None:
        if self._exposures is not None:
            self._exposures.flush()  # read-your-writes: decisions just made count

    @handles_errors
    def CampaignReport(
        self, request: pb.CampaignReportRequest, context: grpc.ServicerContext
    ) -> Any:
        problems = []
        if not request.campaign:
            problems.append(Problem("campaign", "is required"))
        if request.min_sample < 0:
            problems.append(Problem("min_sample", "must be >= 0"))
        if problems:
            raise InvalidRequestError(problems)
        now = self._clock()
        start, end = resolve_period(request, now)
        snapshot = self._snapshot()
        self._flush()
        with closing(audiences.connect(self._path)) as conn:
            counts = attribution.campaign_counts(
                conn, request.campaign, start, end, self._window, by_segment=request.by_segment
            )
        rule = snapshot.ruleset.campaigns.get(request.campaign)
        if rule is None and not counts.arms:
            raise SubjectNotFoundError(
                f"campaign {request.campaign!r} is neither in the active rules nor exposed"
                " in the period"
            )
        weights = arm_weights(rule, list(counts.arms))
        baseline = _baseline(request.baseline, rule, list(weights))
        segments = None
        if request.by_segment:
            order = list(rule.audience.segments) if rule is not None else []
            order += sorted(s for s in counts.by_segment if s not in order)
            segments = {
                s: _counts(counts.by_segment[s], weights, baseline)
                for s in order
                if s in counts.by_segment
            }
        report = analyze_campaign(
            _counts(counts.arms, weights, baseline),
            campaign_id=request.campaign,
            period_start=start,
            period_end=end,
            min_sample=request.min_sample or 100,
            by_segment=segments,
        )
        srm = report.srm
        return pb.CampaignReportResponse(
            campaign=report.campaign_id,
            period=_period(start, end),
            status=_STATUS[report.status],
            min_sample=report.min_sample,
            variants=[variant_message(v) for v in report.variants],
            srm=pb.SampleRatioCheck(
                variant_ids=srm.variant_ids,
                expected_shares=srm.expected_shares,
                observed=srm.observed,
                chi2=srm.chi2,
                p_value=srm.p_value,
                mismatch=srm.mismatch,
                expected_weights=expected_weights_note(rule, request.campaign, snapshot.version),
            ),
            by_segment=[
                pb.SegmentBreakdown(segment_id=s, variants=[variant_message(v) for v in results])
                for s, results in (report.by_segment or {}).items()
            ],
            segmented=request.by_segment,
            attribution_window_days=self._window_days,
            ruleset_version=snapshot.version,
        )

    @handles_errors
    def SegmentReport(self, request: pb.SegmentReportRequest, context: grpc.ServicerContext) -> Any:
        snapshot = self._snapshot()
        ids = _segment_ids(request.segments, snapshot.ruleset)
        now = self._clock()
        start, end = resolve_period(request, now)
        self._flush()
        with closing(audiences.connect(self._path)) as conn:
            members = audiences.memberships(
                conn, ids, snapshot.ruleset, start=start, end=end, now=now
            )
            outcomes = attribution.visitor_outcomes(conn, start, end, self._window)
            sizes = read_sizes(conn, ids, start, min(end, now))
        tallies = [[0, 0, 0, 0.0] for _ in ids]  # exposures, exposed, converted, revenue
        for visitor_id, mask in members.members_at_end.items():
            outcome = outcomes.get(visitor_id)
            if outcome is None:
                continue
            for i, tally in enumerate(tallies):
                if mask >> i & 1:
                    tally[0] += outcome.exposures
                    tally[1] += 1
                    tally[2] += outcome.converted
                    tally[3] += outcome.revenue
        stats = [
            pb.SegmentStats(
                segment_id=segment_id,
                size_now=members.overlap[i][i],
                sizes_over_time=[pb.DailySize(day=d, size=n) for d, n in sizes[segment_id]],
                exposures=int(tallies[i][0]),
                conversion_rate=tallies[i][2] / tallies[i][1] if tallies[i][1] else None,
                revenue_per_visitor=tallies[i][3] / tallies[i][1] if tallies[i][1] else None,
            )
            for i, segment_id in enumerate(ids)
        ]
        journeys = sorted(members.journeys.items(), key=lambda item: (-item[1], item[0]))
        return pb.SegmentReportResponse(
            period=_period(start, end),
            segments=stats,
            overlap=[pb.OverlapRow(visitors=row) for row in members.overlap],
            journeys=[
                pb.Journey(from_segment=a, to_segment=b, visitors=n) for (a, b), n in journeys
            ],
            profiles=members.profiles,
            ruleset_version=snapshot.version,
        )

    @handles_errors
    def EstimateSegment(
        self, request: pb.EstimateSegmentRequest, context: grpc.ServicerContext
    ) -> Any:
        snapshot = self._snapshot()
        problems = []
        sample_size = request.sample_size or DEFAULT_SAMPLE_SIZE
        if not 0 <= request.sample_size <= MAX_SAMPLE_SIZE:
            problems.append(Problem("sample_size", f"must be 0-{MAX_SAMPLE_SIZE}"))
        spec: Any = None
        if not request.filter_json.strip():
            problems.append(Problem("filter_json", "is required"))
        else:
            try:
                spec = json.loads(request.filter_json)
            except ValueError as exc:
                problems.append(Problem("filter_json", f"is not JSON: {exc}"))
        if problems:
            raise InvalidRequestError(problems)
        predicate = decision.compile_filter(spec)
        unknown = sorted(predicate.references - set(snapshot.ruleset.segment_filters))
        if unknown:
            raise InvalidRequestError(
                [Problem("filter_json", f"unknown segment {s!r} in $segment") for s in unknown]
            )
        result = estimates.estimate(
            self._path,
            predicate,
            snapshot.ruleset,
            self._clock(),
            sample_size=sample_size,
            pool=self._scan_pool,
            sizes=self._sizes,
        )
        return pb.EstimateSegmentResponse(
            matching=result.matching,
            profiles=result.profiles,
            sample_ids=result.sample_ids,
            overlaps=[
                pb.SegmentOverlap(
                    segment_id=o.segment_id,
                    segment_size=o.segment_size,
                    both=o.both,
                    jaccard=o.jaccard,
                )
                for o in result.overlaps
            ],
            ruleset_version=snapshot.version,
            segment_sizes_at=_stamp(result.sizes_at),
        )

    @handles_errors
    def ExportSegment(self, request: pb.ExportSegmentRequest, context: grpc.ServicerContext) -> Any:
        snapshot = self._snapshot()
        (segment_id,) = _segment_ids([request.segment], snapshot.ruleset, field="segment")
        if not 0 <= request.page_size <= MAX_PAGE_SIZE:
            raise InvalidRequestError([Problem("page_size", f"must be 0-{MAX_PAGE_SIZE}")])
        pages = _pages(self._path, segment_id, snapshot.ruleset, self._clock(), request.page_size)
        return _stream(pages, context)


def _pages(
    path: Path, segment_id: str, ruleset: Ruleset, now: datetime, page_size: int
) -> Iterator[list[str]]:
    with closing(audiences.connect(path)) as conn:
        yield from audiences.export(conn, segment_id, ruleset, now, page_size or DEFAULT_PAGE_SIZE)


def _stream(pages: Iterator[list[str]], context: grpc.ServicerContext) -> Iterator[Any]:
    """The response stream; an error while scanning ends it with its mapped status."""
    with map_errors(context, "ExportSegment"):
        for page in pages:
            yield pb.ExportSegmentResponse(visitor_ids=page)


def _segment_ids(given: Sequence[str], ruleset: Ruleset, field: str = "segments") -> list[str]:
    problems = []
    ids = list(given)
    if not ids or ids == [""]:
        problems.append(Problem(field, "at least one segment id is required"))
    if len(ids) > MAX_REPORT_SEGMENTS:
        problems.append(Problem(field, f"at most {MAX_REPORT_SEGMENTS} segments"))
    for i, segment_id in enumerate(ids):
        where = field if field == "segment" else f"{field}[{i}]"
        if segment_id not in ruleset.segment_filters:
            problems.append(Problem(where, f"unknown segment {segment_id!r}"))
        elif ids.index(segment_id) != i:
            problems.append(Problem(where, f"duplicate {segment_id!r}"))
    if problems:
        raise InvalidRequestError(problems)
    return ids
