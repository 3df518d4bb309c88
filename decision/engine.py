"""Deciding: which campaign and variant each requested placement shows to a visitor.

For each placement, its candidate campaigns are tried in resolution order (priority
descending, then id ascending) and the first one that survives every step wins:

1. status: a paused campaign is skipped;
2. schedule: ``start <= now < end``;
3. audience: in any/all of the include segments (none: everyone), in none of the
   exclude segments, and matching the inline filter;
4. exclusion group: the visitor's group slot must belong to this campaign (the slot
   replaces the traffic draw); otherwise traffic: ``bucket < traffic_allocation``;
5. holdout: a visitor whose holdout bucket is below the holdout gets the placement's
   fallback with reason HOLDOUT, and lower-priority campaigns are not shown instead;
6. variant: the variant whose bucket range holds the visitor's variant bucket.

No winner: the placement's fallback with reason FALLBACK. An unknown placement gets
reason UNKNOWN_PLACEMENT and no content. Segments are evaluated lazily, at most once
per call, shared across the requested placements. See ``decision.bucketing`` for the
draws and how they move when settings change.

Stored assignments (the ``assignments`` argument: campaign id -> ``Assignment``, what
the visitor was served before) replace steps 4 to 6 for a campaign that keeps
assignments (``Campaign.keeps_assignment``), once status, schedule and audience
passed: the visitor keeps their arm whatever the traffic allocation, group slots,
holdout and weights say now, and the other campaigns of an exclusion group never show
to a visitor assigned to one of its members. An assignment applies while the
campaign's salt is the one it was made under and its arm still exists: a variant of
weight above 0, or the holdout while the campaign has one; otherwise the visitor is
drawn again. The engine only reads assignments: storing them is the caller's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from decision.bucketing import prefixed_bucket, variant_index
from decision.errors import InvalidRequestError, Problem
from decision.filters import EvalContext
from decision.model import (
    BUCKETS,
    HOLDOUT_ARM,
    JSON,
    Assignment,
    Audience,
    Campaign,
    Decision,
    Outcome,
    Placement,
    Reason,
    Ruleset,
    TraceEntry,
)


def decide(
    ruleset: Ruleset,
    visitor_id: str,
    profile: dict[str, JSON],
    placements: Sequence[str],
    context: dict[str, JSON],
    now: datetime,
    explain: bool = False,
    profile_memo: ProfileMemo | None = None,
    assignments: Mapping[str, Assignment] | None = None,
) -> list[Decision]:
    """One ``Decision`` per requested placement, in request order.

    Filters see ``{**profile, "context": context}``: the request context replaces any
    ``context`` key of the profile. ``now`` is an aware datetime (converted to UTC).
    With ``explain`` each decision carries a trace of every candidate campaign.
    Raises ``InvalidRequestError`` listing every unusable argument.

    ``profile_memo`` carries what depends on the profile alone from one call to the
    next (see ``ProfileMemo``): results found there are not evaluated again, and those
    evaluated are added to it. ``assignments``: the visitor's stored assignments, by
    campaign id (module docstring); ``visitor_id`` should be the canonical id they
    belong to, so that buckets survive identity merges.
    """
    problems = _request_problems(profile, context, now)
    problems += _visitor_problems(visitor_id, placements)
    if problems:
        raise InvalidRequestError(problems)
    if now.utcoffset():
        now = now.astimezone(UTC)
    document = {**profile, "context": context}
    return decide_trusted(
        ruleset, visitor_id, document, placements, now, explain, profile_memo, assignments
    )


def decide_trusted(
    ruleset: Ruleset,
    visitor_id: str,
    document: dict[str, JSON],
    placements: Sequence[str],
    now: datetime,
    explain: bool = False,
    profile_memo: ProfileMemo | None = None,
    assignments: Mapping[str, Assignment] | None = None,
) -> list[Decision]:
    """``decide`` for a caller that has already checked every argument, as a server's
    request edge does: a non-empty visitor id, non-empty distinct placement ids, a UTC
    ``now``. ``document`` is what filters see, the profile with the request context
    under ``context``; it belongs to the call and is not copied."""
    ctx = EvalContext(document, now, ruleset.segment_filters)
    if profile_memo is not None:
        ctx.memo.update(profile_memo.segments)
    # With explain, audiences are evaluated: the trace tells why each one missed.
    memoized = None if explain else profile_memo
    reused = len(ctx.memo)
    known = ruleset.placements
    if not assignments:
        assignments = None
    decisions = []
    for placement_id in placements:
        placement = known.get(placement_id)
        if placement is None:
            decisions.append(
                Decision(
                    placement_id,
                    Reason.UNKNOWN_PLACEMENT,
                    None,
                    ruleset.version,
                    trace=() if explain else None,
                )
            )
        else:
            if memoized is None:
                trace: list[TraceEntry] | None = [] if explain else None
                decision = _resolve(ruleset, placement, visitor_id, ctx, trace, pins=assignments)
            else:
                decision = _resolve_memoized(
                    ruleset, placement, visitor_id, ctx, memoized, assignments
                )
            decisions.append(decision)
    if profile_memo is not None and len(ctx.memo) > reused:
        profile_only = ruleset.profile_segments
        profile_memo.segments.update(
            (segment_id, result)
            for segment_id, result in ctx.memo.items()
            if segment_id in profile_only
        )
    return decisions


class ProfileMemo:
    """What deciding learnt about one profile under one ruleset, for the next call.

    ``segments``: results of ``ruleset.profile_segments``; ``audiences``: audience
    outcomes (None: in the audience) of the campaigns in ``ruleset.profile_audiences``.
    Both depend on the profile alone, so a caller may keep one memo per ruleset and
    profile that does not change (same content, no overrides) and pass it to every
    ``decide`` for that profile. Threads may share one: whoever fills in an entry
    fills in the same value.
    """

    __slots__ = ("audiences", "candidates", "segments")

    def __init__(self) -> None:
        self.segments: dict[str, bool] = {}
        self.audiences: dict[str, Outcome | None] = {}
        # Per placement, its candidates less those whose audience is known to miss:
        # trying them again could only skip them again.
        self.candidates: dict[str, tuple[Campaign, ...]] = {}


def _resolve_memoized(
    ruleset: Ruleset,
    placement: Placement,
    visitor_id: str,
    ctx: EvalContext,
    memo: ProfileMemo,
    pins: Mapping[str, Assignment] | None = None,
) -> Decision:
    """``_resolve`` without a trace, trying only the candidates the memo has not ruled
    out; keeps the memo's candidates in step with the audiences it learns."""
    audiences = memo.audiences
    known = len(audiences)
    candidates = memo.candidates.get(placement.id)
    if candidates is None:
        candidates = ruleset.candidates[placement.id]
    decision = _resolve(ruleset, placement, visitor_id, ctx, None, audiences, candidates, pins)
    if len(audiences) != known or placement.id not in memo.candidates:
        memo.candidates[placement.id] = tuple(
            c for c in ruleset.candidates[placement.id] if audiences.get(c.id) is None
        )
    return decision


