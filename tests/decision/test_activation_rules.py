"""The rules document's activation keys: notify segments, webhooks and assignment modes,
and the served campaigns the profile fold records."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest

from decision import (
    InvalidRequestError,
    Problem,
    Webhook,
    compile_ruleset,
    validate_events,
    validate_ruleset,
)
from decision.profile import Event, apply, new_state, rebuild, render

DOCUMENT: dict[str, Any] = {
    "segments": [
        {"id": "at_risk", "filter": {"visits": {"$gte": 3}}, "notify": True},
        {"id": "vip", "filter": {"ltv": {"$gte": 1000}}, "notify": True},
        {"id": "quiet", "filter": {}},
    ],
    "placements": [{"id": "hero"}],
    "campaigns": [
        {
            "id": "c",
            "placements": ["hero"],
            "assignment": "hashed",
            "variants": [{"id": "a", "content": 1}],
        }
    ],
    "webhooks": [
        {"id": "crm", "url": "https://crm.example.com/hooks/decide", "segments": ["at_risk"]},
        {"id": "all", "url": "http://127.0.0.1:8080/in"},
    ],
}


def with_changes(path: str, value: Any) -> dict[str, Any]:
    """DOCUMENT with ``path`` (``list.index.key``) set to ``value``."""
    doc = copy.deepcopy(DOCUMENT)
    kind, index, key = path.split(".")
    doc[kind][int(index)][key] = value
    return doc


class TestCompiled:
    def test_notify_segments_are_listed_in_document_order(self):
        """Ruleset.notify_segments names the marked segments."""
        assert ("at_risk", "vip") == compile_ruleset(DOCUMENT).notify_segments

    def test_a_webhook_without_segments_takes_every_notify_segment(self):
        """Webhooks compile with their segments; absent segments mean all marked ones."""
        expected = {
            "crm": Webhook("crm", "https://crm.example.com/hooks/decide", ("at_risk",)),
            "all": Webhook("all", "http://127.0.0.1:8080/in", ("at_risk", "vip")),
        }

        assert expected == dict(compile_ruleset(DOCUMENT).webhooks)

    def test_assignment_defaults_to_stored(self):
        """A campaign keeps assignments unless it says "hashed"."""
        doc = copy.deepcopy(DOCUMENT)
        doc["campaigns"].append(
            {"id": "d", "placements": ["hero"], "variants": [{"id": "a", "content": 1}]}
        )
        rules = compile_ruleset(doc)

        assert (False, True) == (
            rules.campaigns["c"].keeps_assignment,
            rules.campaigns["d"].keeps_assignment,
        )


class TestProblems:
    @pytest.mark.parametrize(
        ("path", "value", "expected"),
        [
            (
                "segments.0.notify",
                "yes",
                Problem("segments[0].notify", "must be true or false, not 'yes'"),
            ),
            (
                "campaigns.0.assignment",
                "sticky",
                Problem("campaigns[0].assignment", "must be 'stored' or 'hashed', not 'sticky'"),
            ),
            (
                "webhooks.0.url",
                "ftp://crm.example.com/x",
                Problem(
                    "webhooks[0].url",
                    "must be an http:// or https:// URL with a host, not 'ftp://crm.example.com/x'",
                ),
            ),
            (
                "webhooks.0.url",
                "https://user:secret@crm.example.com/x",
                Problem(
                    "webhooks[0].url",
                    "must not hold credentials: the signing secret is server configuration",
                ),
            ),
            (
                "webhooks.0.url",
                "https://crm.example.com/x#frag",
                Problem("webhooks[0].url", "must have no fragment and no whitespace"),
            ),
            (
                "webhooks.0.segments",
                ["quiet"],
                Problem(
                    "webhooks[0].segments[0]", "segment 'quiet' is not marked \"notify\": true"
                ),
            ),
            (
                "webhooks.0.segments",
                ["nope"],
                Problem("webhooks[0].segments[0]", "unknown segment 'nope'"),
            ),
            (
                "webhooks.0.secret",
                "s3cret",
                Problem("webhooks[0].secret", "unknown key (allowed: id, segments, url)"),
            ),
        ],
        ids=[
            "notify",
            "assignment",
            "scheme",
            "credentials",
            "fragment",
            "not notify",
            "unknown",
            "secret",
        ],
    )
    def test_each_problem_names_its_path(self, path: str, value: Any, expected: Problem):
        """A bad activation key is refused with its path."""
        assert [expected] == validate_ruleset(with_changes(path, value))

    def test_a_duplicate_webhook_id_is_refused(self):
        """Webhook ids are unique."""
        doc = copy.deepcopy(DOCUMENT)
        doc["webhooks"][1]["id"] = "crm"

        assert [
            Problem("webhooks[1].id", "duplicate webhook id 'crm' (first at webhooks[0].id)")
        ] == (validate_ruleset(doc))

    def test_more_than_twenty_webhooks_are_refused(self):
        """The webhook list is bounded."""
        doc = copy.deepcopy(DOCUMENT)
        doc["webhooks"] = [{"id": f"w{i}", "url": f"https://h{i}.example.com/"} for i in range(21)]

        assert [Problem("webhooks", "has 21 items; at most 20")] == validate_ruleset(doc)


T0 = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)


def served(event_id: str, campaign: str, at: datetime) -> Event:
    """A campaign_served event as the server records it."""
    return Event(event_id, "v1", "campaign_served", at, {"campaign": campaign, "variant": "a"})


class TestServedCampaigns:
    def test_a_served_campaign_is_seen_without_the_visitor_being_active(self):
        """campaign_served fills campaigns.seen and nothing else: no first_seen, no session."""
        state = new_state()
        apply(state, served("s1", "winback_email", T0))

        assert {"campaigns": {"seen": ["winback_email"]}} == render(state)

    def test_served_and_impressions_fold_alike_in_any_order(self):
        """The fold of served events is the same incrementally as rebuilt, in any order."""
        events = [
            served("s1", "winback_email", T0),
            Event("e1", "v1", "session_start", T0.replace(hour=10), {}),
            Event(
                "e2", "v1", "campaign_impression", T0.replace(hour=11), {"campaign": "hero_test"}
            ),
            served("s2", "spring_email", T0.replace(hour=12)),
        ]
        state = new_state()
        for event in reversed(events):
            apply(state, event)

        assert render(rebuild(events)) == render(state)
        assert ["spring_email", "hero_test", "winback_email"] == render(state)["campaigns"]["seen"]

    def test_track_refuses_campaign_served(self):
        """A storefront cannot send the server's own event type."""
        raw = {"event_id": "x", "visitor_id": "v1", "type": "campaign_served", "timestamp": T0,
               "properties": {"campaign": "c"}}  # fmt: skip

        with pytest.raises(InvalidRequestError):
            validate_events([raw], T0)
