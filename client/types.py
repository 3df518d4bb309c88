"""Plain, immutable Python values returned by the clients: never protobuf messages."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeAlias

JSON: TypeAlias = Any
"""A JSON value: dict, list, str, int, float, bool or None."""

CLIENT_FALLBACK = "CLIENT_FALLBACK"
"""``Decision.reason`` when the client served its own fallback because the call failed."""


@dataclass(frozen=True, slots=True)
class CandidateTrace:
    """Why one candidate campaign was taken or passed over.

    ``outcome`` is the proto ``Outcome`` name without its prefix, e.g. ``"SELECTED"`` or
    ``"AUDIENCE_NOT_MATCHED"``; ``bucket`` is the bucket (0-9999) drawn at the deciding
    step, when one was drawn.
    """

    campaign_id: str
    outcome: str
    detail: str
    bucket: int | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    """The answer for one placement.

    ``reason`` is ``"CAMPAIGN"``, ``"FALLBACK"``, ``"HOLDOUT"``, ``"UNKNOWN_PLACEMENT"``
    (from the server) or ``"CLIENT_FALLBACK"``. ``is_fallback`` is true only for the
    last: the server was not consulted and ``content`` is the caller's configured
    fallback (``None`` when none was configured for this placement). A server-side
    fallback is a regular decision with reason ``"FALLBACK"``.

    ``explanation`` is set only when the call asked for one.
    """

    placement: str
    decision_id: str
    reason: str
    campaign_id: str | None
    variant_id: str | None
    control: bool
    content: JSON
    matched_segments: tuple[str, ...] = ()
    explanation: tuple[CandidateTrace, ...] | None = None
    is_fallback: bool = False


@dataclass(frozen=True, slots=True)
class DecideResult:
    """The decisions of one ``decide`` call, in the order the placements were asked.

    ``fallback`` is true when the call failed and every decision is a client fallback;
    ``ruleset_version`` is then 0 and ``ruleset_hash`` empty.
    """

    decisions: tuple[Decision, ...]
    ruleset_version: int
    ruleset_hash: str
    fallback: bool = False

    def __getitem__(self, placement: str) -> Decision:
        """The decision for ``placement``; ``KeyError`` if it was not asked for."""
        for decision in self.decisions:
            if decision.placement == placement:
                return decision
        raise KeyError(placement)


@dataclass(frozen=True, slots=True)
class VisitorSegments:
    """The segments a visitor is in, in rules-document order."""

    segment_ids: tuple[str, ...]
    ruleset_version: int
    ruleset_hash: str


@dataclass(frozen=True, slots=True)
class RuleProblem:
    """One problem in a rules document; ``path`` is a JSON path such as
    ``campaigns[2].variants[0].weight``."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


@dataclass(frozen=True, slots=True)
class ValidationResult:
    """The result of checking a rules document; ``content_hash`` is set when valid."""

    valid: bool
    problems: tuple[RuleProblem, ...]
    content_hash: str | None


@dataclass(frozen=True, slots=True)
class RulesVersion:
    """Metadata of one stored rules version.

    ``restored_from`` is the version a rollback restored, ``None`` for a publish.
    """

    version: int
    content_hash: str
    created_at: datetime | None
    comment: str
    author: str
    restored_from: int | None
    active: bool


@dataclass(frozen=True, slots=True)
class RulesDocument:
    """A stored rules document: ``document_json`` exactly as published, ``document``
    parsed from it."""

    version: RulesVersion
    document_json: str
    document: JSON


@dataclass(frozen=True, slots=True)
class VersionList:
    """Stored versions, newest first, and the store's active version."""

    versions: tuple[RulesVersion, ...]
    active_version: int


@dataclass(frozen=True, slots=True)
class ActivityBackfill:
    """How far the server has completed the stored profiles with the activity the
    served rules read (after a publish that reads more): ``complete`` when every one
    keeps it; ``pending`` profiles left, as last counted; ``backfilled`` profiles the
    server process completed; ``last_error`` why the last attempt failed (retried),
    ``None`` when it did not."""

    complete: bool
    pending: int
    backfilled: int
    last_error: str | None = None


@dataclass(frozen=True, slots=True)
class ServerStatus:
    """What a server is serving.

    ``active_version`` is 0 before the first good load; it differs from
    ``store_version`` while a bad document sits in the store or a reload is pending.
    ``last_reload_error`` is ``None`` when the last reload succeeded.
    ``activity_backfill`` is ``None`` from a server that does not report it.
    """

    active_version: int
    content_hash: str
    loaded_at: datetime | None
    store_version: int
    last_reload_error: str | None
    last_reload_error_at: datetime | None
    reload_count: int
    reload_error_count: int
    server_version: str
    activity_backfill: ActivityBackfill | None = None


@dataclass(frozen=True, slots=True)
class TrackEvent:
    """One behavioural event, the typed twin of the JSON event shape the JSONL files use::

        {"event_id": "e-1", "visitor_id": "v-42", "type": "product_view",
         "timestamp": "2026-05-04T10:15:00Z",
         "properties": {"sku": "SKU-1", "category": "shoes", "brand": "Acme", "price": 89.9}}

    ``type`` is one of ``session_start``, ``page_view``, ``product_view``,
    ``add_to_cart``, ``remove_from_cart``, ``purchase``, ``return``,
    ``campaign_impression``, ``campaign_click``, ``campaign_conversion``, ``identify``,
    ``custom``. ``timestamp`` is an aware ``datetime`` or an ISO-8601 string with an
    offset. ``properties`` holds the type's fields (see the README); a custom event has
    ``{"name": ..., "properties": {...}}``.
    """

    event_id: str
    visitor_id: str
    type: str
    timestamp: datetime | str
    properties: Mapping[str, JSON] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class TrackResult:
    """What a ``track`` or ``track_stream`` call stored: ``accepted`` events newly
    committed, and ``duplicates``: events whose ``event_id`` was already stored (a
    retry), which changed nothing and are not counted in ``accepted``."""

    accepted: int
    duplicates: int


@dataclass(frozen=True, slots=True)
class SegmentOverlap:
    """How an estimated filter overlaps an existing segment: profiles in the segment,
    in both, and the Jaccard index (both / either)."""

    segment_id: str
    segment_size: int
    both: int
    jaccard: float


@dataclass(frozen=True, slots=True)
class SegmentEstimate:
    """What a filter matches among the stored profiles now: how many of how many, a
    random sample of ids, and the existing segments it overlaps most. The overlaps'
    segment sizes were counted at ``segment_sizes_at`` (now, or a full pass at most 5
    minutes before); None from a server that does not say."""

    matching: int
    profiles: int
    sample_ids: tuple[str, ...]
    overlaps: tuple[SegmentOverlap, ...]
    ruleset_version: int
    segment_sizes_at: datetime | None = None
