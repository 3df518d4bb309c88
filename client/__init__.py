"""Python client for the decide service: plain typed values in and out, fail-open decide.

with DecisionClient("127.0.0.1:50051", fallbacks={"home_hero": {"title": "Welcome"}}) as c:
    result = c.decide("visitor-42", ["home_hero"], {"device": "mobile"})
    render(result["home_hero"].content)
"""

from client._activation import (
    BatchHeader,
    BatchRow,
    BatchSummary,
    SegmentChange,
    SegmentChanges,
    WebhookDelivery,
)
from client._aio import AsyncDecisionClient
from client._config import (
    DEFAULT_ADMIN_TIMEOUT,
    DEFAULT_DECIDE_TIMEOUT,
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_TRACK_TIMEOUT,
)
from client._sync import DecisionClient
from client.errors import (
    BatchRejected,
    DecideError,
    FailedPrecondition,
    InternalError,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unauthenticated,
    Unavailable,
)
from client.types import (
    CLIENT_FALLBACK,
    ActivityBackfill,
    CandidateTrace,
    DecideResult,
    Decision,
    RuleProblem,
    RulesDocument,
    RulesVersion,
    SegmentEstimate,
    SegmentOverlap,
    ServerStatus,
    TrackEvent,
    TrackResult,
    ValidationResult,
    VersionList,
    VisitorSegments,
)

__all__ = [
    "CLIENT_FALLBACK",
    "DEFAULT_ADMIN_TIMEOUT",
    "DEFAULT_DECIDE_TIMEOUT",
    "DEFAULT_MAX_ATTEMPTS",
    "DEFAULT_TRACK_TIMEOUT",
    "ActivityBackfill",
    "AsyncDecisionClient",
    "BatchHeader",
    "BatchRejected",
    "BatchRow",
    "BatchSummary",
    "CandidateTrace",
    "DecideError",
    "DecideResult",
    "Decision",
    "DecisionClient",
    "FailedPrecondition",
    "InternalError",
    "InvalidArgument",
    "NotFound",
    "PermissionDenied",
    "RuleProblem",
    "RulesDocument",
    "RulesVersion",
    "SegmentChange",
    "SegmentChanges",
    "SegmentEstimate",
    "SegmentOverlap",
    "ServerStatus",
    "TrackEvent",
    "TrackResult",
    "Unauthenticated",
    "Unavailable",
    "ValidationResult",
    "VersionList",
    "VisitorSegments",
    "WebhookDelivery",
]
