"""The gRPC servicers: proto messages in, engine and store calls, proto messages out.

Nothing here decides anything. Each method checks the request against the documented
limits (``server.limits``), calls the engine or the store, and converts the result;
``@handles_errors`` turns every exception into its status (``server.errors``).
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from importlib import metadata
from typing import Any, Protocol

import grpc
from google.protobuf import timestamp_pb2

import decision
from decision import InvalidRequestError, Outcome, Problem, Reason
from protos import decisioning_pb2 as pb
from protos import decisioning_pb2_grpc as pb_grpc
from server import limits
from server.analytics.exposures import HOLDOUT_VARIANT, ExposureRecorder
from server.api.status import handles_errors
from server.errors import RulesNotLoadedError
from server.metrics import Metrics
from server.profiles.cache import ProfileMemos, ProfileStore, merge_profile
from server.rules.documents import validate_text
from server.rules.reloader import ReloadStatus
from server.rules.snapshot import Snapshot
from server.rules.sqlite import RulesStore, VersionInfo

AUTHOR_KEY = "x-decide-author"
"""Optional metadata naming who publishes or rolls back; stored in the history."""

MAX_AUTHOR_LENGTH = 128

PID_KEY = "x-decide-pid"
"""Initial metadata of GetStatus: the id of the server process that answered, which
tells the processes of ``decide serve --processes N`` apart."""

Clock = Callable[[], datetime]

# Built at import so a Reason or Outcome the proto lacks fails loudly, not per call.
_REASONS: dict[Reason, Any] = {r: pb.Reason.Value(f"REASON_{r.name}") for r in Reason}
_OUTCOMES: dict[Outcome, Any] = {o: pb.Outcome.Value(f"OUTCOME_{o.name}") for o in Outcome}


def utcnow() -> datetime:
    """The current time, as an aware UTC datetime."""
    return datetime.now(UTC)


def server_version() -> str:
    """The installed package version of this server."""
    try:
        return metadata.version("decide")
    except metadata.PackageNotFoundError:
        return "0.0.0+unknown"


class SnapshotSource(Protocol):
    """Where handlers get the current snapshot (the ``Reloader``)."""

    @property
    def snapshot(self) -> Snapshot | None: ...


class StatusSource(SnapshotSource, Protocol):
    """A snapshot source that also reports reload status (the ``Reloader``)."""

    @property
    def status(self) -> ReloadStatus: ...

    def poll_once(self) -> bool: ...


# -- ids ------------------------------------------------------------------------------

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
# Two characters (10 bits) per lookup: 13 lookups encode the 130 bits of 26 characters.
_PAIRS = tuple(a + b for a in _CROCKFORD for b in _CROCKFORD)
_PAIR_SHIFTS = tuple(range(120, -1, -10))


def new_decision_id() -> str:
    """A ULID: 26 Crockford base-32 characters, 48 bits of milliseconds then 80 random
    bits, so ids sort by creation time and never collide in practice.

    The random bits come from ``random`` (seeded from the OS at start and again in a
    forked child), not ``os.urandom``: ids must be unique, not secret, and a system call
    per id released and re-took the GIL, which under load cost more than the call.
    """
    value = (time.time_ns() // 1_000_000) << 80 | random.getrandbits(80)
    return "".join([_PAIRS[(value >> shift) & 1023] for shift in _PAIR_SHIFTS])


# -- conversions ----------------------------------------------------------------------


def timestamp(moment: datetime | None) -> timestamp_pb2.Timestamp | None:
    """A proto Timestamp of an aware datetime (None stays None: the field stays unset)."""
    if moment is None:
        return None
    message = timestamp_pb2.Timestamp()
    message.FromDatetime(moment)
    return message


def version_message(info: VersionInfo) -> pb.RulesVersion:
    """The proto form of a stored version's metadata."""
    return pb.RulesVersion(
        version=info.version,
        content_hash=info.content_hash,
        created_at=timestamp(info.created_at),
        comment=info.comment,
        author=info.author,
        restored_from=info.restored_from,
        active=info.active,
    )


def decision_message(d: decision.Decision, snapshot: Snapshot, explain: bool) -> pb.Decision:
    """The proto form of one engine decision; content JSON comes precomputed."""
    return _add_decision(pb.Decision, d, snapshot, explain)


