"""``decisioning.v1.InsightsService``: campaign and segment reports, estimates, exports.

Counting lives in ``server.analytics.attribution`` (exposures x events) and ``server.analytics.scans``
(filters over stored profiles); the statistics in ``insights`` (pure). This module
checks requests, fills in defaults, picks the weights a campaign's split is checked
against, and converts ``insights.model`` values to proto messages and back
(the client converts responses back: ``client._insights``).

Segment sizes over time come from daily snapshots (``server.analytics.sizes``). Every
report reads the whole store or a campaign's exposures: the work runs in the server's
report pool, never on the event loop.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import AsyncIterator, Callable, Generator, Sequence
from contextlib import closing
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import decision
from decision import BUCKETS, Campaign, InvalidRequestError, Problem, Ruleset
from insights import (
    SegmentEngagement,
    VariantCounts,
    VariantResult,
    analyze_campaign,
)
from protos import decisioning_pb2 as pb
from server import limits
from server.analytics import attribution, estimates
from server.analytics import scans as audiences
from server.analytics.exposures import HOLDOUT_VARIANT
from server.analytics.scan_pool import ScanPool
from server.analytics.sizes import read_sizes
from server.api.convert import moment, timestamp
from server.errors import NotOnThisStoreError, RulesNotLoadedError, SubjectNotFoundError
from server.executors import Pool
from server.rules.snapshot import Snapshot
from server.storage import ExposureSink

logger = logging.getLogger("decide.server")

Clock = Callable[[], datetime]

DEFAULT_PERIOD = timedelta(days=7)
DEFAULT_SAMPLE_SIZE = 10
MAX_SAMPLE_SIZE = 100
DEFAULT_PAGE_SIZE = 1000
MAX_PAGE_SIZE = 10_000
MAX_REPORT_SEGMENTS = 32

_STATUS = {"ok": pb.REPORT_STATUS_OK, "not_enough_data": pb.REPORT_STATUS_NOT_ENOUGH_DATA}


# -- periods ------------------------------------------------------------------------------


def resolve_period(request: Any, now: datetime) -> tuple[datetime, datetime]:
    """``(start, end)`` of a request's ``period``: end defaults to now, start to 7 days
    before end (not before ``limits.MIN_REPORT_TIME``). ``InvalidRequestError`` when
    start is not before end, or a bound given is before ``limits.MIN_REPORT_TIME``."""
    period = request.period
    lowest = limits.MIN_REPORT_TIME
    end = moment(period.end, "period.end") if period.HasField("end") else now
    if end <= lowest:
        raise InvalidRequestError([Problem("period.end", f"must be after {lowest:%Y-%m-%d}")])
    if period.HasField("start"):
        start = moment(period.start, "period.start")
        if start < lowest:
            raise InvalidRequestError([Problem("period.start", f"must be from {lowest:%Y-%m-%d}")])
    else:
        start = max(end - DEFAULT_PERIOD, lowest)
    if start >= end:
        raise InvalidRequestError([Problem("period", "start must be before end")])
    return start, end


def _period(start: datetime | None, end: datetime | None) -> pb.Period:
    return pb.Period(start=timestamp(start), end=timestamp(end))


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


def _engagement(engagement: SegmentEngagement) -> pb.SegmentEngagement:
    return pb.SegmentEngagement(
        members=engagement.members,
        sessions=engagement.sessions,
        page_views=engagement.page_views,
        time_on_site=engagement.time_on_site,
        sessions_per_member=engagement.sessions_per_member,
        pages_per_session=engagement.pages_per_session,
        time_on_site_per_member=engagement.time_on_site_per_member,
    )


# -- the service --------------------------------------------------------------------------


class InsightsServicer:
    """Reports over the profile store's file; pending exposures are written first.

    ``path``: the storage's ``scan_file``; None on a storage whose reports are not
    written yet (``backend`` names it), where every call answers FAILED_PRECONDITION.
    ``scan_pool``: worker processes for estimates over large stores (owned by the
    caller, which closes it when the server stops); without one, every scan runs in
    the calling thread."""

    def __init__(
        self,
        source: Any,
        path: str | Path | None,
        *,
        backend: str = "SQLite",
        clock: Clock,
        window_days: float,
        pool: Pool,
        exposures: ExposureSink | None = None,
        scan_pool: ScanPool | None = None,
    ) -> None:
        self._pool = pool
        self._source = source
        self._path = None if path is None else Path(path)
        self._backend = backend
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

    def _file(self, what: str) -> Path:
        if self._path is None:
            raise NotOnThisStoreError(
                what,
                self._backend,
                "reports, estimates, exports and segment sizes read a SQLite store for now"
                " (issue 11, part 2 brings them to PostgreSQL)",
            )
        return self._path

    def _flush(self) -> None:
        if self._exposures is not None:
            self._exposures.flush()  # read-your-writes: decisions just made count

    async def CampaignReport(self, request: pb.CampaignReportRequest, context: Any) -> Any:
        return await self._pool.run(self._campaign_report, request)

    def _campaign_report(self, request: pb.CampaignReportRequest) -> Any:
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
        path = self._file("CampaignReport")
        self._flush()
        with closing(audiences.connect(path)) as conn:
            counts = attribution.campaign_counts(
                conn,
                request.campaign,
                start,
                end,
                self._window,
                by_segment=request.by_segment,
                channel=request.channel,
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

    async def SegmentReport(self, request: pb.SegmentReportRequest, context: Any) -> Any:
        return await self._pool.run(self._segment_report, request)

    def _segment_report(self, request: pb.SegmentReportRequest) -> Any:
        snapshot = self._snapshot()
        ids = _segment_ids(request.segments, snapshot.ruleset)
        now = self._clock()
        start, end = resolve_period(request, now)
        path = self._file("SegmentReport")
        self._flush()
        with closing(audiences.connect(path)) as conn:
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
                engagement=_engagement(SegmentEngagement(members.overlap[i][i], *engaged)),
            )
            for (i, segment_id), engaged in zip(enumerate(ids), members.engagement, strict=True)
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

    async def EstimateSegment(self, request: pb.EstimateSegmentRequest, context: Any) -> Any:
        return await self._pool.run(self._estimate_segment, request)

    def _estimate_segment(self, request: pb.EstimateSegmentRequest) -> Any:
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
            self._file("EstimateSegment"),
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
            segment_sizes_at=timestamp(result.sizes_at),
        )

    async def ExportSegment(
        self, request: pb.ExportSegmentRequest, context: Any
    ) -> AsyncIterator[Any]:
        snapshot = self._snapshot()
        (segment_id,) = _segment_ids([request.segment], snapshot.ruleset, field="segment")
        if not 0 <= request.page_size <= MAX_PAGE_SIZE:
            raise InvalidRequestError([Problem("page_size", f"must be 0-{MAX_PAGE_SIZE}")])
        path = self._file("ExportSegment")
        pages = _pages(path, segment_id, snapshot.ruleset, self._clock(), request.page_size)
        try:
            while True:
                page = await self._pool.run(next, pages, None)
                if page is None:
                    break
                yield pb.ExportSegmentResponse(visitor_ids=page)
        finally:
            await self._pool.run(pages.close)


def _pages(
    path: Path, segment_id: str, ruleset: Ruleset, now: datetime, page_size: int
) -> Generator[list[str], None, None]:
    with closing(audiences.connect(path)) as conn:
        yield from audiences.export(conn, segment_id, ruleset, now, page_size or DEFAULT_PAGE_SIZE)


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