def visitor_segments(
    ruleset: Ruleset, profile: dict[str, JSON], context: dict[str, JSON], now: datetime
) -> tuple[str, ...]:
    """Every segment the visitor is in, in document order."""
    problems = _request_problems(profile, context, now)
    if problems:
        raise InvalidRequestError(problems)
    if now.utcoffset():
        now = now.astimezone(UTC)
    ctx = EvalContext({**profile, "context": context}, now, ruleset.segment_filters)
    return tuple(segment_id for segment_id in ruleset.segment_filters if ctx.segment(segment_id))


def _resolve(
    ruleset: Ruleset,
    placement: Placement,
    visitor_id: str,
    ctx: EvalContext,
    trace: list[TraceEntry] | None,
    audiences: dict[str, Outcome | None] | None = None,
    candidates: tuple[Campaign, ...] | None = None,
    pins: Mapping[str, Assignment] | None = None,
) -> Decision:
    """The decision for one placement; fills ``trace`` when it is a list. ``audiences``
    (``ProfileMemo.audiences``) supplies and keeps audience outcomes of the campaigns in
    ``ruleset.profile_audiences``; ``candidates`` replaces the placement's own (without
    a trace only: the trace lists every candidate); ``pins``: stored assignments, not
    empty (see the module docstring)."""
    now = ctx.now
    assert now is not None
    version = ruleset.version
    if candidates is None:
        candidates = ruleset.candidates[placement.id]
    profile_audiences = ruleset.profile_audiences
    for position, campaign in enumerate(candidates):
        if not campaign.active:
            if trace is not None:
                trace.append(TraceEntry(campaign.id, Outcome.PAUSED, "paused"))
            continue
        start = campaign.schedule.start
        if start is not None and now < start:
            if trace is not None:
                detail = f"not started until {_instant(start)}"
                trace.append(TraceEntry(campaign.id, Outcome.NOT_STARTED, detail))
            continue
        end = campaign.schedule.end
        if end is not None and now >= end:
            if trace is not None:
                trace.append(TraceEntry(campaign.id, Outcome.ENDED, f"ended at {_instant(end)}"))
            continue
        if audiences is None:
            miss = _audience_miss(campaign.audience, ctx)
        elif campaign.id in audiences:
            miss = audiences[campaign.id]
        else:
            miss = _audience_miss(campaign.audience, ctx)
            if campaign.id in profile_audiences:
                audiences[campaign.id] = miss
        if miss is not None:
            if trace is not None:
                detail = _audience_detail(campaign.audience, miss, ctx)
                trace.append(TraceEntry(campaign.id, miss, detail))
            continue

        if pins is not None:
            kept = _kept_arm(campaign, pins, ruleset)
            if kept is not None:
                if isinstance(kept, str):  # another campaign of the group has the visitor
                    if trace is not None:
                        detail = f"the visitor is assigned to campaign {kept} of its group"
                        trace.append(TraceEntry(campaign.id, Outcome.GROUP_SLOT_TAKEN, detail))
                    continue
                return _kept(ruleset, placement, campaign, kept, ctx, trace, candidates, position)

        slots = campaign.group_slots
        if slots is not None:
            slot = prefixed_bucket(campaign.group_prefix, visitor_id)
            if not slots[0] <= slot < slots[1]:
                if trace is not None:
                    detail = _slot_detail(slot, campaign, ruleset)
                    trace.append(TraceEntry(campaign.id, Outcome.GROUP_SLOT_TAKEN, detail, slot))
                continue
        elif campaign.traffic < BUCKETS:
            drawn = prefixed_bucket(campaign.traffic_prefix, visitor_id)
            if drawn >= campaign.traffic:
                if trace is not None:
                    detail = (
                        f"bucket {drawn} outside traffic allocation {_percent(campaign.traffic)}"
                    )
                    trace.append(TraceEntry(campaign.id, Outcome.TRAFFIC_ALLOCATION, detail, drawn))
                continue

        matched = _matched_segments(campaign.audience, ctx)
        if campaign.holdout:
            drawn = prefixed_bucket(campaign.holdout_prefix, visitor_id)
            if drawn < campaign.holdout:
                if trace is not None:
                    detail = f"holdout bucket {drawn} within holdout {_percent(campaign.holdout)}"
                    trace.append(TraceEntry(campaign.id, Outcome.HOLDOUT, detail, drawn))
                    _lost(trace, candidates, position, campaign)
                return Decision(
                    placement.id,
                    Reason.HOLDOUT,
                    placement.fallback,
                    version,
                    campaign_id=campaign.id,
                    matched_segments=matched,
                    trace=None if trace is None else tuple(trace),
                )

        drawn = prefixed_bucket(campaign.variant_prefix, visitor_id)
        variant = campaign.variants[variant_index(campaign.variant_bounds, drawn)]
        content = placement.fallback if variant.uses_fallback else variant.content
        if trace is not None:
            detail = f"selected variant {variant.id} with bucket {drawn}"
            trace.append(TraceEntry(campaign.id, Outcome.SELECTED, detail, drawn))
            _lost(trace, candidates, position, campaign)
        return Decision(
            placement.id,
            Reason.CAMPAIGN,
            content,
            version,
            campaign_id=campaign.id,
            variant_id=variant.id,
            control=variant.control,
            matched_segments=matched,
            trace=None if trace is None else tuple(trace),
        )

    return Decision(
        placement.id,
        Reason.FALLBACK,
        placement.fallback,
        version,
        trace=None if trace is None else tuple(trace),
    )


