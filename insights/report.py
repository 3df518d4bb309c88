"""The self-contained HTML report: inline CSS and SVG charts, no script, no network.

``render_html`` returns one document that any browser shows offline: the charts are
SVG drawn here (``insights.svg``), the styles are inline and there are no external
references. Every id coming from rules or data (campaigns, variants, segments) is
escaped. Each chart has the same numbers in a table next to it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, datetime
from html import escape

from insights import svg
from insights.model import (
    STATUS_NOT_ENOUGH_DATA,
    CampaignReport,
    SegmentReport,
    VariantResult,
)
from insights.stats import CONFIDENCE, SRM_ALPHA

SIGNIFICANCE = 0.05
"""p-value below which a difference is called better or worse in the report."""

MINUS = "\u2212"


# -- formatting ----------------------------------------------------------------------------


def _pct(value: float | None, digits: int = 2) -> str:
    if value is None:
        return "–"
    return f"{value * 100:.{digits}f}%".replace("-", MINUS)


def _signed_pct(value: float | None, digits: int = 1) -> str:
    if value is None:
        return "–"
    return f"{value * 100:+.{digits}f}%".replace("-", MINUS)


def _interval(bounds: tuple[float, float] | None, fmt: Callable[[float | None], str] = _pct) -> str:
    if bounds is None:
        return ""
    return f"{fmt(bounds[0])} to {fmt(bounds[1])}"


def _p(value: float | None) -> str:
    if value is None:
        return "–"
    return "< 0.001" if value < 0.001 else f"{value:.3f}"


def _p_is(value: float) -> str:
    """ "p < 0.001" or "p = 0.042", for running text."""
    return "p < 0.001" if value < 0.001 else f"p = {value:.3f}"


def _count(value: float) -> str:
    return f"{value:,.0f}"


def _money(value: float | None) -> str:
    return "–" if value is None else f"{value:,.2f}"


def _ratio(value: float | None) -> str:
    return "–" if value is None else f"{value:,.1f}"


def _duration(seconds: float | None) -> str:
    """``42 s``, ``4 min 05 s``, ``1 h 02 min``; ``–`` for None."""
    if seconds is None:
        return "–"
    whole = round(seconds)
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min {whole % 60:02d} s"
    return f"{whole // 3600:,} h {whole % 3600 // 60:02d} min"


def _when(value: datetime | str | None) -> str:
    if value is None:
        return "–"
    if isinstance(value, str):
        return value
    text = value.strftime("%Y-%m-%d %H:%M")
    return f"{text} {value.tzname()}" if value.tzinfo is not None else text


def _day(value: datetime | None) -> str:
    return "…" if value is None else value.date().isoformat()


def _period(start: datetime | None, end: datetime | None) -> str:
    return f"{_day(start)} to {_day(end)}"


def _short_date(iso: str) -> str:
    try:
        day = date.fromisoformat(iso[:10])
    except ValueError:
        return iso
    return f"{day:%b} {day.day}"


def _axis_pct(span: float, *, signed: bool = False) -> Callable[[float], str]:
    """Tick labels: one decimal for spans under 10 points, none above."""
    digits = 1 if span < 0.1 else 0

    def fmt(value: float) -> str:
        if abs(value) < 1e-12:
            return "0%"
        sign = "+" if signed else ""
        return f"{value * 100:{sign}.{digits}f}%".replace("-", MINUS)

    return fmt


# -- verdicts ------------------------------------------------------------------------------

_VERDICTS = {
    "better": ("▲ better", "good", svg.BLUE),
    "worse": ("▼ worse", "bad", svg.VERMILLION),
    "unclear": ("no clear difference", "neutral", svg.GREY),
    "waiting": ("not enough data", "neutral", svg.GREY),
    "control": ("control", "control", svg.INK),
}


def _verdict(result: VariantResult, report: CampaignReport) -> str:
    if result is report.control:
        return "control"
    if report.status == STATUS_NOT_ENOUGH_DATA or result.p_value is None:
        return "waiting"
    if result.p_value < SIGNIFICANCE and result.lift is not None:
        return "better" if result.lift > 0 else "worse"
    return "unclear"


def _chip(verdict: str) -> str:
    text, cls, _ = _VERDICTS[verdict]
    return f'<span class="chip {cls}">{escape(text)}</span>'


# -- campaigns -----------------------------------------------------------------------------


def _conversion_chart(report: CampaignReport, chart_id: str) -> str:
    rows = []
    for v in report.variants:
        verdict = _verdict(v, report)
        rate = v.conversion_rate
        low, high = v.conversion_ci
        rows.append(
            svg.IntervalRow(
                label=v.variant_id,
                value=rate,
                low=low if rate is not None else None,
                high=high if rate is not None else None,
                colour=_VERDICTS[verdict][2],
                note=f"{_pct(rate)}" if rate is not None else "no visitors",
                tooltip=(
                    f"{v.variant_id}: {_pct(rate)} conversion, {CONFIDENCE:.0%} interval "
                    f"{_interval(v.conversion_ci)}, {_count(v.counts.exposed)} visitors"
                ),
                emphasis=v is report.control,
            )
        )
    highs = [v.conversion_ci[1] for v in report.variants if v.conversion_rate is not None]
    return svg.interval_chart(
        rows,
        chart_id=chart_id,
        title=f"Conversion rate by variant, {report.campaign_id}",
        desc=(
            f"Dots are each variant's conversion rate, bars its {CONFIDENCE:.0%} Wilson "
            "interval. The table below lists the same numbers."
        ),
        fmt=_axis_pct(max(highs, default=1.0)),
    )


def _lift_chart(report: CampaignReport, chart_id: str) -> str | None:
    compared = [v for v in report.variants if v is not report.control]
    if report.status == STATUS_NOT_ENOUGH_DATA or not compared:
        return None
    rows = []
    for v in compared:
        verdict = _verdict(v, report)
        low, high = v.lift_ci if v.lift_ci is not None else (None, None)
        rows.append(
            svg.IntervalRow(
                label=v.variant_id,
                value=v.lift,
                low=low,
                high=high,
                colour=_VERDICTS[verdict][2],
                note=(
                    f"{_signed_pct(v.lift)} · p {_p(v.p_value)}"
                    if v.lift is not None
                    else "undefined: control has no conversions"
                ),
                tooltip=(
                    f"{v.variant_id}: lift {_signed_pct(v.lift)} "
                    f"({_interval(v.lift_ci, _signed_pct)}), "
                    f"{'p –' if v.p_value is None else _p_is(v.p_value)}, "
                    f"probability to beat control {_pct(v.prob_beat_control, 1)}"
                ),
            )
        )
    bounds = [b for v in compared if v.lift_ci for b in v.lift_ci]
    span = (max(bounds) - min(bounds)) if bounds else 1.0
    return svg.interval_chart(
        rows,
        chart_id=chart_id,
        title=f"Lift in conversion rate against {report.control.variant_id}, {report.campaign_id}",
        desc=(
            f"Dots are each variant's relative lift over the control, bars its "
            f"{CONFIDENCE:.0%} interval; the dashed line is no change."
        ),
        fmt=_axis_pct(span, signed=True),
        reference=0.0,
    )


def _variant_table(report: CampaignReport, results: Sequence[VariantResult], caption: str) -> str:
    head = (
        "<tr><th scope=col>Variant</th><th scope=col>Visitors</th><th scope=col>Clicks</th>"
        "<th scope=col>CTR</th><th scope=col>Conversions</th>"
        f"<th scope=col>Conversion rate<br><small>{CONFIDENCE:.0%} interval</small></th>"
        "<th scope=col>Revenue</th><th scope=col>Revenue<br>per visitor</th>"
        f"<th scope=col>Lift<br><small>{CONFIDENCE:.0%} interval</small></th>"
        "<th scope=col>p-value</th><th scope=col>P(beats<br>control)</th></tr>"
    )
    body = []
    for v in results:
        c = v.counts
        is_control = v.variant_id == report.control.variant_id
        verdict = "control" if is_control else _verdict(v, report)
        rate_ci = f"<small>{_interval(v.conversion_ci)}</small>" if c.exposed else ""
        lift = (
            ""
            if is_control
            else f"{_signed_pct(v.lift)}<small>{_interval(v.lift_ci, _signed_pct)}</small>"
        )
        body.append(
            "<tr>"
            f"<th scope=row>{escape(c.variant_id)}<small>{_chip(verdict)}</small></th>"
            f"<td>{_count(c.exposed)}</td><td>{_count(c.clicks)}</td><td>{_pct(v.ctr, 1)}</td>"
            f"<td>{_count(c.conversions)}</td><td>{_pct(v.conversion_rate)}{rate_ci}</td>"
            f"<td>{_money(c.revenue)}</td><td>{_money(v.revenue_per_visitor)}</td>"
            f"<td>{lift}</td><td>{'' if is_control else _p(v.p_value)}</td>"
            f"<td>{'' if is_control else _pct(v.prob_beat_control, 1)}</td>"
            "</tr>"
        )
    return (
        f'<div class="scroll"><table class="variants"><caption>{escape(caption)}</caption>'
        f"<thead>{head}</thead><tbody>{''.join(body)}</tbody></table></div>"
    )


def _srm_line(report: CampaignReport) -> str:
    srm = report.srm
    total = sum(srm.observed) or 1
    shares = ", ".join(
        f"{escape(vid)} {expected:.1%} expected / {observed / total:.1%} seen"
        for vid, expected, observed in zip(
            srm.variant_ids, srm.expected_shares, srm.observed, strict=True
        )
    )
    df = max(1, len(srm.observed) - 1)
    verdict = (
        '<strong class="bad-text">mismatch</strong>'
        if srm.mismatch
        else "consistent with the weights"
    )
    return (
        f'<p class="srm">Traffic split: {shares}. χ²({df}) = {srm.chi2:.2f}, '
        f"{_p_is(srm.p_value)}: {verdict}.</p>"
    )


def _banners(report: CampaignReport) -> str:
    out = []
    if report.status == STATUS_NOT_ENOUGH_DATA:
        smallest = min(v.counts.exposed for v in report.variants)
        out.append(
            '<div class="banner wait" role="status"><strong>Not enough data.</strong> '
            f"Each variant needs at least {_count(report.min_sample)} exposed visitors "
            f"before it is compared with the control; the smallest has {_count(smallest)}. "
            "Conversion rates and their intervals are shown; lift, p-values and "
            "probabilities are not.</div>"
        )
    if report.srm.mismatch:
        out.append(
            '<div class="banner alert" role="alert"><strong>Sample ratio mismatch.</strong> '
            "The visitors did not split the way the weights say "
            f"({_p_is(report.srm.p_value)}, flagged below {SRM_ALPHA:g}). Something "
            "drops or re-routes visitors in one arm (a redirect, tracking, bots), so the "
            "comparison below may be biased: find the cause before acting on it.</div>"
        )
    return "".join(out)


def _segment_breakdown(report: CampaignReport) -> str:
    if not report.by_segment:
        return ""
    tables = "".join(
        _variant_table(report, results, f"Visitors in segment {segment}")
        for segment, results in report.by_segment.items()
    )
    return (
        f"<details><summary>By segment ({len(report.by_segment)})</summary>"
        f'<p class="note">Each segment is compared on its own visitors, against the same '
        f"minimum sample; p-values are not adjusted for looking at several segments.</p>"
        f"{tables}</details>"
    )


def _campaign_section(report: CampaignReport, index: int) -> tuple[str, int]:
    charts = [
        (
            f"Conversion rate, {CONFIDENCE:.0%} interval",
            _conversion_chart(report, f"c{index}-conversion"),
        )
    ]
    lift = _lift_chart(report, f"c{index}-lift")
    if lift is not None:
        charts.append(
            (f"Lift against {report.control.variant_id}, {CONFIDENCE:.0%} interval", lift)
        )
    figures = "".join(
        f"<figure><figcaption>{escape(caption)}</figcaption>{chart}</figure>"
        for caption, chart in charts
    )
    if lift is None:
        # Keep the conversion chart at half width, with the reason the lift is missing.
        if len(report.variants) < 2:
            why = "Only one variant: there is nothing to compare it with."
        else:
            why = (
                f"Lift against {report.control.variant_id} appears once every variant has "
                f"at least {_count(report.min_sample)} exposed visitors."
            )
        figures += f'<div class="placeholder"><p>{escape(why)}</p></div>'

    chips = "".join(
        [
            '<span class="chip neutral">not enough data</span>'
            if report.status == STATUS_NOT_ENOUGH_DATA
            else "",
            '<span class="chip bad">sample ratio mismatch</span>' if report.srm.mismatch else "",
        ]
    )
    html = (
        f'<section class="card" id="campaign-{index}">'
        f"<h2>{escape(report.campaign_id)} {chips}</h2>"
        f'<p class="meta">{_period(report.period_start, report.period_end)} · '
        f"control: {escape(report.control.variant_id)} · minimum sample "
        f"{_count(report.min_sample)} visitors per variant</p>"
        f"{_banners(report)}"
        f'<div class="figures n2">{figures}</div>'
        f"{_variant_table(report, report.variants, f'Variants of {report.campaign_id}')}"
        f"{_srm_line(report)}{_segment_breakdown(report)}</section>"
    )
    return html, len(charts)


def _summary(campaigns: Sequence[CampaignReport]) -> str:
    rows = []
    for i, report in enumerate(campaigns):
        compared = [v for v in report.variants if v is not report.control]
        best = max(compared, key=lambda v: v.conversion_rate or 0.0, default=None)
        visitors = sum(v.counts.exposed for v in report.variants)
        link = f'<a href="#campaign-{i}">{escape(report.campaign_id)}</a>'
        split = '<span class="chip bad">mismatch</span>' if report.srm.mismatch else "ok"
        if best is None:
            cells = "<td>–</td><td></td><td></td><td></td>"
        else:
            cells = (
                f'<td class="l">{escape(best.variant_id)} {_chip(_verdict(best, report))}</td>'
                f"<td>{_signed_pct(best.lift)}</td><td>{_p(best.p_value)}</td>"
                f"<td>{_pct(best.prob_beat_control, 1)}</td>"
            )
        rows.append(
            f"<tr><th scope=row>{link}</th><td>{_count(visitors)}</td>{cells}<td>{split}</td></tr>"
        )
    return (
        '<section class="card"><h2>Campaigns at a glance</h2><div class="scroll"><table>'
        "<caption>Best-converting variant of each campaign against its control</caption>"
        "<thead><tr><th scope=col>Campaign</th><th scope=col>Visitors</th>"
        "<th scope=col class=l>Best variant</th><th scope=col>Lift</th><th scope=col>p-value</th>"
        "<th scope=col>P(beats control)</th><th scope=col>Split</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table></div></section>"
    )


# -- segments ------------------------------------------------------------------------------


def _segments_section(report: SegmentReport) -> tuple[str, int]:
    parts = [
        (
            '<section class="card" id="segments"><h2>Segments</h2>'
            f'<p class="meta">{_period(report.period_start, report.period_end)}</p>'
        )
    ]
    charts = 0
    series = [
        svg.Series(s.segment_id, tuple((d, float(n)) for d, n in s.sizes_over_time))
        for s in report.segments
        if s.sizes_over_time
    ]
    if series:
        parts.append(
            "<figure><figcaption>Segment sizes over time</figcaption>"
            + svg.line_chart(
                series,
                chart_id="segment-sizes",
                title="Segment sizes over time",
                desc="Visitors matching each segment per day; the table below lists start and end sizes.",
                fmt=_count,
                x_fmt=_short_date,
            )
            + "</figure>"
        )
        charts += 1
    rows = []
    for s in report.segments:
        first = s.sizes_over_time[0][1] if s.sizes_over_time else None
        change = _signed_pct(s.size_now / first - 1) if first else "–"
        rows.append(
            f"<tr><th scope=row>{escape(s.segment_id)}</th>"
            f"<td>{'–' if first is None else _count(first)}</td><td>{_count(s.size_now)}</td>"
            f"<td>{change}</td><td>{_count(s.exposures)}</td>"
            f"<td>{_pct(s.conversion_rate)}</td><td>{_money(s.revenue_per_visitor)}</td></tr>"
        )
    parts.append(
        '<div class="scroll"><table><caption>Segment sizes and outcomes</caption><thead><tr>'
        "<th scope=col>Segment</th><th scope=col>Size at start</th><th scope=col>Size now</th>"
        "<th scope=col>Change</th><th scope=col>Exposures</th>"
        "<th scope=col>Conversion rate</th><th scope=col>Revenue / visitor</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )
    parts.append(_engagement_table(report))
    side = []
    if report.overlap:
        ids = report.segment_ids
        side.append(
            "<figure><figcaption>Overlap: visitors in both segments</figcaption>"
            + svg.heatmap(
                ids,
                report.overlap,
                chart_id="segment-overlap",
                title="Overlap between segments",
                desc=(
                    "Visitors in both segments of each pair; darker cells share a larger part "
                    "of their visitors (Jaccard index). The diagonal is each segment's size."
                ),
                fmt=_count,
            )
            + "</figure>"
        )
        charts += 1
    if report.journeys:
        most = max(n for _, _, n in report.journeys) or 1
        journey_rows = "".join(
            f"<tr><td>{escape(a)}</td><td>→ {escape(b)}</td><td>{_count(n)}</td>"
            f'<td class="barcell"><span class="bar" style="width:{100 * n / most:.0f}%"></span></td></tr>'
            for a, b, n in report.journeys
        )
        side.append(
            '<div class="scroll"><table class="journeys"><caption>Journeys: visitors who entered '
            "a segment from another during the period</caption><thead><tr>"
            "<th scope=col>From</th><th scope=col class=l>To</th><th scope=col>Visitors</th>"
            f'<th scope=col><span class="sr">Bar</span></th></tr></thead><tbody>{journey_rows}</tbody></table></div>'
        )
    if side:
        parts.append(f'<div class="figures n{len(side)}">{"".join(side)}</div>')
    if report.overlap:
        head = "".join(f"<th scope=col>{escape(i)}</th>" for i in report.segment_ids)
        body = "".join(
            f"<tr><th scope=row>{escape(i)}</th>"
            + "".join(f"<td>{_count(n)}</td>" for n in row)
            + "</tr>"
            for i, row in zip(report.segment_ids, report.overlap, strict=True)
        )
        parts.append(
            '<details><summary>Overlap as a table</summary><div class="scroll"><table>'
            f"<thead><tr><td></td>{head}</tr></thead><tbody>{body}</tbody></table></div></details>"
        )
    parts.append("</section>")
    return "".join(parts), charts


def _engagement_table(report: SegmentReport) -> str:
    """Sessions, depth and time on site of each segment's members now ("" when the
    report has none)."""
    engaged = [(s.segment_id, s.engagement) for s in report.segments if s.engagement is not None]
    if not engaged:
        return ""
    most = max((e.time_on_site_per_member or 0.0 for _, e in engaged), default=0.0) or 1.0
    rows = "".join(
        f"<tr><th scope=row>{escape(segment_id)}</th><td>{_count(e.members)}</td>"
        f"<td>{_ratio(e.sessions_per_member)}</td><td>{_ratio(e.pages_per_session)}</td>"
        f"<td>{_duration(e.time_on_site_per_member)}</td>"
        f'<td class="barcell"><span class="bar" style="width:'
        f'{100 * (e.time_on_site_per_member or 0.0) / most:.0f}%"></span></td></tr>'
        for segment_id, e in engaged
    )
    return (
        '<div class="scroll"><table class="engagement"><caption>Engagement of the members now: '
        "sessions, pages per session and time on site from their profiles</caption><thead><tr>"
        "<th scope=col>Segment</th><th scope=col>Members</th><th scope=col>Sessions / member</th>"
        "<th scope=col>Pages / session</th><th scope=col>Time on site / member</th>"
        f'<th scope=col><span class="sr">Bar</span></th></tr></thead><tbody>{rows}</tbody>'
        "</table></div>"
    )


# -- document ------------------------------------------------------------------------------


_CSS = """
:root{--ink:#1f2937;--muted:#4b5563;--line:#e5e7eb;--bg:#f5f6f8;--card:#fff;
--blue:#0072B2;--verm:#D55E00;--warn-bg:#fff4e5;--alert-bg:#fdecea}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--ink);
font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue","DejaVu Sans",Arial,sans-serif}
main{max-width:1180px;margin:0 auto;padding:28px 24px 48px}
header h1{font-size:28px;margin:0 0 4px;letter-spacing:-.01em}
h2{font-size:20px;margin:0 0 4px;display:flex;gap:10px;align-items:center;flex-wrap:wrap}
.meta{color:var(--muted);margin:0 0 14px;font-size:14px}
.card{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:20px 22px;
margin:18px 0;box-shadow:0 1px 2px rgba(0,0,0,.04)}
.figures{display:grid;gap:18px;margin:8px 0 12px}
.figures.n2{grid-template-columns:1fr 1fr}
@media (max-width:900px){.figures.n2{grid-template-columns:1fr}}
figure{margin:0}
svg.chart{width:100%;height:auto;display:block;font-family:inherit;fill:var(--ink)}
svg .tick{fill:var(--muted);font-size:12px}
svg .muted{fill:var(--muted);font-style:italic}
svg .value{fill:var(--ink);font-variant-numeric:tabular-nums}
.scroll{overflow-x:auto}
table{border-collapse:collapse;width:100%;font-size:13.5px;font-variant-numeric:tabular-nums;margin:6px 0}
caption{text-align:left;color:var(--muted);font-size:13px;padding:0 0 6px}
th,td{padding:6px 10px;border-bottom:1px solid var(--line);text-align:right;white-space:nowrap}
th:first-child,td:first-child{text-align:left}
thead th{font-weight:600;color:var(--muted);font-size:12.5px;border-bottom:2px solid var(--line)}
tbody th{font-weight:600}
small{color:var(--muted);font-size:12px}
table.variants td small,table.variants th small{display:block;line-height:1.3}
table.variants thead small{font-weight:400}
figcaption{font-weight:600;font-size:14px;margin:0 0 4px}
th.l,td.l{text-align:left}
.chip{display:inline-block;font-size:12px;font-weight:600;padding:1px 8px;border-radius:999px;
border:1px solid currentColor;vertical-align:middle;white-space:nowrap}
.chip.good{color:var(--blue)}.chip.bad{color:var(--verm)}
.chip.neutral{color:var(--muted)}.chip.control{color:var(--ink);border-style:dashed}
.bad-text{color:var(--verm)}
.placeholder{display:flex;align-items:center;justify-content:center;text-align:center;
border:1px dashed var(--line);border-radius:8px;color:var(--muted);padding:16px;font-size:14px}
.banner{border-radius:8px;padding:10px 14px;margin:10px 0;border-left:5px solid}
.banner.wait{background:var(--warn-bg);border-color:#E69F00}
.banner.alert{background:var(--alert-bg);border-color:var(--verm)}
.srm,.note{color:var(--muted);font-size:13.5px;margin:8px 0 0}
details{margin-top:10px}summary{cursor:pointer;font-weight:600}
.journeys td:nth-child(2){text-align:left}
.barcell{width:35%}.bar{display:block;height:10px;border-radius:5px;background:var(--blue)}
.sr{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0)}
a{color:var(--blue)}
footer{color:var(--muted);font-size:13.5px;margin-top:24px}
footer li{margin:2px 0}
"""

_METHODS = (
    (
        f"Conversion rate: converting visitors / exposed visitors, with a {CONFIDENCE:.0%} "
        "Wilson score interval."
    ),
    (
        f"Lift: relative difference in conversion rate against the control; its {CONFIDENCE:.0%} "
        "interval comes from the delta method on the log of the rate ratio."
    ),
    (
        "p-value: two-sided two-proportion z-test with a pooled standard error; "
        f"differences below p = {SIGNIFICANCE} are called better or worse. Several variants "
        "or segments mean several tests: p-values are not adjusted for that."
    ),
    (
        "P(beats control): the posterior probability that the variant's true rate is higher, "
        "with a uniform Beta(1, 1) prior on each rate."
    ),
    (
        f"Sample ratio mismatch: chi-square test of the visitor split against the weights, "
        f"flagged below p = {SRM_ALPHA:g}."
    ),
)


def render_html(
    campaigns: Sequence[CampaignReport],
    segments: SegmentReport | None = None,
    *,
    title: str = "decide insights",
    generated_at: datetime | str,
) -> str:
    """One HTML document with a section per campaign and one for the segments.

    ``generated_at`` is shown in the header (the report reads no clock). Every id is
    escaped; the charts are inline SVG with a ``<title>`` and a table of the same
    numbers beside them.
    """
    body = []
    if campaigns:
        body.append(_summary(campaigns))
    for i, report in enumerate(campaigns):
        body.append(_campaign_section(report, i)[0])
    if segments is not None:
        body.append(_segments_section(segments)[0])
    if not campaigns and segments is None:
        body.append('<section class="card"><p>Nothing to report.</p></section>')
    methods = "".join(f"<li>{escape(m)}</li>" for m in _METHODS)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_CSS}</style></head><body><main>"
        f"<header><h1>{escape(title)}</h1>"
        f'<p class="meta">Generated {escape(_when(generated_at))}</p></header>'
        f"{''.join(body)}"
        f"<footer><h2>How to read this report</h2><ul>{methods}</ul></footer>"
        "</main></body></html>\n"
    )
