"""Stored assignments: a visitor keeps the arm first served, whatever the draws say now."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest

from decision import (
    HOLDOUT_ARM,
    Assignment,
    Outcome,
    ProfileMemo,
    Reason,
    compile_ruleset,
    decide,
)

NOW = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)
VISITORS = [f"visitor-{i}" for i in range(400)]

TEST: dict[str, Any] = {
    "segments": [{"id": "vip", "filter": {"ltv": {"$gte": 1000}}}],
    "placements": [{"id": "hero", "fallback": {"headline": "Default"}}, {"id": "banner"}],
    "exclusion_groups": [{"id": "tests"}],
    "campaigns": [
        {
            "id": "split",
            "placements": ["hero"],
            "variants": [
                {"id": "a", "content": {"headline": "A"}},
                {"id": "b", "content": {"headline": "B"}},
            ],
        }
    ],
}


def ruleset(changes: dict[str, Any] | None = None, document: dict[str, Any] = TEST) -> Any:
    """The test document with ``changes`` applied to its first campaign."""
    doc = copy.deepcopy(document)
    doc["campaigns"][0].update(changes or {})
    return compile_ruleset(doc)


def arm(rules: Any, visitor: str, pins: dict[str, Assignment] | None = None, **kw: Any) -> Any:
    """``(reason, variant)`` of ``visitor``'s hero decision."""
    (d,) = decide(rules, visitor, kw.get("profile", {}), ["hero"], {}, NOW, assignments=pins)
    return d.reason, d.variant_id


class TestKeptArm:
    def test_weights_moved_to_b_keep_assigned_visitors_in_a(self):
        """Moving every weight to b moves nobody assigned to a."""
        rules = ruleset(
            {
                "variants": [
                    {"id": "a", "weight": 1, "content": 1},
                    {"id": "b", "weight": 99, "content": 2},
                ]
            }
        )
        pins = {"split": Assignment("a", "split")}

        kept = [arm(rules, v, pins) for v in VISITORS]

        assert [(Reason.CAMPAIGN, "a")] * len(VISITORS) == kept

    def test_without_assignments_the_same_weights_move_most_visitors(self):
        """The control for the test above: the draw alone puts most visitors in b."""
        rules = ruleset(
            {
                "variants": [
                    {"id": "a", "weight": 1, "content": 1},
                    {"id": "b", "weight": 99, "content": 2},
                ]
            }
        )

        in_a = sum(arm(rules, v)[1] == "a" for v in VISITORS)

        assert in_a < len(VISITORS) // 10

    def test_a_lowered_traffic_allocation_keeps_assigned_visitors_in(self):
        """Traffic down to 1 %: assigned visitors still get the campaign."""
        rules = ruleset({"traffic_allocation": 1})
        pins = {"split": Assignment("b", "split")}

        kept = {arm(rules, v, pins) for v in VISITORS}

        assert {(Reason.CAMPAIGN, "b")} == kept

    def test_a_raised_holdout_keeps_assigned_visitors_out_of_it(self):
        """A 90 % holdout added later holds out no visitor already assigned to a variant."""
        rules = ruleset({"holdout": 90})
        pins = {"split": Assignment("a", "split")}

        kept = {arm(rules, v, pins) for v in VISITORS}

        assert {(Reason.CAMPAIGN, "a")} == kept

    def test_a_held_out_visitor_stays_held_out(self):
        """A holdout assignment keeps the visitor in the holdout while it exists."""
        rules = ruleset({"holdout": 1})
        pins = {"split": Assignment(HOLDOUT_ARM, "split")}

        kept = {arm(rules, v, pins) for v in VISITORS[:50]}

        assert {(Reason.HOLDOUT, None)} == kept

    def test_removing_the_holdout_releases_its_visitors(self):
        """Without a holdout any more, a held-out visitor is drawn into a variant."""
        rules = ruleset()
        pins = {"split": Assignment(HOLDOUT_ARM, "split")}

        expected = [arm(rules, v) for v in VISITORS[:50]]
        actual = [arm(rules, v, pins) for v in VISITORS[:50]]

        assert expected == actual

    @pytest.mark.parametrize(
        "changes",
        [
            {"salt": "reshuffled"},
            {"variants": [{"id": "a", "weight": 0, "content": 1}, {"id": "b", "content": 2}]},
            {"variants": [{"id": "b", "content": 2}, {"id": "c", "content": 3}]},
            {"assignment": "hashed"},
        ],
        ids=["new salt", "weight 0", "variant removed", "hashed"],
    )
    def test_an_assignment_that_no_longer_applies_is_drawn_again(self, changes: dict[str, Any]):
        """A new salt, a variant of weight 0 or removed, and "hashed" ignore the assignment."""
        rules = ruleset(changes)
        pins = {"split": Assignment("a", "split")}

        expected = [arm(rules, v) for v in VISITORS[:100]]
        actual = [arm(rules, v, pins) for v in VISITORS[:100]]

        assert expected == actual

    def test_the_audience_still_decides_who_gets_the_campaign(self):
        """An assigned visitor no longer in the audience gets the fallback."""
        rules = ruleset({"audience": {"segments": ["vip"]}})
        pins = {"split": Assignment("a", "split")}

        assert (Reason.FALLBACK, None) == arm(rules, "v1", pins, profile={"ltv": 10})

    def test_explain_says_the_variant_was_kept(self):
        """The trace names the kept variant instead of a bucket."""
        rules = ruleset()
        pins = {"split": Assignment("b", "split")}

        (d,) = decide(rules, "v1", {}, ["hero"], {}, NOW, explain=True, assignments=pins)

        assert [("split", Outcome.SELECTED, "kept assigned variant b", None)] == [
            (t.campaign_id, t.outcome, t.detail, t.bucket) for t in d.trace or ()
        ]

    def test_memoized_decisions_keep_the_same_arms(self):
        """Deciding with a profile memo gives what deciding without one gives."""
        rules = ruleset({"audience": {"segments": ["vip"]}, "holdout": 50})
        pins = {"split": Assignment(HOLDOUT_ARM, "split")}
        profile = {"ltv": 5000}
        memo = ProfileMemo()

        expected = [
            decide(rules, v, profile, ["hero"], {}, NOW, assignments=pins) for v in VISITORS[:20]
        ]
        actual = [
            decide(rules, v, profile, ["hero"], {}, NOW, profile_memo=memo, assignments=pins)
            for v in VISITORS[:20]
        ]

        assert expected == actual


