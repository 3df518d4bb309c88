"""Servicer conversions, without a network: the servicers' coroutines are run directly.

(grpc_testing cannot drive asyncio servicers, and status codes come from the edge
around them, so they are tested against a real server in test_status.py.)
"""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime
from typing import Any

import asyncio

import grpc
import pytest

from protos import decisioning_pb2 as pb
from server.api.convert import new_decision_id
from server.api.decision_service import DecisionServicer
from server.api.rules_admin import RulesAdminServicer
from server.executors import Pool
from server.profiles.cache import EmptyProfileStore, ProfileMemos
from server.rules.reloader import ReloadStatus
from server.rules.snapshot import build_snapshot

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
DECISION_SERVICE = pb.DESCRIPTOR.services_by_name["DecisionService"]
ADMIN_SERVICE = pb.DESCRIPTOR.services_by_name["RulesAdmin"]

DOCUMENT = {
    "segments": [
        {"id": "gold", "filter": {"tier": "gold"}},
        {"id": "mobile", "filter": {"context.device": "mobile"}},
    ],
    "placements": [
        {"id": "hero", "fallback": {"title": "Welcome"}},
        {"id": "footer"},
    ],
    "exclusion_groups": [],
    "campaigns": [
        {
            "id": "gold_hero",
            "placements": ["hero"],
            "audience": {"segments": ["gold"]},
            "variants": [{"id": "shiny", "content": {"title": "Hello, gold member", "n": 1}}],
        }
    ],
}


class _Source:
    """A snapshot source holding one fixed snapshot."""

    def __init__(self, snapshot: Any) -> None:
        self.snapshot = snapshot
        self.status = ReloadStatus(store_version=7, reload_count=3)

    def poll_once(self) -> bool:
        return False

    def adopt(self, version: int, document: str, ruleset: Any) -> bool:
        return False


class _Profiles:
    def peek(self, visitor_id: str) -> dict[str, Any] | None:
        return {"tier": "gold", "name": "Ada"} if visitor_id == "ada" else None

    get = peek


class _Context:
    """What the servicers use of a grpc.aio ServicerContext."""

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return ()

    async def send_initial_metadata(self, metadata: Any) -> None:
        pass


class _Servicer:
    """Runs a servicer's coroutines to completion, as a grpc.aio server would."""

    def __init__(self, servicer: Any) -> None:
        self.servicer = servicer

    def call(self, method: str, request: Any) -> Any:
        response = asyncio.run(getattr(self.servicer, method)(request, _Context()))
        if isinstance(response, bytes):  # Decide answers with pre-encoded bytes
            return pb.DecideResponse.FromString(response)
        return response


def _pool() -> Pool:
    return Pool("test", threads=1, queue=10)


@pytest.fixture
def snapshot():
    return build_snapshot(7, json.dumps(DOCUMENT), NOW)


@pytest.fixture
def decisions(snapshot):
    return _Servicer(
        DecisionServicer(_Source(snapshot), _Profiles(), reads=_pool(), clock=lambda: NOW)
    )


def _call(test_server, service, method: str, request) -> tuple[Any, grpc.StatusCode]:
    return test_server.call(method, request), grpc.StatusCode.OK


def _decide(test_server, **fields) -> pb.DecideResponse:
    context = fields.pop("context", None)
    overrides = fields.pop("profile_overrides", None)
    request = pb.DecideRequest(**fields)
    if context:
        request.context.update(context)
    if overrides:
        request.profile_overrides.update(overrides)
    response, code = _call(test_server, DECISION_SERVICE, "Decide", request)
    assert grpc.StatusCode.OK == code
    return response


class _SharedProfiles:
    """Returns the same profile object until it is replaced, as a caching store does."""

    def __init__(self) -> None:
        self.profiles: dict[str, dict[str, Any]] = {"ada": {"tier": "gold"}}

    def peek(self, visitor_id: str) -> dict[str, Any] | None:
        return self.profiles.get(visitor_id)

    get = peek


