"""The activation stores' contract: what every backend of ``server.activation.store``
must do. Each test takes the ``backend`` fixture, parametrized by backend name; a
PostgreSQL backend is added as a second parameter of ``backend`` and passes the same
tests."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from decision import Assignment, validate_events
from server.activation.store import (
    AssignmentStore,
    ChangeLog,
    DeliveryStatus,
    Identity,
    Leases,
    SegmentChange,
    Served,
    WebhookLog,
)
from server.errors import SubjectNotFoundError

T0 = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)


@dataclass
class Backend:
    """One backend's stores, and the profile store whose transactions merge and forget."""

    assignments: AssignmentStore
    changes: ChangeLog
    webhooks: WebhookLog
    leases: Leases
    profiles: Any

    def track(self, *raw: dict[str, Any]) -> None:
        """Store events given as ``(event_id, visitor_id, type, properties)`` dicts."""
        events = [
            {"timestamp": T0 + timedelta(seconds=i), "properties": {}, **item}
            for i, item in enumerate(raw)
        ]
        self.profiles.track(validate_events(events, T0 + timedelta(days=1)))


def _sqlite(path: Path) -> Iterator[Backend]:
    from server.activation.sqlite import SQLiteActivation
    from server.profiles.sqlite import SQLiteProfileStore

    with SQLiteProfileStore(path / "profiles.db") as profiles:
        with SQLiteActivation(path / "profiles.db") as stores:
            yield Backend(
                stores.assignments, stores.changes, stores.webhooks, stores.leases, profiles
            )


BACKENDS = {"sqlite": _sqlite}


@pytest.fixture(params=sorted(BACKENDS))
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """A fresh backend of each kind."""
    yield from BACKENDS[request.param](tmp_path)


def served(visitor: str, campaign: str, variant: str, salt: str = "", minute: int = 0) -> Served:
    """One served arm; the salt defaults to the campaign id."""
    return Served(visitor, campaign, variant, salt or campaign, T0 + timedelta(minutes=minute))


def identify(event_id: str, visitor: str, customer: str) -> dict[str, Any]:
    """An identify event merging ``visitor`` into ``customer``."""
    return {
        "event_id": event_id,
        "visitor_id": visitor,
        "type": "identify",
        "properties": {"customer_id": customer},
    }


def visit(event_id: str, visitor: str) -> dict[str, Any]:
    """A session_start event of ``visitor``."""
    return {"event_id": event_id, "visitor_id": visitor, "type": "session_start"}


class TestAssignments:
    def test_an_unknown_visitor_is_its_own_identity_without_assignments(self, backend: Backend):
        """identities() answers for ids the store never saw."""
        assert {"nobody": Identity("nobody", {})} == backend.assignments.identities(["nobody"])

    def test_a_recorded_arm_is_the_visitors_assignment(self, backend: Backend):
        """record() stores (visitor, campaign) -> arm and salt."""
        backend.assignments.record([served("v1", "hero", "b"), served("v1", "popup", "holdout")])

        expected = Identity(
            "v1", {"hero": Assignment("b", "hero"), "popup": Assignment("holdout", "popup")}
        )
        assert {"v1": expected} == backend.assignments.identities(["v1"])

    def test_recording_the_same_arm_again_writes_nothing(self, backend: Backend):
        """A second exposure to the stored arm leaves the row alone."""
        backend.assignments.record([served("v1", "hero", "b")])

        assert 0 == backend.assignments.record([served("v1", "hero", "b", minute=5)])

    @pytest.mark.parametrize(
        ("later", "expected"),
        [
            (served("v1", "hero", "a"), Assignment("a", "hero")),
            (served("v1", "hero", "b", salt="new"), Assignment("b", "new")),
        ],
        ids=["another variant", "another salt"],
    )
    def test_another_arm_or_salt_replaces_the_assignment(
        self, backend: Backend, later: Served, expected: Assignment
    ):
        """A released assignment is replaced by what was served instead."""
        backend.assignments.record([served("v1", "hero", "b")])
        backend.assignments.record([later])

        assert {"hero": expected} == dict(backend.assignments.identities(["v1"])["v1"].assignments)

    def test_the_last_of_a_visitors_arms_in_one_call_wins(self, backend: Backend):
        """Within one record() call, a later serve of the same campaign wins."""
        backend.assignments.record([served("v1", "hero", "a"), served("v1", "hero", "b", minute=1)])

        assert {"hero": Assignment("b", "hero")} == dict(
            backend.assignments.identities(["v1"])["v1"].assignments
        )

    def test_an_alias_reads_and_records_under_its_canonical_id(self, backend: Backend):
        """After identify, the anonymous id resolves to the customer's identity."""
        backend.track(visit("e1", "anon"), identify("e2", "anon", "cust"))
        backend.assignments.record([served("anon", "hero", "a")])

        assert {"anon": Identity("cust", {"hero": Assignment("a", "hero")})} == (
            backend.assignments.identities(["anon"])
        )

    def test_identify_merges_assignments_and_the_identifying_visitor_wins(self, backend: Backend):
        """The anonymous visitor's arm wins a campaign both hold; the customer keeps the rest."""
        backend.track(visit("e1", "anon"), visit("e2", "cust"))
        backend.assignments.record(
            [served("anon", "hero", "a"), served("cust", "hero", "b"), served("cust", "popup", "x")]
        )

        backend.track(identify("e3", "anon", "cust"))

        expected = Identity(
            "cust", {"hero": Assignment("a", "hero"), "popup": Assignment("x", "popup")}
        )
        assert {"anon": expected, "cust": expected} == backend.assignments.identities(
            ["anon", "cust"]
        )


