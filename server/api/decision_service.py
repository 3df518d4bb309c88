"""``decisioning.v1.DecisionService``: decisions from the current snapshot.

Decide is the hot path, run on the event loop with nothing in it that waits: the
snapshot is one attribute read, the profile comes from the store's ``peek`` (a pool
thread only when the store must go to the network), the engine runs in place, and the
exposures are handed to a buffer that a background thread writes. The request is
checked once, here; the engine is called through ``decide_trusted`` so it does not
check again, and the document the filters see is built once (profile, overrides on
top, the request context under ``context``).

Which segments a visitor is in is personal data: an anonymous caller gets no
``matched_segments`` and cannot ask for an explanation (``server.api.interceptors``).

The response is assembled from pre-encoded parts (``server.api.responses``): a
decision's bytes depend on little more than its placement, campaign, variant and
matched segments, so they are encoded once per ruleset and only the decision id is
encoded per call.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

import decision
from decision import InvalidRequestError, Problem
from protos import decisioning_pb2 as pb
from server import limits
from server.activation.assignments import IdentityCache
from server.activation.moments import preview_moment
from server.analytics.exposures import HOLDOUT_VARIANT
from server.api.convert import StructCache, new_decision_ids, utcnow
from server.api.interceptors import Credentials
from server.api.responses import ResponseEncoder
from server.errors import AuthenticationError, RulesNotLoadedError
from server.executors import Pool
from server.metrics import Metrics
from server.profiles.cache import ProfileMemos
from server.profiles.store import MISSING, ProfileReader
from server.rules.snapshot import Snapshot
from server.storage import ExposureSink

Clock = Callable[[], datetime]

EXPLAIN_NEEDS_CREDENTIALS = (
    "explain names the visitor's segments, which are personal data: send the API key"
    " (x-api-key) or, on a server without API keys, the admin token"
)


class SnapshotSource(Protocol):
    """Where handlers get the current snapshot (the ``Reloader``)."""

    @property
    def snapshot(self) -> Snapshot | None: ...


class DecisionServicer:
    """Decide and GetVisitorSegments; methods are coroutines run by ``server.api.handlers``."""

    def __init__(
        self,
        source: SnapshotSource,
        profiles: ProfileReader,
        *,
        reads: Pool,
        max_placements: int = limits.MAX_PLACEMENTS,
        clock: Clock = utcnow,
        metrics: Metrics | None = None,
        exposures: ExposureSink | None = None,
        credentials: Credentials | None = None,
        identities: IdentityCache | None = None,
    ) -> None:
        self._credentials = credentials
        self._identities = identities
        self._source = source
        self._profiles = profiles
        self._reads = reads
        self._max_placements = max_placements
        self._clock = clock
        self._metrics = metrics
        self._exposures = exposures
        self._memos = ProfileMemos()
        self._encoder = ResponseEncoder()
        self._contexts = StructCache()

    def _snapshot(self) -> Snapshot:
        snapshot = self._source.snapshot  # read once: the whole call uses this version
        if snapshot is None:
            raise RulesNotLoadedError()
        return snapshot

    async def _profile(self, visitor_id: str) -> dict[str, Any] | None:
        profile = self._profiles.peek(visitor_id)
        if profile is MISSING:
            profile = await self._reads.run(self._profiles.get, visitor_id)
        return profile

    def _request(
        self, request: Any, placements: list[str] | None, known: Any = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Check the request once; its context and overrides as plain values.

        ``known``: the ruleset's placements. Ids it holds were checked when the rules
        were, so a request naming only those (almost every one) needs no check per id.
        """
        problems: list[Problem] = []
        limits.check_visitor_id(request.visitor_id, problems)
        if placements is not None and not (
            known is not None
            and 0 < len(placements) <= self._max_placements
            and all(p in known for p in placements)
            and len(set(placements)) == len(placements)
        ):
            limits.check_placements(placements, self._max_placements, problems)
            if len(set(placements)) != len(placements) and not problems:
                problems += [
                    Problem(f"placements[{i}]", f"duplicate {p!r}")
                    for i, p in enumerate(placements)
                    if placements.index(p) != i
                ]
        context = (
            self._contexts.convert(request.context, "context", problems)
            if request.HasField("context")
            else {}
        )
        overrides = (
            limits.struct_to_dict(request.profile_overrides, "profile_overrides", problems)
            if request.HasField("profile_overrides")
            else {}
        )
        if problems:
            raise InvalidRequestError(problems)
        return context, overrides

    def _may_see_segments(self, context: Any) -> bool:
        return self._credentials is None or self._credentials.caller_may_see_segments(context)

    async def Decide(self, request: pb.DecideRequest, context: Any) -> Any:
        snapshot = self._snapshot()
        explain = request.explain
        if explain and not self._may_see_segments(context):
            raise AuthenticationError(EXPLAIN_NEEDS_CREDENTIALS)
        visitor_id = request.visitor_id
        placements = list(request.placements)
        request_context, overrides = self._request(
            request, placements, snapshot.ruleset.placements
        )
        stored = await self._profile(visitor_id)
        if overrides:
            # Overrides change the profile: its segment results are not the stored one's.
            memo = None
            document = {**(stored or {}), **overrides, "context": request_context}
        else:
            memo = self._memos.get(visitor_id, stored, snapshot.ruleset)
            document = (
                {**stored, "context": request_context} if stored else {"context": request_context}
            )
        now = self._clock()
        if request.HasField("now"):  # a preview in time
            now = preview_moment(request, now)
        # Buckets are drawn on the canonical id, and stored assignments keep arms
        # (server.activation.assignments).
        identity = self._identities.get(visitor_id) if self._identities is not None else None
        decisions = decision.decide_trusted(
            snapshot.ruleset,
            visitor_id if identity is None else identity.canonical,
            document,
            placements,
            now,
            explain,
            memo,
            None if identity is None else identity.assignments,
        )
        preview = request.preview
        if self._metrics is not None and not preview:
            self._metrics.observe_decisions(decisions)
        ids = new_decision_ids(len(decisions))
        recorder = None if preview else self._exposures
        if recorder is not None:
            served = [
                (
                    decision_id,
                    visitor_id,
                    d.campaign_id,
                    d.variant_id or HOLDOUT_VARIANT,
                    d.matched_segments,
                    d.placement,
                    now,
                )
                for d, decision_id in zip(decisions, ids, strict=True)
                if d.campaign_id is not None  # CAMPAIGN or HOLDOUT: an exposure
            ]
            if served:
                if recorder.durable:
                    await recorder.record_durably(served)  # committed and synced first
                else:
                    recorder.record(served)  # a deque append; written by a background thread
                if identity is not None and self._identities is not None:
                    self._identities.learn(visitor_id, identity, decisions, snapshot.ruleset)
        if explain:
            return self._encoder.message(decisions, ids, snapshot, explain=True)
        segments = any(d.matched_segments for d in decisions) and self._may_see_segments(context)
        return self._encoder.encode(decisions, ids, snapshot, segments=segments)

    async def GetVisitorSegments(self, request: pb.GetVisitorSegmentsRequest, context: Any) -> Any:
        snapshot = self._snapshot()
        request_context, overrides = self._request(request, None)
        stored = await self._profile(request.visitor_id)
        profile = {**(stored or {}), **overrides}
        segments = decision.visitor_segments(
            snapshot.ruleset, profile, request_context, self._clock()
        )
        return pb.GetVisitorSegmentsResponse(
            segment_ids=segments,
            ruleset_version=snapshot.version,
            ruleset_hash=snapshot.content_hash,
        )
