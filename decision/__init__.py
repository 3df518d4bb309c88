"""The pure decision engine: segment filters, rules compilation and campaign resolution.

Nothing here performs I/O, reads the clock or the environment: time, the ruleset and the
visitor's profile are arguments.
"""

from decision.bucketing import bucket
from decision.defaults import default_document, demo_document
from decision.engine import ProfileMemo, decide, decide_trusted, visitor_segments
from decision.errors import (
    DecisionError,
    FilterError,
    InvalidRequestError,
    Problem,
    RulesetError,
)
from decision.filters import EvalContext, Predicate, compile_filter
from decision.model import (
    BUCKETS,
    HOLDOUT_ARM,
    Assignment,
    Audience,
    Campaign,
    Decision,
    ExclusionGroup,
    Outcome,
    Placement,
    Reason,
    Ruleset,
    Schedule,
    Segment,
    TraceEntry,
    Variant,
    Webhook,
)
from decision.profile import EVENT_TYPES, Event, validate_events
from decision.retention import NO_ACTIVITY, ActivityNeeds
from decision.rules import compile_ruleset, validate_ruleset

__all__ = [
    "BUCKETS",
    "HOLDOUT_ARM",
    "NO_ACTIVITY",
    "ActivityNeeds",
    "Assignment",
    "Audience",
    "Campaign",
    "EVENT_TYPES",
    "Decision",
    "DecisionError",
    "EvalContext",
    "Event",
    "ExclusionGroup",
    "FilterError",
    "InvalidRequestError",
    "Outcome",
    "Placement",
    "Predicate",
    "Problem",
    "ProfileMemo",
    "Reason",
    "Ruleset",
    "RulesetError",
    "Schedule",
    "Segment",
    "TraceEntry",
    "Variant",
    "Webhook",
    "bucket",
    "compile_filter",
    "compile_ruleset",
    "decide",
    "decide_trusted",
    "default_document",
    "demo_document",
    "validate_events",
    "validate_ruleset",
    "visitor_segments",
]
