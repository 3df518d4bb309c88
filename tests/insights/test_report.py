"""The HTML report: well-formed, self-contained, escaped, one SVG per chart."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from html.parser import HTMLParser

import pytest

from insights import (
    SegmentEngagement,
    SegmentReport,
    SegmentStats,
    VariantCounts,
    analyze_campaign,
    render_html,
)
from insights.demo import demo_campaign_reports, demo_segment_report
from insights.model import STATUS_OK, CampaignReport
from insights.svg import nice_ticks

GENERATED = datetime(2026, 6, 29, 8, 30, tzinfo=UTC)
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"}
SVG_SELF_CLOSING = {"line", "circle", "rect", "path"}


class _Checker(HTMLParser):
    """Collects tags and attributes and checks that every element is closed in order."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.errors: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
        else:
            self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _parse(document: str) -> _Checker:
    checker = _Checker()
    checker.feed(document)
    checker.close()
    return checker


def _expected_charts(campaigns: tuple[CampaignReport, ...], segments: SegmentReport | None) -> int:
    """Conversion chart per campaign, lift chart when comparisons exist, 2 for segments."""
    per_campaign = sum(1 + (r.status == STATUS_OK and len(r.variants) > 1) for r in campaigns)
    if segments is None:
        return per_campaign
    return per_campaign + bool(segments.segments[0].sizes_over_time) + bool(segments.overlap)


@pytest.fixture(name="demo", scope="module")
def fixture_demo() -> tuple[tuple[CampaignReport, ...], SegmentReport, str]:
    campaigns, segments = demo_campaign_reports(), demo_segment_report()
    return (
        campaigns,
        segments,
        render_html(campaigns, segments, title="Demo", generated_at=GENERATED),
    )


class TestDocument:
    def test_parses_and_every_element_is_closed(self, demo):
        """html.parser reads the report and every opened element is closed in order."""
        checker = _parse(demo[2])

        assert [] == checker.errors
        assert [] == checker.stack
        assert demo[2].startswith("<!DOCTYPE html>")

    def test_no_external_resources(self, demo):
        """No URL anywhere, no script, stylesheet link, import, url() or image source."""
        document = demo[2]
        checker = _parse(document)

        assert "http://" not in document and "https://" not in document
        assert [] == [
            t for t, _ in checker.tags if t in {"script", "link", "img", "iframe", "object"}
        ]
        assert [] == [a["src"] for _, a in checker.tags if "src" in a]
        assert [] == [
            a["href"]
            for _, a in checker.tags
            if "href" in a and not (a["href"] or "").startswith("#")
        ]
        assert "@import" not in document and "url(" not in document

    def test_one_svg_per_chart(self, demo):
        """Each campaign draws its conversion chart, plus a lift chart when it has comparisons;
        the segments draw the size lines and the overlap heatmap."""
        campaigns, segments, document = demo
        checker = _parse(document)
        svgs = [a for t, a in checker.tags if t == "svg"]

        assert _expected_charts(campaigns, segments) == len(svgs)
        # 5 conversion charts, 4 lift charts (newsletter_signup waits), sizes and overlap.
        assert 11 == len(svgs)

    def test_every_chart_is_labelled(self, demo):
        """Every SVG has role img and points at its own title and description."""
        checker = _parse(demo[2])
        svgs = [a for t, a in checker.tags if t == "svg"]
        ids = {a["id"] for _, a in checker.tags if "id" in a}

        assert all("img" == a["role"] for a in svgs)
        labels = [ref for a in svgs for ref in (a["aria-labelledby"] or "").split()]
        assert len(labels) == len(set(labels)) == 2 * len(svgs)
        assert set(labels) <= ids

    def test_numbers_are_in_tables_too(self, demo):
        """Each variant's visitors and conversion rate appear as table text next to the chart."""
        campaigns, _, document = demo
        text = " ".join(_parse(document).text)

        for report in campaigns:
            for v in report.variants:
                assert f"{v.counts.exposed:,}" in text
                assert f"{v.conversion_rate * 100:.2f}%" in text

    def test_states_are_announced(self, demo):
        """The demo's mismatch and waiting campaigns show their banners."""
        document = demo[2]

        assert 1 == document.count("<strong>Sample ratio mismatch.</strong>")
        assert 1 == document.count("<strong>Not enough data.</strong>")

    def test_is_deterministic(self, demo):
        """The same reports and timestamp give the same bytes."""
        campaigns, segments, document = demo

        assert document == render_html(campaigns, segments, title="Demo", generated_at=GENERATED)

    def test_nothing_to_report(self):
        """With no campaigns and no segments the report says so and draws nothing."""
        document = render_html([], None, generated_at="2026-06-29")

        assert "Nothing to report." in document
        assert "<svg" not in document


