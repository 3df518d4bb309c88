"""decide insights ... and decide report against a real demo server."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from client import DecisionClient


@pytest.fixture
def served(demo_server: Any) -> Any:
    """The demo server after 30 visitors saw the home hero and a third of them clicked."""
    events = []
    with DecisionClient(
        demo_server.target, api_key=demo_server.api_key, decide_timeout=5
    ) as client:
        for i in range(30):
            hero = client.decide(f"cli-{i}", ["home_hero"])["home_hero"]
            now = datetime.now(UTC).isoformat()  # after the exposure it follows
            events.append(
                {"event_id": f"s{i}", "visitor_id": f"cli-{i}", "type": "session_start",
                 "timestamp": now}
            )  # fmt: skip
            if i % 3 == 0:
                events.append(
                    {"event_id": f"c{i}", "visitor_id": f"cli-{i}", "type": "campaign_click",
                     "timestamp": now,
                     "properties": {"campaign": hero.campaign_id, "decision_id": hero.decision_id}}
                )  # fmt: skip
        client.track(events)
    return demo_server


def _args(server: Any) -> list[str]:
    return ["--target", server.target, "--admin-token", server.admin_token]


class TestInsightsCommands:
    def test_campaign_prints_a_table(self, served: Any, decide: Callable[..., Any]):
        """The campaign report is a table with every arm, the split check and the window."""
        run = decide("insights", "campaign", "welcome_offer", "--since", "1d", *_args(served))

        assert (0, True, True, True) == (
            run.code,
            "control *" in run.out and "welcome_10" in run.out,
            "split check:" in run.out,
            "attribution window 7 days" in run.out,
        )

    def test_campaign_json_has_the_counts(self, served: Any, decide: Callable[..., Any]):
        """--json prints the report's dict with 30 exposed and 10 clicking visitors."""
        run = decide("insights", "campaign", "welcome_offer", "--json", *_args(served))
        report = run.json()

        assert (30, 10) == (
            sum(v["exposed"] for v in report["variants"]),
            sum(v["clicks"] for v in report["variants"]),
        )

    def test_segments_estimate_and_export(self, served: Any, decide: Callable[..., Any]):
        """segments, estimate and export answer from the 30 stored profiles."""
        segments = decide(
            "insights", "segments", "new_visitors", "returning_customers", *_args(served)
        )
        estimate = decide("insights", "estimate", '{"visits": {"$gte": 1}}', *_args(served))
        export = decide("insights", "export", "new_visitors", *_args(served))

        assert (0, "overlap now" in segments.out) == (segments.code, True)
        assert "matches 30 of 30 stored profiles (100.0%)" == estimate.out.splitlines()[0]
        assert sorted(f"cli-{i}" for i in range(30)) == sorted(export.out.split())

    def test_segments_print_the_members_engagement(self, served: Any, decide: Callable[..., Any]):
        """new_visitors' 30 one-event members: one session each, no page, no time."""
        run = decide("insights", "segments", "new_visitors", *_args(served))
        lines = run.out.splitlines()
        table = lines[lines.index("engagement of the members now:") + 1 :]

        assert ["SEGMENT", "MEMBERS", "SESSIONS/MEMBER", "PAGES/SESSION"] == table[0].split()[:4]
        assert ["new_visitors", "30", "1.0", "0.0", "0.0", "min"] == table[1].split()

    def test_bad_period_is_a_usage_error(self, served: Any, decide: Callable[..., Any]):
        """--since and --start together are refused with exit code 2."""
        run = decide(
            "insights", "campaign", "x", "--since", "1d", "--start", "2026-01-01", *_args(served)
        )

        assert 2 == run.code


class TestReport:
    def test_report_from_a_server_is_self_contained(
        self, served: Any, decide: Callable[..., Any], tmp_path: Path
    ):
        """decide report writes one HTML file with charts and no script or external link."""
        out = tmp_path / "report.html"

        run = decide("report", "--out", out, "--segment", "new_visitors", *_args(served))
        html = out.read_text()

        assert (0, True, False, False) == (
            run.code,
            "welcome_offer" in html and "<svg" in html,
            "<script" in html,
            'src="http' in html or 'href="http' in html,
        )

    def test_demo_data_needs_no_server(self, decide: Callable[..., Any], tmp_path: Path):
        """--demo-data renders the simulated dataset offline."""
        out = tmp_path / "demo.html"

        run = decide("report", "--out", out, "--demo-data")

        assert (0, True) == (run.code, "<svg" in out.read_text())
