"""``decide loadtest --target`` leaves a store with real experiments as it found it
(issue 12, finding 5), unless ``--allow-writes`` asks it to write."""

from __future__ import annotations

import contextlib
import io
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from client import DecisionClient
from cli import EXIT_OK, EXIT_USAGE, main

pytestmark = pytest.mark.slow

CAMPAIGN = "hero_headline_test"

# The README's experiment ("An experiment from rules to report"), on a placement the
# load tester asks for.
HERO_TEST = {
    "id": CAMPAIGN,
    "name": "Home hero: urgency headline vs. the current one",
    "placements": ["home_hero"],
    "priority": 50,
    "holdout": 10,
    "variants": [
        {"id": "control", "weight": 1, "control": True, "content": {"headline": "New"}},
        {"id": "urgency", "weight": 1, "content": {"headline": "Only this week"}},
    ],
}


def _run_experiment(client: DecisionClient, shoppers: int = 40) -> None:
    """Publish the campaign, then decide for shoppers and track what they did."""
    rules: Any = client.get_rules().document
    rules["campaigns"].append(HERO_TEST)
    client.publish_rules(rules, comment="hero headline test")
    now = datetime.now(UTC).isoformat()
    for i in range(shoppers):
        visitor = f"shopper-{i}"
        hero = client.decide(visitor, ["home_hero"])["home_hero"]
        events = [{"event_id": f"{visitor}-s", "visitor_id": visitor, "type": "session_start",
                   "timestamp": now}]  # fmt: skip
        if i % 4 == 0:
            events.append(
                {"event_id": f"{visitor}-c", "visitor_id": visitor, "type": "campaign_click",
                 "timestamp": now, "properties": {"campaign": CAMPAIGN,
                                                  "decision_id": hero.decision_id}}
            )  # fmt: skip
        if i % 5 == 0:
            events.append(
                {"event_id": f"{visitor}-p", "visitor_id": visitor, "type": "purchase",
                 "timestamp": now, "properties": {"order_id": f"o-{i}", "value": 50.0 + i,
                                                  "articles": 1}}
            )  # fmt: skip
        client.track(events)


def _report_around_a_load_test(server: Any, *extra: str) -> tuple[Any, Any, dict[str, Any]]:
    """Run the experiment on ``server``, then a short ``decide loadtest --target`` with
    ``extra`` arguments; the campaign report before and after, and the load test's JSON
    report."""
    start = datetime.now(UTC) - timedelta(days=1)
    end = start + timedelta(days=2)
    with DecisionClient(
        server.target,
        api_key=server.api_key,
        admin_token=server.admin_token,
        decide_timeout=5,
    ) as client:
        _run_experiment(client)
        before = client.campaign_report(CAMPAIGN, start=start, end=end).to_dict()
        output = io.StringIO()
        with contextlib.redirect_stdout(output):
            code = main(
                ["loadtest", "--target", server.target, "--api-key", server.api_key]
                + ["--duration", "1", "--warmup", "0", "--concurrency", "4", "--json"]
                + ["--quiet", *extra]
            )
        after = client.campaign_report(CAMPAIGN, start=start, end=end).to_dict()
    assert EXIT_OK == code, output.getvalue()
    return before, after, json.loads(output.getvalue())


class TestAgainstAStoreWithAnExperiment:
    def test_by_default_the_campaign_report_is_unchanged(self, demo_server: Any):
        """After the README's experiment, a load test against the server with default
        flags sends Decide calls only, as previews, and the report stays as it was."""
        before, after, load = _report_around_a_load_test(demo_server)

        assert before == after
        assert load["result"]["methods"]["Decide"]["calls"] > 0
        assert {} == load["result"]["errors"]
        assert {"Decide"} == set(load["result"]["methods"])
        assert load["settings"]["writes"] is False

    def test_with_allow_writes_the_load_enters_the_report(self, demo_server: Any):
        """--allow-writes records the load's decisions as exposures (and sends Track
        calls), so the report changes: what the default protects against."""
        before, after, load = _report_around_a_load_test(
            demo_server, "--allow-writes", "--visitors", "200"
        )

        assert load["settings"]["writes"] is True
        assert {"Decide", "Track"} == set(load["result"]["methods"])
        assert {} == load["result"]["errors"]
        assert _exposed(after) > _exposed(before)

    def test_track_calls_against_a_target_need_allow_writes(
        self, demo_server: Any, capsys: pytest.CaptureFixture[str]
    ):
        """--track-ratio above 0 with --target and without --allow-writes is refused
        before any call, naming --allow-writes."""
        code = main(
            ["loadtest", "--target", demo_server.target, "--track-ratio", "0.2"]
            + ["--duration", "1"]
        )

        assert EXIT_USAGE == code
        assert "--allow-writes" in capsys.readouterr().err

    def test_the_text_report_says_nothing_was_written(
        self, demo_server: Any, capsys: pytest.CaptureFixture[str]
    ):
        """The text report names the mode it ran in."""
        code = main(
            ["loadtest", "--target", demo_server.target, "--api-key", demo_server.api_key]
            + ["--duration", "1", "--warmup", "0", "--concurrency", "2", "--quiet"]
        )
        out = capsys.readouterr().out

        assert EXIT_OK == code
        assert "writes: none (Decide with preview" in out


def _exposed(report: dict[str, Any]) -> int:
    return sum(variant["exposed"] for variant in report["variants"])