def change_tuples(changes: list[SegmentChange]) -> list[tuple[str, str, bool, str]]:
    """``(visitor, segment, entered, reason)`` of each change."""
    return [(c.visitor_id, c.segment, c.entered, c.reason) for c in changes]


class TestChangeLog:
    def test_the_detector_starts_at_the_end_of_the_event_log(self, backend: Backend):
        """History before the first look is not replayed."""
        backend.track(visit("e1", "v1"))

        cursor = backend.changes.changed_visitors(100)

        assert ((), cursor.start) == (cursor.visitors, cursor.end)

    def test_visitors_with_new_events_are_listed_by_canonical_id(self, backend: Backend):
        """Events after the position name their visitors once, aliases resolved."""
        backend.changes.changed_visitors(100)
        backend.track(
            visit("e1", "v1"), visit("e2", "v2"), visit("e3", "v1"), identify("e4", "v2", "c2")
        )

        assert ("v1", "c2") == backend.changes.changed_visitors(100).visitors

    def test_reconcile_records_entering_and_leaving_once(self, backend: Backend):
        """Memberships compared with the stored ones give entered, then left."""
        first = backend.changes.reconcile(
            {"v1": {"vip", "new"}}, ["vip", "new"], reason="event", at=T0
        )
        again = backend.changes.reconcile(
            {"v1": {"vip", "new"}}, ["vip", "new"], reason="event", at=T0
        )
        left = backend.changes.reconcile({"v1": {"new"}}, ["vip", "new"], reason="sweep", at=T0)

        assert [("v1", "new", True, "event"), ("v1", "vip", True, "event")] == change_tuples(first)
        assert [] == again
        assert [("v1", "vip", False, "sweep")] == change_tuples(left)

    def test_a_silent_segment_changes_memberships_without_a_change(self, backend: Backend):
        """A baseline stores members quietly; leaving later is a change."""
        quiet = backend.changes.reconcile(
            {"v1": {"vip"}}, ["vip"], reason="sweep", at=T0, silent=["vip"]
        )
        left = backend.changes.reconcile({"v1": set()}, ["vip"], reason="event", at=T0)

        assert ([], [("v1", "vip", False, "event")]) == (quiet, change_tuples(left))

    def test_segments_not_reconciled_keep_their_members(self, backend: Backend):
        """Only the named segments are compared."""
        backend.changes.reconcile({"v1": {"vip", "new"}}, ["vip", "new"], reason="event", at=T0)

        assert [] == backend.changes.reconcile({"v1": set()}, ["other"], reason="event", at=T0)

    def test_a_stale_cursor_writes_nothing(self, backend: Backend):
        """Two detectors with the same cursor: the second one's work is dropped."""
        backend.changes.changed_visitors(100)
        backend.track(visit("e1", "v1"))
        cursor = backend.changes.changed_visitors(100)

        first = backend.changes.reconcile(
            {"v1": {"vip"}}, ["vip"], reason="event", at=T0, cursor=cursor
        )
        second = backend.changes.reconcile(
            {"v1": {"vip"}}, ["vip"], reason="event", at=T0, cursor=cursor
        )

        assert ([("v1", "vip", True, "event")], [], ()) == (
            change_tuples(first),
            second,
            backend.changes.changed_visitors(100).visitors,
        )

    def test_changes_after_a_seq_come_in_order_and_by_segment(self, backend: Backend):
        """changes_after filters by segment and keeps seq order; last_seq is the newest."""
        made = backend.changes.reconcile(
            {"v1": {"a", "b"}, "v2": {"a"}}, ["a", "b"], reason="event", at=T0
        )

        only_a = backend.changes.changes_after(0, ["a"], 10)
        after_first = backend.changes.changes_after(made[0].seq, None, 10)

        assert [c for c in made if c.segment == "a"] == only_a
        assert made[1:] == after_first
        assert made[-1].seq == backend.changes.last_seq()

    def test_pruned_changes_are_gone_and_their_seqs_never_come_back(self, backend: Backend):
        """prune() deletes old changes, records how far, and new changes get new seqs."""
        old = backend.changes.reconcile({"v1": {"a"}}, ["a"], reason="event", at=T0)
        deleted = backend.changes.prune(T0 + timedelta(days=1))
        new = backend.changes.reconcile(
            {"v1": set()}, ["a"], reason="event", at=T0 + timedelta(days=2)
        )

        assert (1, old[0].seq, [new[0]]) == (
            deleted,
            backend.changes.pruned_through(),
            backend.changes.changes_after(0, None, 10),
        )
        assert new[0].seq > old[0].seq

    def test_identify_makes_the_anonymous_visitor_leave_its_segments(self, backend: Backend):
        """The merged id leaves every segment it was in, naming the id it became."""
        backend.track(visit("e1", "anon"))
        backend.changes.reconcile({"anon": {"vip"}}, ["vip"], reason="event", at=T0)

        backend.track(identify("e2", "anon", "cust"))

        (change,) = backend.changes.changes_after(backend.changes.last_seq() - 1, None, 10)
        assert ("anon", "vip", False, "merge", "cust") == (
            change.visitor_id,
            change.segment,
            change.entered,
            change.reason,
            change.merged_into,
        )

    def test_delete_visitor_forgets_memberships_changes_and_assignments(self, backend: Backend):
        """The right to be forgotten covers activation state, and export lists it first."""
        backend.track(visit("e1", "v1"))
        backend.changes.reconcile({"v1": {"vip"}}, ["vip"], reason="event", at=T0)
        backend.assignments.record([served("v1", "hero", "a")])
        export = backend.profiles.export_visitor("v1")

        backend.profiles.delete_visitor("v1")

        assert (1, 1) == (len(export["assignments"]), len(export["segment_changes"]))
        assert ([], {}, []) == (
            backend.changes.changes_after(0, None, 10),
            dict(backend.assignments.identities(["v1"])["v1"].assignments),
            backend.changes.orphans(10),
        )

    def test_members_without_a_profile_are_orphans(self, backend: Backend):
        """A member whose profile is gone is listed for the sweep to let go."""
        backend.track(visit("e1", "v1"))
        backend.changes.reconcile({"v1": {"a"}, "ghost": {"a"}}, ["a"], reason="event", at=T0)

        assert ["ghost"] == backend.changes.orphans(10)

    def test_documents_and_scan_read_stored_profiles(self, backend: Backend):
        """documents() by id and scan() in id order return the profile documents."""
        backend.track(visit("e1", "b"), visit("e2", "a"), visit("e3", "c"))

        assert ["a", "c"] == sorted(backend.changes.documents(["a", "c", "zz"]))
        assert ["b", "c"] == [visitor for visitor, _ in backend.changes.scan("a", 10)]
        assert 1 == backend.changes.scan("", 1)[0][1]["visits"]

    def test_baselines_are_kept_until_their_segment_is_dropped(self, backend: Backend):
        """set_baseline records a definition; drop_segments forgets the others' members."""
        backend.changes.set_baseline("a", "hash-a")
        backend.changes.set_baseline("b", "hash-b")
        backend.changes.reconcile({"v1": {"a", "b"}}, ["a", "b"], reason="event", at=T0)

        dropped = backend.changes.drop_segments(["a"])

        assert (1, {"a": "hash-a"}) == (dropped, backend.changes.baselines())
        assert [("v1", "a", False, "event")] == change_tuples(
            backend.changes.reconcile({"v1": set()}, ["a", "b"], reason="event", at=T0)
        )