_HELD_OUT = -1
"""``_kept_arm``'s answer for a visitor kept in the campaign's holdout."""


def _kept_arm(
    campaign: Campaign, pins: Mapping[str, Assignment], ruleset: Ruleset
) -> int | str | None:
    """The arm a stored assignment keeps the visitor in: a variant index or
    ``_HELD_OUT``; the id of another campaign of the exclusion group when the visitor
    is assigned to that one; None: draw as usual. In a group the first member (in
    document order) the visitor holds an assignment of owns them (two can meet when
    identity merges join two people's assignments)."""
    group_id = campaign.exclusion_group
    if group_id is None:
        return _pinned_arm(campaign, pins.get(campaign.id))
    for member_id in ruleset.exclusion_groups[group_id].campaigns:
        if member_id in pins:
            member = ruleset.campaigns[member_id]
            arm = _pinned_arm(member, pins[member_id])
            if arm is not None:
                return arm if member is campaign else member_id
    return None


def _pinned_arm(campaign: Campaign, pin: Assignment | None) -> int | None:
    """The arm ``pin`` keeps the visitor in, if it still applies to ``campaign``."""
    if pin is None or not campaign.keeps_assignment or pin.salt != campaign.salt:
        return None
    if pin.variant == HOLDOUT_ARM:
        return _HELD_OUT if campaign.holdout else None
    for index, variant in enumerate(campaign.variants):
        if variant.id == pin.variant:
            return index if variant.weight > 0 else None
    return None


