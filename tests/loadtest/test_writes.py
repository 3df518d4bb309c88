"""``decide loadtest --target`` leaves a store with real experiments as it found it
(issue 12, finding 5), unless ``--allow-writes`` asks it to write."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from client import DecisionClient
from server.cli import EXIT_OK, EXIT_USAGE, main

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


class TestAgainstAStoreWithAnExperiment:
    def test_by_default_the_report_is_unchanged_and_with_allow_writes_it_changes(
        self, demo_server: Any, capsys: pytest.CaptureFixture[str]
    ):
        """After the README's experiment, a default load test against the server leaves
        the campaign report exactly as it was; with --allow-writes it records exposures
        and purchases that enter the report."""
        start = datetime.now(UTC) - timedelta(days=1)
        end = start + timedelta(days=2)
        with DecisionClient(
            demo_server.target,
            api_key=demo_server.api_key,
            admin_token=demo_server.admin_token,
            decide_timeout=5,
        ) as client:
            _run_experiment(client)
            before = client.campaign_report(CAMPAIGN, start=start, end=end).to_dict()
            capsys.readouterr()

            read_only_code = main(
                ["loadtest", "--target", demo_server.target, "--api-key", demo_server.api_key]
                + ["--duration", "1", "--warmup", "0", "--concurrency", "4", "--json"]
            )
            read_only = json.loads(capsys.readouterr().out)
            after_read_only = client.campaign_report(CAMPAIGN, start=start, end=end).to_dict()

            writing_code = main(
                ["loadtest", "--target", demo_server.target, "--api-key", demo_server.api_key]
                + ["--duration", "1", "--warmup", "0", "--concurrency", "4", "--json"]
                + ["--visitors", "200", "--allow-writes"]
            )
            writing = json.loads(capsys.readouterr().out)
            after_writes = client.campaign_report(CAMPAIGN, start=start, end=end).to_dict()

        assert (EXIT_OK, EXIT_OK) == (read_only_code, writing_code)
        assert (False, True) == (read_only["settings"]["writes"], writing["settings"]["writes"])
        assert read_only["result"]["methods"]["Decide"]["calls"] > 0
        assert {} == read_only["result"]["errors"] == writing["result"]["errors"]
        assert {"Decide"} == set(read_only["result"]["methods"])
        assert {"Decide", "Track"} == set(writing["result"]["methods"])
        assert before == after_read_only
        assert _exposed(after_writes) > _exposed(before)

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