def some_changes(backend: Backend, count: int) -> list[SegmentChange]:
    """``count`` entered changes of segment "a"."""
    return backend.changes.reconcile(
        {f"v{i}": {"a"} for i in range(count)}, ["a"], reason="event", at=T0
    )


class TestWebhookLog:
    def test_a_new_webhooks_cursor_starts_where_it_is_told(self, backend: Backend):
        """cursor() stores the default for a new webhook and keeps it."""
        assert (7, 7) == (backend.webhooks.cursor("crm", 7), backend.webhooks.cursor("crm", 0))

    def test_a_delivery_moves_the_cursor_once(self, backend: Backend):
        """create() moves the cursor; a second create from the old cursor is refused."""
        changes = some_changes(backend, 3)
        backend.webhooks.cursor("crm", 0)

        made = backend.webhooks.create("crm", "http://h/", ["a"], changes, expected_cursor=0, at=T0)
        again = backend.webhooks.create(
            "crm", "http://h/", ["a"], changes, expected_cursor=0, at=T0
        )

        assert made is not None
        assert (changes[0].seq, changes[-1].seq, 3, DeliveryStatus.PENDING) == (
            made.first_seq,
            made.last_seq,
            made.changes,
            made.status,
        )
        assert (None, changes[-1].seq) == (again, backend.webhooks.cursor("crm", 0))

    def test_unfinished_deliveries_are_the_queue(self, backend: Backend):
        """Pending and retrying deliveries are unfinished, oldest first; delivered ones not."""
        changes = some_changes(backend, 2)
        backend.webhooks.cursor("crm", 0)
        first = backend.webhooks.create(
            "crm", "http://h/", ["a"], changes[:1], expected_cursor=0, at=T0
        )
        second = backend.webhooks.create(
            "crm", "http://h/", ["a"], changes[1:], expected_cursor=changes[0].seq, at=T0
        )
        assert first is not None and second is not None
        backend.webhooks.update(
            first.delivery_id,
            status=DeliveryStatus.RETRYING,
            attempts=1,
            http_status=503,
            error="unavailable",
            at=T0,
        )
        backend.webhooks.update(
            second.delivery_id,
            status=DeliveryStatus.DELIVERED,
            attempts=1,
            http_status=200,
            error="",
            at=T0,
        )

        assert [(first.delivery_id, 1, 503, "unavailable")] == [
            (d.delivery_id, d.attempts, d.http_status, d.error)
            for d in backend.webhooks.unfinished("crm")
        ]
        assert [second.delivery_id, first.delivery_id] == [
            d.delivery_id for d in backend.webhooks.deliveries("", "", 10)
        ]
        assert [second.delivery_id] == [
            d.delivery_id for d in backend.webhooks.deliveries("crm", "delivered", 10)
        ]

    def test_a_dead_delivery_can_be_sent_again(self, backend: Backend):
        """redeliver() makes a dead delivery pending with its attempts reset."""
        changes = some_changes(backend, 1)
        backend.webhooks.cursor("crm", 0)
        made = backend.webhooks.create("crm", "http://h/", ["a"], changes, expected_cursor=0, at=T0)
        assert made is not None
        backend.webhooks.update(
            made.delivery_id,
            status=DeliveryStatus.DEAD,
            attempts=8,
            http_status=500,
            error="boom",
            at=T0,
        )

        again = backend.webhooks.redeliver(made.delivery_id, T0)

        assert (DeliveryStatus.PENDING, 0) == (again.status, again.attempts)
        assert [made.delivery_id] == [d.delivery_id for d in backend.webhooks.unfinished("crm")]

    def test_only_dead_or_blocked_deliveries_are_sent_again(self, backend: Backend):
        """redeliver() refuses a pending delivery and an unknown id."""
        changes = some_changes(backend, 1)
        backend.webhooks.cursor("crm", 0)
        made = backend.webhooks.create("crm", "http://h/", ["a"], changes, expected_cursor=0, at=T0)
        assert made is not None

        with pytest.raises(ValueError, match="only dead or blocked"):
            backend.webhooks.redeliver(made.delivery_id, T0)
        with pytest.raises(SubjectNotFoundError):
            backend.webhooks.redeliver("nope", T0)

    def test_prune_removes_old_finished_deliveries_only(self, backend: Backend):
        """Finished deliveries older than the cut go; unfinished ones stay."""
        changes = some_changes(backend, 2)
        backend.webhooks.cursor("crm", 0)
        done = backend.webhooks.create(
            "crm", "http://h/", ["a"], changes[:1], expected_cursor=0, at=T0
        )
        waiting = backend.webhooks.create(
            "crm", "http://h/", ["a"], changes[1:], expected_cursor=changes[0].seq, at=T0
        )
        assert done is not None and waiting is not None
        backend.webhooks.update(
            done.delivery_id,
            status=DeliveryStatus.DELIVERED,
            attempts=1,
            http_status=200,
            error="",
            at=T0,
        )

        deleted = backend.webhooks.prune(T0 + timedelta(days=1))

        assert (1, [waiting.delivery_id]) == (
            deleted,
            [d.delivery_id for d in backend.webhooks.deliveries("", "", 10)],
        )


class TestLeases:
    def test_one_owner_holds_a_lease_until_it_expires_or_is_released(self, backend: Backend):
        """A held lease refuses others; expiry or release hands it over."""
        leases = backend.leases

        taken = leases.acquire("worker", "p1", 10, 1000.0)
        refused = leases.acquire("worker", "p2", 10, 1005.0)
        renewed = leases.acquire("worker", "p1", 10, 1005.0)
        after_expiry = leases.acquire("worker", "p2", 10, 1016.0)
        leases.release("worker", "p2")
        after_release = leases.acquire("worker", "p1", 10, 1017.0)

        assert (True, False, True, True, True) == (
            taken,
            refused,
            renewed,
            after_expiry,
            after_release,
        )
