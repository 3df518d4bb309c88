"""Python values to request messages and response messages to ``client.types``.

Shared by the sync and the async client, so both return exactly the same objects.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime

from google.protobuf import struct_pb2, timestamp_pb2

from client.errors import InternalError, InvalidArgument
from client.types import (
    CLIENT_FALLBACK,
    JSON,
    ActivityBackfill,
    CandidateTrace,
    DecideResult,
    Decision,
    RuleProblem,
    RulesDocument,
    RulesVersion,
    ServerStatus,
    ValidationResult,
    VersionList,
    VisitorSegments,
)
from protos import decisioning_pb2 as pb


def decide_request(
    visitor_id: str,
    placements: Sequence[str],
    context: Mapping[str, JSON] | None,
    explain: bool,
    profile_overrides: Mapping[str, JSON] | None,
    preview: bool = False,
    now: datetime | None = None,
) -> pb.DecideRequest:
    """A ``DecideRequest``; ``InvalidArgument`` for values a Struct cannot carry. ``now``
    (previews only) is a moment to decide at; a naive one is taken as UTC."""
    if isinstance(placements, str):
        # list("home_hero") would silently ask for nine one-letter placements.
        raise TypeError("placements must be a sequence of placement ids, not a str")
    return pb.DecideRequest(
        visitor_id=visitor_id,
        placements=list(placements),
        context=_struct("context", context),
        explain=explain,
        profile_overrides=_struct("profile_overrides", profile_overrides),
        preview=preview,
        now=_timestamp(now),
    )


def _timestamp(moment: datetime | None) -> timestamp_pb2.Timestamp | None:
    if moment is None:
        return None
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(moment if moment.tzinfo else moment.replace(tzinfo=UTC))
    return stamp


def segments_request(
    visitor_id: str,
    context: Mapping[str, JSON] | None,
    profile_overrides: Mapping[str, JSON] | None,
) -> pb.GetVisitorSegmentsRequest:
    """A ``GetVisitorSegmentsRequest``."""
    return pb.GetVisitorSegmentsRequest(
        visitor_id=visitor_id,
        context=_struct("context", context),
        profile_overrides=_struct("profile_overrides", profile_overrides),
    )


def document_json(document: Mapping[str, JSON] | str | bytes) -> str:
    """A rules document as JSON text: text is sent as given (the server reports its
    syntax errors), a mapping is serialized keeping its key order."""
    if isinstance(document, bytes):
        return document.decode("utf-8")
    if isinstance(document, str):
        return document
    try:
        return json.dumps(document, ensure_ascii=False)
    except (TypeError, ValueError) as e:
        raise InvalidArgument(f"document is not JSON-serializable: {e}") from e


def _struct(name: str, values: Mapping[str, JSON] | None) -> struct_pb2.Struct | None:
    if values is None:
        return None
    struct = struct_pb2.Struct()
    try:
        struct.update(values)
    except (TypeError, ValueError, AttributeError) as e:
        raise InvalidArgument(f"{name}: {e}", violations=[(name, str(e))]) from e
    return struct


def decide_result(response: pb.DecideResponse) -> DecideResult:
    """The typed result of a ``Decide`` call."""
    return DecideResult(
        decisions=tuple(_decision(d) for d in response.decisions),
        ruleset_version=response.ruleset_version,
        ruleset_hash=response.ruleset_hash,
    )


def _decision(message: pb.Decision) -> Decision:
    explanation = None
    if message.HasField("explanation"):
        explanation = tuple(
            CandidateTrace(
                campaign_id=c.campaign_id,
                outcome=pb.Outcome.Name(c.outcome).removeprefix("OUTCOME_"),
                detail=c.detail,
                bucket=c.bucket if c.HasField("bucket") else None,
            )
            for c in message.explanation.candidates
        )
    return Decision(
        placement=message.placement,
        decision_id=message.decision_id,
        reason=pb.Reason.Name(message.reason).removeprefix("REASON_"),
        campaign_id=message.campaign_id or None,
        variant_id=message.variant_id or None,
        control=message.control,
        content=_parse_json(message.content_json, f"content of {message.placement!r}"),
        matched_segments=tuple(message.matched_segments),
        explanation=explanation,
    )


def fallback_result(placements: Iterable[str], fallbacks: Mapping[str, JSON]) -> DecideResult:
    """Client-side decisions serving ``fallbacks`` (``None`` for a missing placement)."""
    return DecideResult(
        decisions=tuple(
            Decision(
                placement=p,
                decision_id="",
                reason=CLIENT_FALLBACK,
                campaign_id=None,
                variant_id=None,
                control=False,
                content=fallbacks.get(p),
                is_fallback=True,
            )
            for p in placements
        ),
        ruleset_version=0,
        ruleset_hash="",
        fallback=True,
    )


def visitor_segments(response: pb.GetVisitorSegmentsResponse) -> VisitorSegments:
    """The typed result of a ``GetVisitorSegments`` call."""
    return VisitorSegments(
        segment_ids=tuple(response.segment_ids),
        ruleset_version=response.ruleset_version,
        ruleset_hash=response.ruleset_hash,
    )


def validation_result(response: pb.ValidateRulesResponse) -> ValidationResult:
    """The typed result of a ``ValidateRules`` call."""
    return ValidationResult(
        valid=response.valid,
        problems=tuple(RuleProblem(p.path, p.message) for p in response.problems),
        content_hash=response.content_hash or None,
    )


def rules_version(message: pb.RulesVersion) -> RulesVersion:
    """Typed metadata of one stored version."""
    return RulesVersion(
        version=message.version,
        content_hash=message.content_hash,
        created_at=_datetime(message, "created_at"),
        comment=message.comment,
        author=message.author,
        restored_from=message.restored_from or None,
        active=message.active,
    )


def rules_document(response: pb.GetRulesResponse) -> RulesDocument:
    """The typed result of a ``GetRules`` call."""
    return RulesDocument(
        version=rules_version(response.version),
        document_json=response.document_json,
        document=_parse_json(response.document_json, "rules document"),
    )


def version_list(response: pb.ListVersionsResponse) -> VersionList:
    """The typed result of a ``ListVersions`` call."""
    return VersionList(
        versions=tuple(rules_version(v) for v in response.versions),
        active_version=response.active_version,
    )


def server_status(response: pb.GetStatusResponse) -> ServerStatus:
    """The typed result of a ``GetStatus`` call."""
    return ServerStatus(
        active_version=response.active_version,
        content_hash=response.content_hash,
        loaded_at=_datetime(response, "loaded_at"),
        store_version=response.store_version,
        last_reload_error=response.last_reload_error or None,
        last_reload_error_at=_datetime(response, "last_reload_error_at"),
        reload_count=response.reload_count,
        reload_error_count=response.reload_error_count,
        server_version=response.server_version,
        activity_backfill=(
            ActivityBackfill(
                complete=response.activity_backfill.complete,
                pending=response.activity_backfill.pending,
                backfilled=response.activity_backfill.backfilled,
                last_error=response.activity_backfill.last_error or None,
            )
            if response.HasField("activity_backfill")
            else None
        ),
    )


def _datetime(message: object, field: str) -> datetime | None:
    if not message.HasField(field):  # type: ignore[attr-defined]
        return None
    stamp: timestamp_pb2.Timestamp = getattr(message, field)
    return stamp.ToDatetime(tzinfo=UTC)


def _parse_json(text: str, what: str) -> JSON:
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError as e:
        raise InternalError(f"the server sent invalid JSON as the {what}: {e}") from e
