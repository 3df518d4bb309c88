"""DecisionClient and AsyncDecisionClient against a real demo server.

Every test in a class using ``client``/``make_client`` runs twice: sync and aio.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from google.protobuf.message import Message

import client as client_package
from client import (
    CLIENT_FALLBACK,
    CandidateTrace,
    DecideResult,
    Decision,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    RulesDocument,
    RulesVersion,
    ServerStatus,
    Unauthenticated,
    Unavailable,
    ValidationResult,
    VersionList,
    VisitorSegments,
)

NEW_VISITOR = {"visits": 1}
"""Profile overrides that put any visitor in the demo's ``new_visitors`` segment."""


def _walk(value: Any) -> Iterator[Any]:
    """Every value reachable from ``value`` through dataclass fields and containers."""
    yield value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            yield from _walk(getattr(value, f.name))
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _walk(k)
            yield from _walk(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _walk(v)


def _no_protobuf(value: Any) -> list[Any]:
    return [v for v in _walk(value) if isinstance(v, Message)]


class TestDecide:
    def test_decide_returns_typed_decisions_in_request_order(self, client):
        """decide returns a DecideResult of Decisions, one per placement, in order."""
        result = client.decide(
            "visitor-1", ["home_hero", "product_recommendations"], profile_overrides=NEW_VISITOR
        )

        assert isinstance(result, DecideResult)
        assert ["home_hero", "product_recommendations"] == [d.placement for d in result.decisions]
        assert all(isinstance(d, Decision) for d in result.decisions)
        assert result.ruleset_version >= 1
        assert result.ruleset_hash
        assert False is result.fallback

    def test_campaign_decision_carries_campaign_and_parsed_content(self, client):
        """A new visitor gets the welcome offer on home_hero, content parsed from JSON."""
        decision = client.decide("visitor-1", ["home_hero"], profile_overrides=NEW_VISITOR)[
            "home_hero"
        ]

        assert "CAMPAIGN" == decision.reason
        assert "welcome_offer" == decision.campaign_id
        assert decision.variant_id in {"control", "welcome_10"}
        assert isinstance(decision.content, dict)
        assert decision.decision_id
        assert "new_visitors" in decision.matched_segments
        assert False is decision.is_fallback
        assert None is decision.explanation

    def test_server_fallback_has_no_campaign(self, client):
        """A placement no campaign applies to serves the placement's fallback content."""
        decision = client.decide("visitor-1", ["product_recommendations"], {"device": "desktop"})[
            "product_recommendations"
        ]

        assert "FALLBACK" == decision.reason
        assert None is decision.campaign_id
        assert None is decision.variant_id
        assert "Bestsellers" == decision.content["title"]

    def test_unknown_placement_is_data_not_an_error(self, client):
        """An undefined placement comes back with reason UNKNOWN_PLACEMENT and no content."""
        decision = client.decide("visitor-1", ["no_such_slot"])["no_such_slot"]

        assert ("UNKNOWN_PLACEMENT", None) == (decision.reason, decision.content)

    def test_explain_returns_candidate_traces(self, client):
        """explain=True returns, per placement, a CandidateTrace for each candidate."""
        decision = client.decide(
            "visitor-1", ["home_hero"], explain=True, profile_overrides=NEW_VISITOR
        )["home_hero"]

        assert isinstance(decision.explanation, tuple)
        assert all(isinstance(t, CandidateTrace) for t in decision.explanation)
        outcomes = {t.campaign_id: t.outcome for t in decision.explanation}
        assert "SELECTED" == outcomes["welcome_offer"]
        assert "AUDIENCE_NOT_MATCHED" == outcomes["vip_early_access"]
        assert "LOST_ON_PRIORITY" == outcomes["summer_sale"]

    def test_context_reaches_the_filters(self, client):
        """Context values travel as a Struct and reach filters under context.*."""
        cart = {"items": [{"sku": "A"}], "updated_at": "2020-01-01T00:00:00Z"}
        profile = {"cart": cart, "visits": 3}

        mobile = client.decide("v", ["popup"], {"device": "mobile"}, profile_overrides=profile)
        desktop = client.decide("v", ["popup"], {"device": "desktop"}, profile_overrides=profile)

        assert "cart_rescue_mobile" == mobile["popup"].campaign_id
        assert "cart_rescue_mobile" != desktop["popup"].campaign_id

    def test_results_contain_no_protobuf_messages(self, client):
        """Nothing in a result is a protobuf message: only dataclasses and plain values."""
        result = client.decide(
            "visitor-1", ["home_hero", "popup"], explain=True, profile_overrides=NEW_VISITOR
        )

        assert [] == _no_protobuf(result)
        assert [] == _no_protobuf(client.visitor_segments("visitor-1"))
        assert [] == _no_protobuf(client.list_versions())
        assert [] == _no_protobuf(client.status())

    def test_results_are_frozen(self, client):
        """Results are immutable value objects."""
        result = client.decide("visitor-1", ["home_hero"])

        with pytest.raises(dataclasses.FrozenInstanceError):
            result.decisions[0].reason = "x"  # type: ignore[misc]

    def test_empty_visitor_id_raises_invalid_argument_with_violations(self, client):
        """A malformed request raises InvalidArgument naming the offending field."""
        with pytest.raises(InvalidArgument) as caught:
            client.decide("", ["home_hero"], fallbacks={"home_hero": None})

        assert "visitor_id" in [field for field, _ in caught.value.violations]

    def test_placements_as_a_string_is_a_type_error(self, client):
        """A bare string is refused rather than read as one placement per character."""
        with pytest.raises(TypeError):
            client.decide("visitor-1", "home_hero")

    def test_context_that_is_not_json_raises_invalid_argument(self, client):
        """A context value a Struct cannot carry is an InvalidArgument, raised before any call."""
        with pytest.raises(InvalidArgument) as caught:
            client.decide("visitor-1", ["home_hero"], {"when": datetime(2026, 1, 1)})

        assert "context" == caught.value.violations[0][0]


class TestVisitorSegments:
    def test_visitor_segments_lists_segment_ids(self, client):
        """visitor_segments returns the ids of the segments the visitor is in."""
        result = client.visitor_segments("visitor-1", profile_overrides=NEW_VISITOR)

        assert isinstance(result, VisitorSegments)
        assert {"everyone", "new_visitors"} <= set(result.segment_ids)
        assert "returning_customers" not in result.segment_ids
        assert result.ruleset_version >= 1

    def test_profile_overrides_change_the_segments(self, client):
        """Overriding profile fields moves the visitor between segments."""
        result = client.visitor_segments(
            "visitor-1", profile_overrides={
                "visits": 5,
                "customer_segment": {
                    "outbounds_number_total": 2,
                    "outbounds_value_total": 5000,
                },
            },
        )

        assert {"returning_customers", "high_value_customers"} <= set(result.segment_ids)
        assert "new_visitors" not in result.segment_ids


class TestAdmin:
    def test_validate_valid_document(self, client):
        """A valid document validates with its content hash and no problems."""
        import decision

        result = client.validate_rules(decision.demo_document())

        assert isinstance(result, ValidationResult)
        assert (True, ()) == (result.valid, result.problems)
        assert result.content_hash

    def test_validate_reports_every_problem_with_its_path(self, client):
        """An invalid document (given as JSON text) is reported with per-path problems."""
        text = json.dumps({"segments": [], "placements": [{"id": "p"}], "campaigns": [{}]})

        result = client.validate_rules(text)

        assert False is result.valid
        assert None is result.content_hash
        assert result.problems
        assert all(p.path.startswith("campaigns[0]") for p in result.problems)

    def test_publish_get_and_list_round_trip(self, client):
        """A published document becomes active, is returned as published, and is listed."""
        import decision

        document = decision.demo_document()
        document["placements"][0]["name"] = "Hero, edited"
        before = client.list_versions().active_version

        published = client.publish_rules(document, expected_version=before, comment="edit")
        fetched = client.get_rules()
        history = client.list_versions()

        assert isinstance(published, RulesVersion)
        assert (before + 1, "edit", True) == (
            published.version,
            published.comment,
            published.active,
        )
        assert isinstance(published.created_at, datetime)
        assert isinstance(fetched, RulesDocument)
        assert document == fetched.document
        assert published == fetched.version
        assert isinstance(history, VersionList)
        assert published.version == history.active_version
        assert [published.version, before] == [v.version for v in history.versions[:2]]

    def test_rollback_restores_an_earlier_document(self, client):
        """rollback makes an earlier version's document active as a new version."""
        import decision

        original = client.get_rules()
        edited = decision.demo_document()
        edited["campaigns"] = []
        client.publish_rules(edited)

        restored = client.rollback(original.version.version, comment="undo")

        assert original.version.version == restored.restored_from
        assert original.document == client.get_rules().document

    def test_stale_expected_version_raises_failed_precondition(self, client):
        """Publishing on top of a version that is no longer active fails, nothing changes."""
        import decision

        active = client.list_versions().active_version
        client.publish_rules(decision.demo_document(), expected_version=active)

        with pytest.raises(FailedPrecondition):
            client.publish_rules(decision.demo_document(), expected_version=active)

        assert active + 1 == client.list_versions().active_version

    def test_invalid_publish_raises_invalid_argument_with_violations(self, client):
        """Publishing an invalid document raises InvalidArgument listing (path, message)."""
        document = {"segments": [], "placements": [], "campaigns": [{"id": "x"}]}

        with pytest.raises(InvalidArgument) as caught:
            client.publish_rules(document)

        assert caught.value.violations
        assert all(field.startswith("campaigns[0]") for field, _ in caught.value.violations)
        assert isinstance(caught.value.__cause__, __import__("grpc").RpcError)

    def test_unknown_version_raises_not_found(self, client):
        """Asking for a version that does not exist raises NotFound."""
        with pytest.raises(NotFound):
            client.get_rules(9999)

    def test_status_reports_the_served_version(self, client):
        """status() says which version the server serves and that reloads succeed."""
        status = client.status()

        assert isinstance(status, ServerStatus)
        assert status.active_version >= 1
        assert status.content_hash
        assert None is status.last_reload_error

    def test_health_is_serving(self, client):
        """The standard health check reports SERVING once rules are loaded."""
        assert "SERVING" == client.health()

    def test_wrong_admin_token_raises_unauthenticated(self, make_client, demo_server):
        """An admin call with a wrong token raises Unauthenticated."""
        c = make_client(demo_server.target, admin_token="wrong")

        with pytest.raises(Unauthenticated):
            c.list_versions()


class TestFailOpen:
    def test_unreachable_server_serves_configured_fallbacks(self, make_client, dead_target):
        """With fallbacks, a decide against a dead server returns them, marked as such."""
        c = make_client(dead_target, fallbacks={"home_hero": {"headline": "Hi"}})

        started = time.monotonic()
        result = c.decide("visitor-1", ["home_hero", "popup"])
        elapsed = time.monotonic() - started

        assert elapsed < 2.0
        assert True is result.fallback
        assert [({"headline": "Hi"}, True, CLIENT_FALLBACK), (None, True, CLIENT_FALLBACK)] == [
            (d.content, d.is_fallback, d.reason) for d in result.decisions
        ]

    def test_per_call_fallbacks_win_over_constructor_ones(self, make_client, dead_target):
        """Fallbacks given to decide() override the client's for the same placement."""
        c = make_client(dead_target, fallbacks={"home_hero": "client", "popup": "client"})

        result = c.decide("visitor-1", ["home_hero", "popup"], fallbacks={"popup": "call"})

        assert ["client", "call"] == [d.content for d in result.decisions]

    def test_without_fallbacks_decide_raises_unavailable(self, make_client, dead_target):
        """With no fallbacks configured, a failed decide raises Unavailable."""
        c = make_client(dead_target)

        with pytest.raises(Unavailable) as caught:
            c.decide("visitor-1", ["home_hero"])

        assert caught.value.retryable

    def test_silent_server_hits_the_default_deadline_then_falls_back(self, make_client, black_hole):
        """A server that never answers is cut off by the default deadline; fallbacks served."""
        c = make_client(black_hole, fallbacks={"home_hero": "static"})

        started = time.monotonic()
        result = c.decide("visitor-1", ["home_hero"])
        elapsed = time.monotonic() - started

        assert elapsed < 2.0
        assert "static" == result["home_hero"].content

    def test_silent_server_without_fallbacks_raises_deadline_exceeded(
        self, make_client, black_hole
    ):
        """The default 100 ms deadline applies: the call ends as Unavailable/DEADLINE_EXCEEDED."""
        import grpc

        c = make_client(black_hole)

        with pytest.raises(Unavailable) as caught:
            c.decide("visitor-1", ["home_hero"])

        assert grpc.StatusCode.DEADLINE_EXCEEDED == caught.value.code

    def test_fallback_logs_a_warning(self, make_client, dead_target, caplog):
        """Serving fallbacks is logged as a warning naming the placements."""
        c = make_client(dead_target, fallbacks={})

        with caplog.at_level(logging.WARNING, logger="client"):
            c.decide("visitor-1", ["home_hero"])

        assert any("home_hero" in r.getMessage() for r in caplog.records)

    def test_auth_failure_is_raised_even_with_fallbacks(self, make_client, demo_server):
        """A missing api key is a caller bug: Unauthenticated is raised, not hidden."""
        c = make_client(demo_server.target, fallbacks={"home_hero": "static"})

        with pytest.raises(Unauthenticated):
            c.decide("visitor-1", ["home_hero"])


class TestDefaults:
    def test_default_deadlines(self):
        """decide and visitor_segments default to 100 ms; admin calls get longer."""
        with client_package.DecisionClient("127.0.0.1:1") as c:
            settings = c.settings

        assert 0.1 == settings.decide_timeout
        assert settings.admin_timeout > settings.decide_timeout

    def test_context_manager_closes_the_channel(self, dead_target):
        """Leaving the with block closes the channel: later calls fail."""
        with client_package.DecisionClient(dead_target) as c:
            pass

        with pytest.raises(ValueError):
            c.decide("visitor-1", ["home_hero"])


class TestExports:
    def test_all_names_are_exported(self):
        """Every name in client.__all__ exists, and the main API is in it."""
        missing = [n for n in client_package.__all__ if not hasattr(client_package, n)]

        assert [] == missing
        assert {"DecisionClient", "AsyncDecisionClient", "DecideError"} <= set(
            client_package.__all__
        )
