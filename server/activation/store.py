"""The activation state's seams: one small Protocol per piece of state, and its values.

A backend implements each Protocol (``server.activation.sqlite`` for SQLite;
``tests/server/activation/test_store_contract.py`` is the behaviour every backend must
show, parametrized by a store factory). Besides these, a backend's profile store has
three duties towards this state, inside its own transactions:

- on an identity merge of ``source`` into ``target``: move ``source``'s assignments to
  ``target``, where ``source``'s win for a campaign both hold (``source`` is the
  visitor who identified: the person in front of the screen keeps what they see), and
  record ``source`` leaving each segment it was in (reason ``merge``);
- on ``delete_visitor``: delete the visitor's assignments, memberships and changes;
- on ``export_visitor``: list the visitor's assignments and changes.

Nothing here imports a transport; errors are ``server.errors`` classes.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from decision import Assignment

__all__ = [
    "AssignmentStore",
    "ChangeLog",
    "Delivery",
    "DeliveryStatus",
    "EventCursor",
    "Identity",
    "Leases",
    "SegmentChange",
    "Served",
    "WebhookLog",
]


@dataclass(frozen=True, slots=True)
class Identity:
    """Who a visitor id is: the canonical id it resolves to (after identity merges) and
    the assignments stored for that id, by campaign id."""

    canonical: str
    assignments: Mapping[str, Assignment] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Served:
    """One served arm, from an exposure: the visitor id as decided (the store resolves
    its canonical id), the campaign, the arm (a variant id or ``"holdout"``), the
    campaign's salt then, and when."""

    visitor_id: str
    campaign: str
    variant: str
    salt: str
    at: datetime


class AssignmentStore(Protocol):
    """Stored assignments: (canonical visitor, campaign) -> the arm served."""

    def identities(self, visitor_ids: Sequence[str]) -> dict[str, Identity]:
        """The ``Identity`` of each id (an unknown id is its own canonical id, without
        assignments). Never waits for a writer on an embedded store."""
        ...

    def record(self, served: Sequence[Served]) -> int:
        """Store each served arm as its visitor's assignment for the campaign, unless
        the same arm under the same salt is stored already (a later one of the same
        visitor and campaign in ``served`` wins); the number of rows written."""
        ...


@dataclass(frozen=True, slots=True)
class SegmentChange:
    """One visitor entering (``entered``) or leaving one segment, ``seq`` in the log."""

    seq: int
    visitor_id: str
    segment: str
    entered: bool
    at: datetime
    reason: str
    """``event``, ``sweep`` or ``merge``."""
    merged_into: str = ""


@dataclass(frozen=True, slots=True)
class EventCursor:
    """Visitors with events the detector has not looked at: event positions
    ``start < position <= end``, and their canonical ids."""

    start: int
    end: int
    visitors: tuple[str, ...]


class ChangeLog(Protocol):
    """Segment memberships of notify segments, the change log, and the detector's
    position in the event log."""

    def changed_visitors(self, limit: int) -> EventCursor:
        """Visitors with events after the detector's position, from at most ``limit``
        events. The first call ever starts at the end of the event log (history is not
        replayed: memberships start from a silent baseline)."""
        ...

    def documents(self, visitor_ids: Collection[str]) -> dict[str, dict[str, object]]:
        """The stored profile documents of those canonical ids (unknown ones left out)."""
        ...

    def scan(self, after: str, limit: int) -> list[tuple[str, dict[str, object]]]:
        """Up to ``limit`` stored ``(canonical id, document)`` after ``after``, in id order."""
        ...

    def orphans(self, limit: int) -> list[str]:
        """Visitors holding memberships but no stored profile any more."""
        ...

    def reconcile(
        self,
        members: Mapping[str, Collection[str]],
        segments: Collection[str],
        *,
        reason: str,
        at: datetime,
        silent: Collection[str] = (),
        cursor: EventCursor | None = None,
    ) -> list[SegmentChange]:
        """In one transaction: for each visitor of ``members`` (the ``segments`` they are
        in now), record entering and leaving each of ``segments`` against the stored
        memberships and store the new ones. Segments in ``silent`` change memberships
        without a change (a baseline). With ``cursor``, the detector's position moves
        from ``cursor.start`` to ``cursor.end`` in the same transaction, and nothing is
        written when it is no longer at ``cursor.start`` (another process did it).
        Returns the changes recorded, in ``seq`` order."""
        ...

    def changes_after(
        self, seq: int, segments: Collection[str] | None, limit: int
    ) -> list[SegmentChange]:
        """Up to ``limit`` changes with a larger ``seq``, of ``segments`` (None: all)."""
        ...

    def last_seq(self) -> int:
        """The ``seq`` of the newest change ever recorded (0: none)."""
        ...

    def pruned_through(self) -> int:
        """Every change up to this ``seq`` may have been pruned (0: none was)."""
        ...

    def prune(self, before: datetime) -> int:
        """Delete changes recorded before ``before``; how many."""
        ...

    def baselines(self) -> dict[str, str]:
        """Segment id -> the definition whose silent baseline is complete."""
        ...

    def set_baseline(self, segment: str, definition: str) -> None:
        """Record that ``segment``'s memberships are complete for ``definition``."""
        ...

    def drop_segments(self, keep: Collection[str]) -> int:
        """Forget memberships and baselines of every segment not in ``keep``."""
        ...