class TestProfileMemos:
    def test_one_memo_per_profile_object_and_ruleset(self):
        """The memo is kept while both the profile object and the ruleset are the same;
        an equal but different object or another ruleset starts a fresh one."""
        memos = ProfileMemos()
        profile, ruleset = {"tier": "gold"}, object()
        memo = memos.get("ada", profile, ruleset)

        assert memo is memos.get("ada", profile, ruleset)
        assert memo is not memos.get("ada", {"tier": "gold"}, ruleset)
        assert memos.get("ada", profile, ruleset) is not memos.get("ada", profile, object())
        assert memos.get("bob", profile, ruleset) is not memos.get("ada", profile, ruleset)

    def test_bounded_oldest_first(self):
        """Past maxsize the oldest visitor's memo goes; maxsize 0 disables memos."""
        memos = ProfileMemos(maxsize=2)
        ruleset = object()
        first = memos.get("a", None, ruleset)
        memos.get("b", None, ruleset)
        memos.get("c", None, ruleset)

        assert 2 == len(memos)
        assert first is not memos.get("a", None, ruleset)
        assert None is ProfileMemos(maxsize=0).get("a", None, ruleset)

    def test_decide_follows_profile_changes_and_overrides(self, snapshot):
        """A memo never outlives its profile: overrides bypass it, a replaced profile
        object is evaluated afresh."""
        profiles = _SharedProfiles()
        test_server = _Servicer(
            DecisionServicer(_Source(snapshot), profiles, reads=_pool(), clock=lambda: NOW)
        )

        def reason(**fields: Any) -> int:
            return _decide(test_server, visitor_id="ada", placements=["hero"], **fields)

        reasons = [reason().decisions[0].reason]
        reasons.append(reason(profile_overrides={"tier": "silver"}).decisions[0].reason)
        reasons.append(reason().decisions[0].reason)
        profiles.profiles["ada"] = {"tier": "silver"}
        reasons.append(reason().decisions[0].reason)

        expected = [pb.REASON_CAMPAIGN, pb.REASON_FALLBACK, pb.REASON_CAMPAIGN, pb.REASON_FALLBACK]
        assert expected == reasons


class TestDecide:
    def test_one_decision_per_placement_in_order(self, decisions):
        """Decisions come back in request order with the snapshot's version and hash."""
        response = _decide(decisions, visitor_id="v", placements=["footer", "hero"])

        assert ["footer", "hero"] == [d.placement for d in response.decisions]
        assert 7 == response.ruleset_version
        assert re.fullmatch("[0-9a-f]{16}", response.ruleset_hash)

    def test_profile_overrides_replace_top_level_fields(self, decisions):
        """Overrides apply on top of the stored profile: tier=gold wins the campaign."""
        response = _decide(
            decisions, visitor_id="v", placements=["hero"], profile_overrides={"tier": "gold"}
        )
        hero = response.decisions[0]

        assert (pb.REASON_CAMPAIGN, "gold_hero", "shiny", ["gold"]) == (
            hero.reason,
            hero.campaign_id,
            hero.variant_id,
            list(hero.matched_segments),
        )
        assert {"title": "Hello, gold member", "n": 1} == json.loads(hero.content_json)

    def test_stored_profile_is_used_and_overridable(self, decisions):
        """The stored profile counts; an override of the same field replaces it."""
        stored = _decide(decisions, visitor_id="ada", placements=["hero"])
        overridden = _decide(
            decisions,
            visitor_id="ada",
            placements=["hero"],
            profile_overrides={"tier": "silver"},
        )

        assert (pb.REASON_CAMPAIGN, pb.REASON_FALLBACK) == (
            stored.decisions[0].reason,
            overridden.decisions[0].reason,
        )

    def test_fallback_and_unknown_placement_content(self, decisions):
        """A fallback serves the placement's JSON; an unknown placement serves "null"."""
        response = _decide(decisions, visitor_id="v", placements=["hero", "footer", "nope"])

        assert ['{"title":"Welcome"}', "null", "null"] == [
            d.content_json for d in response.decisions
        ]
        assert pb.REASON_UNKNOWN_PLACEMENT == response.decisions[2].reason

    def test_explanation_only_when_asked(self, decisions):
        """explain=True fills the explanation; otherwise the field is unset."""
        plain = _decide(decisions, visitor_id="v", placements=["hero"])
        explained = _decide(decisions, visitor_id="v", placements=["hero"], explain=True)
        candidates = explained.decisions[0].explanation.candidates

        assert not plain.decisions[0].HasField("explanation")
        assert [("gold_hero", pb.OUTCOME_AUDIENCE_NOT_MATCHED)] == [
            (c.campaign_id, c.outcome) for c in candidates
        ]

    def test_context_reaches_filters(self, decisions):
        """The request context is visible to filters under context.*."""
        servicer_segments, code = _call(
            decisions,
            DECISION_SERVICE,
            "GetVisitorSegments",
            _segments_request("v", context={"device": "mobile"}),
        )

        assert grpc.StatusCode.OK == code
        assert ["mobile"] == list(servicer_segments.segment_ids)

    def test_decision_ids_are_unique(self, decisions):
        """Every decision gets its own id, even for the same visitor and placement."""
        responses = [_decide(decisions, visitor_id="v", placements=["hero"]) for _ in range(10)]

        assert 10 == len({r.decisions[0].decision_id for r in responses})


