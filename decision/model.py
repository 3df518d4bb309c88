"""Immutable value objects shared by the engine, the server and the client.

A compiled ``Ruleset`` is built once per rules version and then only read, so it is
safe to share between threads without locks. Content values (``Variant.content``,
``Placement.fallback``) are JSON values owned by the ruleset: callers must not mutate
them.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, TypeAlias

from decision.retention import NO_ACTIVITY, ActivityNeeds

if TYPE_CHECKING:
    from decision.filters import Predicate

JSON: TypeAlias = Any
"""A JSON value: dict, list, str, int, float, bool or None."""

BUCKETS = 10_000
"""Bucketing resolution: hashes map to 0..9999, so 1 bucket is 0.01 % of traffic."""

HOLDOUT_ARM = "holdout"
"""The arm of a visitor held out of a campaign, as exposures and stored assignments name it."""

MAX_EXACT_INTEGER = 2**53
"""Largest magnitude of an integer in an event or a rules document. Every integer up to
it is exactly a double, so JSON readers in every language (JavaScript's ``Number``, a
protobuf ``Struct``) read it as written."""


class Reason(enum.Enum):
    """Why a placement got the content it got."""

    CAMPAIGN = "CAMPAIGN"
    """A campaign's variant (possibly its control) is served."""
    FALLBACK = "FALLBACK"
    """No campaign applied; the placement's fallback content is served."""
    HOLDOUT = "HOLDOUT"
    """The visitor is in the winning campaign's holdout: fallback content, no variant."""
    UNKNOWN_PLACEMENT = "UNKNOWN_PLACEMENT"
    """The ruleset defines no such placement; the content is empty."""


class Outcome(enum.Enum):
    """What happened to one candidate campaign while a placement was resolved."""

    SELECTED = "SELECTED"
    PAUSED = "PAUSED"
    NOT_STARTED = "NOT_STARTED"
    ENDED = "ENDED"
    AUDIENCE_NOT_MATCHED = "AUDIENCE_NOT_MATCHED"
    EXCLUDED = "EXCLUDED"
    FILTER_NOT_MATCHED = "FILTER_NOT_MATCHED"
    GROUP_SLOT_TAKEN = "GROUP_SLOT_TAKEN"
    TRAFFIC_ALLOCATION = "TRAFFIC_ALLOCATION"
    HOLDOUT = "HOLDOUT"
    LOST_ON_PRIORITY = "LOST_ON_PRIORITY"


@dataclass(frozen=True, slots=True)
class Segment:
    """A named audience: a compiled filter over the visitor document."""

    id: str
    name: str
    description: str
    filter: Predicate
    notify: bool = False
    """Whether visitors entering and leaving it are recorded as segment changes (the
    server's change log, stream and webhooks)."""


@dataclass(frozen=True, slots=True)
class Variant:
    """One arm of a campaign. ``weight`` is relative to the other variants' weights.

    ``uses_fallback`` is set for a control variant declared without content: it serves
    the requested placement's fallback.
    """

    id: str
    weight: int
    content: JSON
    control: bool = False
    uses_fallback: bool = False


@dataclass(frozen=True, slots=True)
class Audience:
    """Who a campaign is for.

    The visitor must be in any (``match="any"``) or all (``match="all"``) of
    ``segments`` (no segments: everyone), in none of ``exclude``, and match ``filter``
    when one is given.
    """

    segments: tuple[str, ...] = ()
    match: str = "any"
    exclude: tuple[str, ...] = ()
    filter: Predicate | None = None


@dataclass(frozen=True, slots=True)
class Schedule:
    """When a campaign runs: ``start <= now < end`` (UTC); ``None`` leaves a side open."""

    start: datetime | None = None
    end: datetime | None = None