def _kept(
    ruleset: Ruleset,
    placement: Placement,
    campaign: Campaign,
    arm: int,
    ctx: EvalContext,
    trace: list[TraceEntry] | None,
    candidates: tuple[Campaign, ...],
    position: int,
) -> Decision:
    """The decision serving ``campaign``'s arm ``arm`` (``_kept_arm``) to an assigned
    visitor."""
    matched = _matched_segments(campaign.audience, ctx)
    if arm == _HELD_OUT:
        if trace is not None:
            trace.append(TraceEntry(campaign.id, Outcome.HOLDOUT, "kept in the holdout (assigned)"))
            _lost(trace, candidates, position, campaign)
        return Decision(
            placement.id,
            Reason.HOLDOUT,
            placement.fallback,
            ruleset.version,
            campaign_id=campaign.id,
            matched_segments=matched,
            trace=None if trace is None else tuple(trace),
        )
    variant = campaign.variants[arm]
    if trace is not None:
        detail = f"kept assigned variant {variant.id}"
        trace.append(TraceEntry(campaign.id, Outcome.SELECTED, detail))
        _lost(trace, candidates, position, campaign)
    return Decision(
        placement.id,
        Reason.CAMPAIGN,
        placement.fallback if variant.uses_fallback else variant.content,
        ruleset.version,
        campaign_id=campaign.id,
        variant_id=variant.id,
        control=variant.control,
        matched_segments=matched,
        trace=None if trace is None else tuple(trace),
    )


def _audience_miss(audience: Audience, ctx: EvalContext) -> Outcome | None:
    """Why the visitor is not in ``audience``, or None when they are."""
    include = audience.segments
    if include:
        if audience.match == "all":
            for segment_id in include:
                if not ctx.segment(segment_id):
                    return Outcome.AUDIENCE_NOT_MATCHED
        else:
            for segment_id in include:
                if ctx.segment(segment_id):
                    break
            else:
                return Outcome.AUDIENCE_NOT_MATCHED
    for segment_id in audience.exclude:
        if ctx.segment(segment_id):
            return Outcome.EXCLUDED
    inline = audience.filter
    if inline is not None and not inline.evaluate(ctx):
        return Outcome.FILTER_NOT_MATCHED
    return None