def _segments_request(visitor: str, **structs) -> pb.GetVisitorSegmentsRequest:
    request = pb.GetVisitorSegmentsRequest(visitor_id=visitor)
    if "context" in structs:
        request.context.update(structs["context"])
    if "profile_overrides" in structs:
        request.profile_overrides.update(structs["profile_overrides"])
    return request


class TestSnapshotContent:
    def test_content_json_is_precomputed_once(self, snapshot):
        """The engine's content value maps to the same precomputed string every call."""
        content = snapshot.ruleset.campaigns["gold_hero"].variants[0].content

        first = snapshot.content_json(content)

        assert first is snapshot.content_json(content)
        assert '{"title":"Hello, gold member","n":1}' == first

    def test_unknown_values_are_serialized_on_the_spot(self, snapshot):
        """A value the snapshot does not hold (e.g. a copy) is still serialized right."""
        assert '{"a":[1,2]}' == snapshot.content_json({"a": [1, 2]})


class TestDecisionIds:
    def test_ids_are_ulids_sorted_by_time(self):
        """Decision ids are 26 Crockford base-32 characters and sort by creation time."""
        first = new_decision_id()
        time.sleep(0.002)
        second = new_decision_id()

        assert re.fullmatch("[0-9A-HJKMNP-TV-Z]{26}", first)
        assert first < second


class TestAdmin:
    @pytest.fixture
    def admin(self, snapshot, store):
        return _Servicer(RulesAdminServicer(store, _Source(snapshot), pool=_pool()))

    def test_status_reports_the_snapshot_and_reload_counts(self, admin, snapshot):
        """GetStatus reports what is served, when it was loaded and the reload counters."""
        response, _ = _call(admin, ADMIN_SERVICE, "GetStatus", pb.GetStatusRequest())

        assert (7, snapshot.content_hash, 1, 3, "") == (
            response.active_version,
            response.content_hash,
            response.store_version,
            response.reload_count,
            response.last_reload_error,
        )
        assert NOW == response.loaded_at.ToDatetime(UTC)
        assert not response.HasField("last_reload_error_at")

    def test_validate_reports_problems_as_data(self, admin):
        """ValidateRules answers OK with valid=False and the problems, not an error."""
        request = pb.ValidateRulesRequest(document_json='{"segments": [], "segments": []}')

        response, code = _call(admin, ADMIN_SERVICE, "ValidateRules", request)

        assert grpc.StatusCode.OK == code
        assert (False, "segments", "duplicate key 'segments'") == (
            response.valid,
            response.problems[0].path,
            response.problems[0].message,
        )

    def test_list_versions_converts_metadata(self, admin, make_rules, store):
        """ListVersions converts each stored version, newest first, with the active one."""
        store.publish(make_rules("v2"), comment="two", author="bo")

        response, _ = _call(admin, ADMIN_SERVICE, "ListVersions", pb.ListVersionsRequest())

        assert [(2, "two", "bo", True), (1, "test rules", "tests", False)] == [
            (v.version, v.comment, v.author, v.active) for v in response.versions
        ]
        assert 2 == response.active_version


def test_empty_profile_store_knows_nobody():
    """The placeholder profile store returns None for everyone, at once."""
    assert (None, None) == (EmptyProfileStore().peek("anyone"), EmptyProfileStore().get("anyone"))