@dataclass(frozen=True, slots=True)
class Campaign:
    """A campaign, compiled: bucket ranges are precomputed.

    ``traffic`` and ``holdout`` are in buckets (0..10000, i.e. basis points).
    ``variant_bounds[i]`` is the exclusive upper bucket of variant ``i``; variants own
    contiguous ranges in declaration order. ``group_slots`` is the ``[lo, hi)`` slot
    range this campaign owns in its exclusion group, if it is in one.

    The ``*_prefix`` fields are the bucketing seeds of each draw followed by ``":"``
    (see ``decision.bucketing``), precomputed so deciding only concatenates the
    visitor id.
    """

    id: str
    name: str
    placements: tuple[str, ...]
    active: bool
    schedule: Schedule
    priority: int
    audience: Audience
    variants: tuple[Variant, ...]
    variant_bounds: tuple[int, ...]
    traffic: int = BUCKETS
    holdout: int = 0
    exclusion_group: str | None = None
    group_slots: tuple[int, int] | None = None
    salt: str = ""
    group_prefix: str = ""
    traffic_prefix: str = ""
    holdout_prefix: str = ""
    variant_prefix: str = ""
    keeps_assignment: bool = True
    """``"assignment": "stored"`` (the default): a visitor served an arm before keeps it
    (``decide``'s ``assignments``); ``"hashed"``: every decision draws from the hash."""


@dataclass(frozen=True, slots=True)
class Placement:
    """A slot on a page; ``fallback`` is served when no campaign applies."""

    id: str
    name: str
    fallback: JSON


@dataclass(frozen=True, slots=True)
class ExclusionGroup:
    """Campaigns that never share a visitor: each owns a disjoint slot range."""

    id: str
    name: str
    salt: str
    campaigns: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Webhook:
    """Where segment changes are POSTed: ``url``, for the changes of ``segments``
    (segments marked ``notify``). The secret that signs them is server configuration,
    never part of the rules."""

    id: str
    url: str
    segments: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Assignment:
    """The arm a visitor was served before, kept so that they keep it: ``variant`` is a
    variant id or ``HOLDOUT_ARM``; ``salt`` the campaign's salt when it was served (a
    campaign given a new salt reshuffles everyone: the assignment no longer applies)."""

    variant: str
    salt: str


@dataclass(frozen=True, slots=True)
class Ruleset:
    """A validated, compiled rules document. Immutable and thread-safe to share.

    ``version`` is a hash of the document's content. ``candidates`` maps each
    placement id to its campaigns in resolution order (priority descending, then
    campaign id ascending). ``segment_filters`` maps each segment id to its compiled
    filter, in document order: the ``segments`` argument of ``EvalContext``.
    ``profile_segments`` are the segments whose membership depends on the visitor's
    profile alone: no ``context`` field, no relative date, and only such segments
    referenced (``decide`` can reuse their results for an unchanged profile).
    ``profile_audiences`` are the campaigns whose audience (include and exclude
    segments, inline filter) depends on the profile alone in the same way.
    ``activity`` declares what the activity clauses of its filters read of the
    visitors' events: the profile fold keeps that (``decision.retention``).
    ``notify_segments`` are the segments marked ``notify``, in document order;
    ``webhooks`` the document's webhook targets.
    """

    version: str
    document: Mapping[str, JSON]
    segments: Mapping[str, Segment]
    placements: Mapping[str, Placement]
    campaigns: Mapping[str, Campaign]
    exclusion_groups: Mapping[str, ExclusionGroup]
    candidates: Mapping[str, tuple[Campaign, ...]]
    segment_filters: Mapping[str, Predicate] = field(default_factory=lambda: MappingProxyType({}))
    profile_segments: frozenset[str] = frozenset()
    profile_audiences: frozenset[str] = frozenset()
    activity: ActivityNeeds = NO_ACTIVITY
    notify_segments: tuple[str, ...] = ()
    webhooks: Mapping[str, Webhook] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True, slots=True)
class TraceEntry:
    """Why one candidate campaign was taken or passed over.

    ``bucket`` is the bucket drawn at the step that decided (group slot, traffic,
    holdout or variant), when one was drawn.
    """

    campaign_id: str
    outcome: Outcome
    detail: str
    bucket: int | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    """The answer for one placement.

    ``matched_segments`` are the winning campaign's audience segments the visitor is
    in (empty for a fallback). ``trace`` is set only when an explanation was asked.
    """

    placement: str
    reason: Reason
    content: JSON
    ruleset_version: str
    campaign_id: str | None = None
    variant_id: str | None = None
    control: bool = False
    matched_segments: tuple[str, ...] = ()
    trace: tuple[TraceEntry, ...] | None = None
