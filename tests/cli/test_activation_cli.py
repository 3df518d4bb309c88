"""decide batch, query --now, changes watch and webhooks against a real server."""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from client import DecisionClient

ADMIN_TOKEN = "cli-activation-token"
NOW = datetime.now(UTC)

RULES: dict[str, Any] = {
    "segments": [
        {
            "id": "buyers",
            "filter": {"customer_segment.outbounds_number_total": {"$gte": 1}},
            "notify": True,
        }
    ],
    "placements": [{"id": "email_hero", "fallback": {"headline": "Hello"}}, {"id": "hero"}],
    "campaigns": [
        {
            "id": "thanks_email",
            "placements": ["email_hero"],
            "audience": {"segments": ["buyers"]},
            "variants": [
                {"id": "plain", "content": {"headline": "Thank you", "code": "THX5"}},
                {"id": "nested", "content": {"headline": "Thanks!", "code": {"value": "THX10"}}},
            ],
        },
        {
            "id": "launch",
            "placements": ["hero"],
            "schedule": {"start": (NOW + timedelta(days=10)).strftime("%Y-%m-%dT00:00:00Z")},
            "variants": [{"id": "only", "content": {"headline": "New"}}],
        },
    ],
    "webhooks": [{"id": "crm", "url": "https://crm.example.com/hooks", "segments": ["buyers"]}],
}


@pytest.fixture
def shop(tmp_path: Path) -> Iterator[Any]:
    """A server with the rules above and 6 buyers (after its baseline sweep); webhooks
    allowed nowhere."""
    from server.app import create_server
    from server.config import ServerConfig
    from server.rules.sqlite import SQLiteRulesStore

    db = tmp_path / "rules.db"
    store = SQLiteRulesStore(db, seed=False)
    try:
        store.publish(json.dumps(RULES), comment="cli activation", author="tests")
    finally:
        store.close()
    config = ServerConfig(
        db_path=str(db),
        host="127.0.0.1",
        port=0,
        admin_token=ADMIN_TOKEN,
        poll_interval=0.05,
        grace=0,
    )
    server, port = create_server(config)
    try:
        target = f"127.0.0.1:{port}"
        deadline = datetime.now(UTC) + timedelta(seconds=15)
        while server.activation.worker.last_sweep is None and datetime.now(UTC) < deadline:
            time.sleep(0.02)  # the baseline: changes found before it are silent
        with DecisionClient(target, admin_token=ADMIN_TOKEN) as client:
            client.track(
                [
                    {"event_id": f"p{i}", "visitor_id": f"buyer-{i}", "type": "purchase",
                     "timestamp": NOW.isoformat(), "properties": {"order_id": f"o{i}", "value": 20, "articles": 1}}
                    for i in range(6)
                ]
            )  # fmt: skip
        yield server, target
    finally:
        server.stop(None).wait(10)


def _args(target: str) -> list[str]:
    return ["--target", target, "--admin-token", ADMIN_TOKEN]


class TestBatch:
    def test_a_segment_batch_as_csv_has_a_column_per_content_field(
        self, shop: Any, decide: Callable[..., Any]
    ):
        """CSV: one row per buyer; content fields are columns, nested values JSON."""
        _, target = shop
        run = decide(
            "batch",
            "--segment",
            "buyers",
            "--placement",
            "email_hero",
            "--format",
            "csv",
            *_args(target),
        )
        rows = list(csv.DictReader(io.StringIO(run.out)))

        assert 0 == run.code
        assert [f"buyer-{i}" for i in range(6)] == [r["visitor_id"] for r in rows]
        assert {"Thank you", "Thanks!"} >= {r["email_hero.headline"] for r in rows}
        assert {"THX5", '{"value": "THX10"}'} >= {r["email_hero.code"] for r in rows}
        assert "decided 6 visitors (preview)" in run.err

    def test_a_recorded_send_from_a_file_is_reported_for_its_channel(
        self, shop: Any, decide: Callable[..., Any], tmp_path: Path
    ):
        """A recorded send from a file prints JSONL and is reported for its channel."""
        _, target = shop
        ids = tmp_path / "ids.txt"
        ids.write_text("buyer-0\nbuyer-1\nbuyer-2\n")
        run = decide(
            "batch", "--visitors", ids, "--placement", "email_hero", "--record",
            "--channel", "email", "--send-id", "thanks-1", *_args(target),
        )  # fmt: skip
        lines = [json.loads(line) for line in run.out.splitlines()]
        report = decide(
            "insights", "campaign", "thanks_email", "--channel", "email", "--json", *_args(target)
        )

        assert ["buyer-0", "buyer-1", "buyer-2"] == [line["visitor_id"] for line in lines]
        assert {"thanks_email"} == {line["email_hero"]["campaign"] for line in lines}
        assert 3 == sum(v["exposed"] for v in report.json()["variants"])

    def test_channel_without_record_is_a_usage_error(self, shop: Any, decide: Callable[..., Any]):
        """--channel tags recorded sends only."""
        _, target = shop
        run = decide(
            "batch",
            "--segment",
            "buyers",
            "--placement",
            "hero",
            "--channel",
            "email",
            *_args(target),
        )

        assert 2 == run.code