def _matched_segments(audience: Audience, ctx: EvalContext) -> tuple[str, ...]:
    """The include segments the visitor is in, in audience order."""
    include = audience.segments
    if len(include) < 2 or audience.match == "all":
        return include  # every one of them matched, or there are none
    return tuple(segment_id for segment_id in include if ctx.segment(segment_id))


def _audience_detail(audience: Audience, miss: Outcome, ctx: EvalContext) -> str:
    # Only segments _audience_miss already evaluated are read here, so explaining
    # evaluates nothing more than deciding does.
    if miss is Outcome.EXCLUDED:
        excluded = next(s for s in audience.exclude if ctx.segment(s))
        return f"excluded by segment {excluded}"
    if miss is Outcome.FILTER_NOT_MATCHED:
        return "inline filter not matched"
    if audience.match == "all":
        missing = next(s for s in audience.segments if not ctx.segment(s))
        return f"segment {missing} not matched"
    if len(audience.segments) == 1:
        return f"segment {audience.segments[0]} not matched"
    return f"none of [{', '.join(audience.segments)}] matched"


def _slot_detail(slot: int, campaign: Campaign, ruleset: Ruleset) -> str:
    # Members of the group may serve other placements, so look in the whole ruleset.
    group = ruleset.exclusion_groups[campaign.exclusion_group or ""]
    for member_id in group.campaigns:
        slots = ruleset.campaigns[member_id].group_slots
        if slots is not None and slots[0] <= slot < slots[1]:
            return f"slot {slot} belongs to campaign {member_id}"
    return f"slot {slot} belongs to no campaign"


def _lost(
    trace: list[TraceEntry], candidates: tuple[Campaign, ...], position: int, winner: Campaign
) -> None:
    detail = f"lost on priority to {winner.id}"
    for campaign in candidates[position + 1 :]:
        trace.append(TraceEntry(campaign.id, Outcome.LOST_ON_PRIORITY, detail))


def _instant(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _percent(buckets: int) -> str:
    return f"{buckets / 100:g}%"


def _request_problems(profile: Any, context: Any, now: Any) -> list[Problem]:
    problems = []
    if not isinstance(profile, dict):
        problems.append(Problem("profile", f"must be an object, not {type(profile).__name__}"))
    if not isinstance(context, dict):
        problems.append(Problem("context", f"must be an object, not {type(context).__name__}"))
    if not isinstance(now, datetime):
        problems.append(Problem("now", f"must be a datetime, not {type(now).__name__}"))
    elif now.utcoffset() is None:
        problems.append(Problem("now", "must be timezone-aware (naive datetimes are ambiguous)"))
    return problems


def _visitor_problems(visitor_id: Any, placements: Any) -> list[Problem]:
    problems = []
    if not isinstance(visitor_id, str):
        problems.append(Problem("visitor_id", f"must be a string, not {type(visitor_id).__name__}"))
    elif not visitor_id:
        problems.append(Problem("visitor_id", "must not be empty"))
    if not isinstance(placements, (list, tuple)):
        problems.append(
            Problem("placements", f"must be a list of ids, not {type(placements).__name__}")
        )
        return problems
    if not placements:
        problems.append(Problem("placements", "must name at least one placement"))
    valid = True
    for index, placement_id in enumerate(placements):
        if not isinstance(placement_id, str) or not placement_id:
            problems.append(Problem(f"placements[{index}]", "must be a non-empty string"))
            valid = False
    if valid and len(placements) > 1 and len(set(placements)) != len(placements):
        for index, placement_id in enumerate(placements):
            if placements.index(placement_id) != index:
                problems.append(Problem(f"placements[{index}]", f"duplicate {placement_id!r}"))
    return problems