class DeliveryStatus:
    """The statuses of a webhook delivery."""

    PENDING = "pending"
    RETRYING = "retrying"
    DELIVERED = "delivered"
    DEAD = "dead"
    BLOCKED = "blocked"
    UNFINISHED = (PENDING, RETRYING)
    REDELIVERABLE = (DEAD, BLOCKED)
    ALL = (PENDING, RETRYING, DELIVERED, DEAD, BLOCKED)


@dataclass(frozen=True, slots=True)
class Delivery:
    """One POST of a webhook's changes ``first_seq..last_seq`` (of ``segments``)."""

    delivery_id: str
    webhook: str
    url: str
    segments: tuple[str, ...]
    first_seq: int
    last_seq: int
    changes: int
    attempts: int
    status: str
    http_status: int
    error: str
    created_at: datetime
    updated_at: datetime


class WebhookLog(Protocol):
    """Each webhook's position in the change log and its deliveries: the delivery log is
    also the queue (an unfinished delivery is sent again after a restart)."""

    def cursor(self, webhook: str, default: int) -> int:
        """The last ``seq`` handed to ``webhook``; ``default`` (stored) for a new one."""
        ...

    def create(
        self,
        webhook: str,
        url: str,
        segments: Sequence[str],
        changes: Sequence[SegmentChange],
        *,
        expected_cursor: int,
        at: datetime,
    ) -> Delivery | None:
        """A pending delivery of ``changes`` (not empty, in seq order), moving the
        webhook's cursor to the last one's seq in the same transaction; None when the
        cursor is no longer ``expected_cursor`` (another process made it)."""
        ...

    def unfinished(self, webhook: str) -> list[Delivery]:
        """The webhook's pending and retrying deliveries, oldest first."""
        ...

    def update(
        self,
        delivery_id: str,
        *,
        status: str,
        attempts: int,
        http_status: int,
        error: str,
        at: datetime,
    ) -> None:
        """Record an attempt's outcome."""
        ...

    def deliveries(self, webhook: str, status: str, limit: int) -> list[Delivery]:
        """Newest first; empty ``webhook`` or ``status``: any."""
        ...

    def get(self, delivery_id: str) -> Delivery | None:
        """One delivery."""
        ...

    def redeliver(self, delivery_id: str, at: datetime) -> Delivery:
        """Make a dead or blocked delivery pending again (attempts start over).
        ``SubjectNotFoundError`` when unknown, ``ValueError`` in another status."""
        ...

    def prune(self, before: datetime) -> int:
        """Delete finished deliveries (delivered, dead, blocked) last changed before
        ``before``; how many."""
        ...


class Leases(Protocol):
    """Named leases: which process runs the activation worker."""

    def acquire(self, name: str, owner: str, ttl: float, now: float) -> bool:
        """Take or renew ``name`` for ``ttl`` seconds from ``now`` (seconds since the
        epoch): true when ``owner`` holds it now."""
        ...

    def release(self, name: str, owner: str) -> None:
        """Give ``name`` up, if ``owner`` holds it."""
        ...