class TestQueryNow:
    def test_query_at_a_later_moment_shows_the_scheduled_campaign(
        self, shop: Any, decide: Callable[..., Any]
    ):
        """--now previews the launch; without it the campaign is not on yet."""
        _, target = shop
        later = (NOW + timedelta(days=11)).isoformat()
        run = decide(
            "query",
            "--visitor",
            "v1",
            "--placement",
            "hero",
            "--now",
            later,
            "--json",
            *_args(target),
        )
        today = decide("query", "--visitor", "v1", "--placement", "hero", "--json", *_args(target))

        assert ("launch", None) == (
            run.json()["decisions"][0]["campaign_id"],
            today.json()["decisions"][0]["campaign_id"],
        )


class TestChangesAndWebhooks:
    def test_watch_prints_kept_changes_and_a_resume_token(
        self, shop: Any, decide: Callable[..., Any]
    ):
        """changes watch --from-start --for 1 prints kept changes as JSON lines, then the token."""
        _, target = shop
        with DecisionClient(target, admin_token=ADMIN_TOKEN) as client:
            client.track(
                [{"event_id": "late", "visitor_id": "late-buyer", "type": "purchase",
                  "timestamp": NOW.isoformat(), "properties": {"order_id": "ol", "value": 5, "articles": 1}}]
            )  # fmt: skip
            stream = client.watch_segment_changes(["buyers"], from_start=True, timeout=15)
            next(m for m in stream if any(c.visitor_id == "late-buyer" for c in m.changes))
        run = decide(
            "changes", "watch", "--segment", "buyers", "--from-start", "--for", "1", *_args(target)
        )
        lines = [json.loads(line) for line in run.out.splitlines()]

        *changes, last = lines

        assert [f"buyer-{i}" for i in range(6)] + ["late-buyer"] == [
            c["visitor_id"] for c in changes
        ]
        assert {"entered"} == {c["change"] for c in changes}
        assert str(changes[-1]["seq"]) == last["resume_token"]

    def test_deliveries_show_a_target_off_the_allow_list_as_blocked(
        self, shop: Any, decide: Callable[..., Any]
    ):
        """The webhook's URL is on no allow-list: the log says blocked, and why."""
        _, target = shop
        with DecisionClient(target, admin_token=ADMIN_TOKEN) as client:
            client.track(
                [{"event_id": "b2", "visitor_id": "new-buyer", "type": "purchase",
                  "timestamp": NOW.isoformat(), "properties": {"order_id": "o2", "value": 5, "articles": 1}}]
            )  # fmt: skip
            deadline = datetime.now(UTC) + timedelta(seconds=15)
            while not client.webhook_deliveries(status="blocked") and datetime.now(UTC) < deadline:
                time.sleep(0.02)
        run = decide("webhooks", "deliveries", "--status", "blocked", "--json", *_args(target))
        table = decide("webhooks", "deliveries", *_args(target))

        (blocked,) = run.json()
        assert ("crm", "blocked") == (blocked["webhook"], blocked["status"])
        assert "allow-list" in blocked["error"]
        assert "blocked" in table.out