def _add_decision(
    add: Callable[..., pb.Decision], d: decision.Decision, snapshot: Snapshot, explain: bool
) -> pb.Decision:
    """``add`` is ``pb.Decision`` or a response's ``decisions.add``: adding to the list in
    place saves building a message and then copying it into the response."""
    message = add(
        placement=d.placement,
        decision_id=new_decision_id(),
        reason=_REASONS[d.reason],
        campaign_id=d.campaign_id or "",
        variant_id=d.variant_id or "",
        control=d.control,
        content_json=snapshot.content_json(d.content),
        matched_segments=d.matched_segments,
    )
    if explain:
        message.explanation.SetInParent()
        for entry in d.trace or ():
            message.explanation.candidates.add(
                campaign_id=entry.campaign_id,
                outcome=_OUTCOMES[entry.outcome],
                detail=entry.detail,
                bucket=entry.bucket,
            )
    return message


def _author(context: grpc.ServicerContext) -> str:
    for key, value in context.invocation_metadata() or ():
        if key == AUTHOR_KEY:
            text = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
            return text.strip()[:MAX_AUTHOR_LENGTH]
    return ""


def _check_comment(comment: str, problems: list[Problem]) -> None:
    if len(comment) > limits.MAX_COMMENT_LENGTH:
        problems.append(
            Problem("comment", f"is longer than {limits.MAX_COMMENT_LENGTH} characters")
        )


def _raise_if(problems: Sequence[Problem]) -> None:
    if problems:
        raise InvalidRequestError(list(problems))


# -- services -------------------------------------------------------------------------


class DecisionServicer(pb_grpc.DecisionServiceServicer):
    """``decisioning.v1.DecisionService``: decisions from the current snapshot."""

    def __init__(
        self,
        source: SnapshotSource,
        profiles: ProfileStore,
        *,
        max_placements: int = limits.MAX_PLACEMENTS,
        clock: Clock = utcnow,
        metrics: Metrics | None = None,
        exposures: ExposureRecorder | None = None,
    ) -> None:
        self._source = source
        self._profiles = profiles
        self._max_placements = max_placements
        self._clock = clock
        self._metrics = metrics
        self._exposures = exposures
        self._memos = ProfileMemos()

    def _snapshot(self) -> Snapshot:
        snapshot = self._source.snapshot  # read once: the whole call uses this version
        if snapshot is None:
            raise RulesNotLoadedError()
        return snapshot

    def _structs(self, request: Any, problems: list[Problem]) -> tuple[dict[str, Any], ...]:
        """The request's context and profile overrides as plain values, checked.

        An unset Struct converts to ``{}`` without the walk (most calls send no overrides).
        """
        context = (
            limits.struct_to_dict(request.context, "context", problems)
            if request.HasField("context")
            else {}
        )
        overrides = (
            limits.struct_to_dict(request.profile_overrides, "profile_overrides", problems)
            if request.HasField("profile_overrides")
            else {}
        )
        return context, overrides

    @handles_errors
    def Decide(self, request: pb.DecideRequest, context: grpc.ServicerContext) -> Any:
        snapshot = self._snapshot()
        problems: list[Problem] = []
        limits.check_visitor_id(request.visitor_id, problems)
        placements = list(request.placements)
        limits.check_placements(placements, self._max_placements, problems)
        request_context, overrides = self._structs(request, problems)
        _raise_if(problems)
        stored = self._profiles.get(request.visitor_id)
        # Overrides change the profile: its segment results are not the stored one's.
        memo = None if overrides else self._memos.get(request.visitor_id, stored, snapshot.ruleset)
        now = self._clock()
        decisions = decision.decide(
            snapshot.ruleset,
            request.visitor_id,
            merge_profile(stored, overrides),
            placements,
            request_context,
            now,
            explain=request.explain,
            profile_memo=memo,
        )
        preview = request.preview
        if self._metrics is not None and not preview:
            self._metrics.observe_decisions(decisions)
        response = pb.DecideResponse(
            ruleset_version=snapshot.version, ruleset_hash=snapshot.content_hash
        )
        add = response.decisions.add
        recorder = None if preview else self._exposures
        if recorder is None:
            for d in decisions:
                _add_decision(add, d, snapshot, request.explain)
            return response
        served = []
        for d in decisions:
            message = _add_decision(add, d, snapshot, request.explain)
            if d.campaign_id is not None:  # CAMPAIGN or HOLDOUT: an exposure
                served.append(
                    (
                        message.decision_id,
                        request.visitor_id,
                        d.campaign_id,
                        d.variant_id or HOLDOUT_VARIANT,
                        d.matched_segments,
                        d.placement,
                        now,
                    )
                )
        if served:
            recorder.record(served)  # a deque append; written by a background thread
        return response

    @handles_errors
    def GetVisitorSegments(
        self, request: pb.GetVisitorSegmentsRequest, context: grpc.ServicerContext
    ) -> Any:
        snapshot = self._snapshot()
        problems: list[Problem] = []
        limits.check_visitor_id(request.visitor_id, problems)
        request_context, overrides = self._structs(request, problems)
        _raise_if(problems)
        profile = merge_profile(self._profiles.get(request.visitor_id), overrides)
        segments = decision.visitor_segments(
            snapshot.ruleset, profile, request_context, self._clock()
        )
        return pb.GetVisitorSegmentsResponse(
            segment_ids=segments,
            ruleset_version=snapshot.version,
            ruleset_hash=snapshot.content_hash,
        )