class TestEscaping:
    EVIL = '<script>alert("x")</script>&'

    def _document(self) -> str:
        counts = [
            VariantCounts("control", control=True, exposed=500, conversions=50),
            VariantCounts('<img src=x onerror="alert(1)">', exposed=500, conversions=60),
        ]
        report = analyze_campaign(
            counts, campaign_id=self.EVIL, by_segment={"</table><b>seg": counts}
        )
        segments = SegmentReport(
            segments=(
                SegmentStats("</svg><i>a", 10, (("2026-06-01", 8), ("2026-06-02", 10))),
                SegmentStats(
                    "b&c",
                    4,
                    (("2026-06-01", 3), ("2026-06-02", 4)),
                    engagement=SegmentEngagement(4, 6, 20, 600.0),
                ),
            ),
            overlap=((10, 2), (2, 4)),
            journeys=(("</svg><i>a", "b&c", 2),),
        )
        return render_html([report], segments, title="<title>t", generated_at=GENERATED)

    def test_user_strings_are_escaped(self):
        """Campaign, variant and segment ids and the title appear only escaped."""
        document = self._document()

        assert self.EVIL not in document
        assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;" in document
        assert "<img" not in document and "</table><b>" not in document
        assert "</svg><i>" not in document and "b&c" not in document

    def test_no_injected_elements(self):
        """The parser sees no element the ids tried to inject, and markup stays balanced."""
        checker = _parse(self._document())

        assert set() == {t for t, _ in checker.tags} & {"script", "img", "b", "i"}
        assert [] == checker.errors


class _Rows(HTMLParser):
    """The text of each row of the table with class ``engagement``, cell by cell."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.inside = False
        self.rows: list[list[str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self.inside = ("class", "engagement") in attrs
        elif self.inside and tag == "tr":
            self.rows.append([])
        elif self.inside and tag in ("td", "th") and self.rows:
            self.rows[-1].append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self.inside = False

    def handle_data(self, data: str) -> None:
        if self.inside and self.rows and self.rows[-1]:
            self.rows[-1][-1] += data


def _engagement_rows(report: SegmentReport) -> list[list[str]]:
    parser = _Rows()
    parser.feed(render_html([], report, generated_at=GENERATED))
    return parser.rows


class TestEngagement:
    def test_each_segment_has_a_row(self):
        """One row per segment with engagement: members, sessions, depth, time."""
        report = SegmentReport(
            segments=(
                SegmentStats("browsers", 4, engagement=SegmentEngagement(4, 10, 35, 1845.0)),
                SegmentStats("vip", 1200, engagement=SegmentEngagement(1200, 6000, 30000, 8.64e6)),
                SegmentStats("unreported", 3),
            )
        )
        expected = [
            ["Segment", "Members", "Sessions / member", "Pages / session",
             "Time on site / member", "Bar"],
            ["browsers", "4", "2.5", "3.5", "7 min 41 s", ""],
            ["vip", "1,200", "5.0", "5.0", "2 h 00 min", ""],
        ]  # fmt: skip

        assert expected == _engagement_rows(report)

    def test_no_engagement_no_table(self):
        """A report without engagement figures has no engagement table."""
        report = SegmentReport(segments=(SegmentStats("a", 1),))

        assert [] == _engagement_rows(report)

    def test_the_demo_shows_every_segment(self):
        """Every demo segment has an engagement row."""
        report = demo_segment_report()

        assert list(report.segment_ids) == [row[0] for row in _engagement_rows(report)[1:]]


class TestTicks:
    @pytest.mark.parametrize(
        ("low", "high"), [(0, 0.0331), (-0.09, 0.765), (0, 1), (-0.187, 0.027), (0, 12_660), (3, 3)]
    )
    def test_ticks_cover_the_range(self, low: float, high: float):
        """Ticks start at or below the low end and end at or above the high end."""
        ticks = nice_ticks(low, high)

        assert ticks[0] <= low and ticks[-1] >= high
        assert 3 <= len(ticks) <= 8

    @pytest.mark.parametrize("high", [0.0331, 0.37, 7.5, 12_660])
    def test_steps_are_round(self, high: float):
        """Tick steps are 1, 2, 2.5 or 5 times a power of ten."""
        ticks = nice_ticks(0, high)
        step = ticks[1] - ticks[0]
        mantissa = step / 10 ** math.floor(math.log10(step))

        assert any(mantissa == pytest.approx(m) for m in (1, 2, 2.5, 5))