GROUPED: dict[str, Any] = {
    "segments": [],
    "placements": [{"id": "hero"}, {"id": "banner"}],
    "exclusion_groups": [{"id": "tests"}],
    "campaigns": [
        {
            "id": "first",
            "placements": ["hero"],
            "exclusion_group": "tests",
            "traffic_allocation": 50,
            "variants": [{"id": "a", "content": 1}],
        },
        {
            "id": "second",
            "placements": ["banner"],
            "exclusion_group": "tests",
            "traffic_allocation": 50,
            "variants": [{"id": "x", "content": 2}],
        },
    ],
}


class TestExclusionGroups:
    def served(self, rules: Any, visitor: str, pins: dict[str, Assignment]) -> list[str | None]:
        decisions = decide(rules, visitor, {}, ["hero", "banner"], {}, NOW, assignments=pins)
        return [d.campaign_id for d in decisions]

    def test_a_visitor_assigned_to_one_member_never_sees_another(self):
        """A visitor assigned to one member of a group never sees another, whatever its slot."""
        rules = compile_ruleset(GROUPED)
        pins = {"second": Assignment("x", "second")}

        seen = {tuple(self.served(rules, v, pins)) for v in VISITORS}

        assert {(None, "second")} == seen

    def test_two_assigned_members_after_a_merge_leave_the_first_in_document_order(self):
        """Assignments to both members (two people merged) show only the group's first."""
        rules = compile_ruleset(GROUPED)
        pins = {"second": Assignment("x", "second"), "first": Assignment("a", "first")}

        seen = {tuple(self.served(rules, v, pins)) for v in VISITORS[:50]}

        assert {("first", None)} == seen

    def test_a_grouped_member_traffic_cut_to_zero_keeps_its_assigned_visitors(self):
        """Traffic 0 for "first": its assigned visitors keep it."""
        doc = copy.deepcopy(GROUPED)
        doc["campaigns"][0]["traffic_allocation"] = 0
        rules = compile_ruleset(doc)
        pins = {"first": Assignment("a", "first")}

        seen = {tuple(self.served(rules, v, pins)) for v in VISITORS[:50]}

        assert {("first", None)} == seen