class RulesAdminServicer(pb_grpc.RulesAdminServicer):
    """``decisioning.v1.RulesAdmin``: the versioned store, and this server's status."""

    def __init__(self, store: RulesStore, source: StatusSource) -> None:
        self._store = store
        self._source = source
        self._server_version = server_version()

    @handles_errors
    def ValidateRules(self, request: pb.ValidateRulesRequest, context: grpc.ServicerContext) -> Any:
        problems, content_hash = validate_text(request.document_json)
        return pb.ValidateRulesResponse(
            valid=not problems,
            problems=[pb.RuleProblem(path=p.path, message=p.message) for p in problems],
            content_hash=content_hash,
        )

    @handles_errors
    def PublishRules(self, request: pb.PublishRulesRequest, context: grpc.ServicerContext) -> Any:
        problems: list[Problem] = []
        _check_comment(request.comment, problems)
        _raise_if(problems)
        info = self._store.publish(
            request.document_json,
            expected_version=(
                request.expected_version if request.HasField("expected_version") else None
            ),
            comment=request.comment,
            author=_author(context),
        )
        # Read-your-writes: this server serves the new version before the call returns.
        self._source.poll_once()
        return pb.PublishRulesResponse(version=version_message(info))

    @handles_errors
    def GetRules(self, request: pb.GetRulesRequest, context: grpc.ServicerContext) -> Any:
        version = request.version if request.HasField("version") else None
        if version is not None and version < 1:
            raise InvalidRequestError([Problem("version", "must be >= 1")])
        info, document = self._store.get(version)
        return pb.GetRulesResponse(version=version_message(info), document_json=document)

    @handles_errors
    def ListVersions(self, request: pb.ListVersionsRequest, context: grpc.ServicerContext) -> Any:
        if request.limit < 0:
            raise InvalidRequestError([Problem("limit", "must be >= 0")])
        limit = min(request.limit or limits.DEFAULT_LIST_LIMIT, limits.MAX_LIST_LIMIT)
        versions = self._store.list_versions(limit)
        return pb.ListVersionsResponse(
            versions=[version_message(v) for v in versions],
            active_version=self._store.active_version(),
        )

    @handles_errors
    def Rollback(self, request: pb.RollbackRequest, context: grpc.ServicerContext) -> Any:
        problems: list[Problem] = []
        if request.version < 1:
            problems.append(Problem("version", "must be >= 1"))
        _check_comment(request.comment, problems)
        _raise_if(problems)
        info = self._store.rollback(
            request.version,
            comment=request.comment,
            expected_version=(
                request.expected_version if request.HasField("expected_version") else None
            ),
            author=_author(context),
        )
        self._source.poll_once()
        return pb.RollbackResponse(version=version_message(info))

    @handles_errors
    def GetStatus(self, request: pb.GetStatusRequest, context: grpc.ServicerContext) -> Any:
        context.send_initial_metadata(((PID_KEY, str(os.getpid())),))
        snapshot = self._source.snapshot
        status = self._source.status
        return pb.GetStatusResponse(
            active_version=snapshot.version if snapshot else 0,
            content_hash=snapshot.content_hash if snapshot else "",
            loaded_at=timestamp(snapshot.loaded_at if snapshot else None),
            store_version=self._store.active_version(),
            last_reload_error=status.last_error,
            last_reload_error_at=timestamp(status.last_error_at),
            reload_count=status.reload_count,
            reload_error_count=status.error_count,
            server_version=self._server_version,
        )
