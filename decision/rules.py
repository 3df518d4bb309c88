"""Rules documents: validated in full, then compiled into an immutable ``Ruleset``.

A rules document is one JSON object. Every key below is checked: unknown keys are
rejected (a typo must not pass silently) and every problem is reported at once, each
with a JSON path such as ``campaigns[2].variants[0].weight``::

    {
      "segments": [                          # audiences, reusable by campaigns and filters
        {"id": "high_value_customers",       # required; ids are [A-Za-z0-9_.-]+, unique per list
         "name": "High-value customers",     # optional, default the id
         "description": "...",               # optional, default ""
         "filter": {"visits": {"$gte": 3}},  # required MongoDB filter; {} = everyone
         "notify": true}                     # optional, default false: record entering and
                                             # leaving it as segment changes
      ],
      "placements": [                        # the slots a storefront asks about
        {"id": "home_hero", "name": "Home hero",
         "fallback": {...}}                  # optional JSON served when no campaign applies; null
      ],
      "exclusion_groups": [                  # campaigns that never share a visitor
        {"id": "home_tests", "name": "...",
         "salt": "..."}                      # optional, default the id; changing it reshuffles
      ],
      "campaigns": [
        {"id": "summer_sale", "name": "...",
         "placements": ["home_hero"],        # required, non-empty, existing placements
         "status": "active",                 # "active" (default) or "paused"
         "schedule": {"start": "2026-06-01T00:00:00Z", "end": null},
                                             # optional; ISO-8601 with Z or an offset; null or
                                             # absent leaves that side open; start <= now < end
         "priority": 10,                     # integer, default 0; higher wins, ties by id
         "audience": {                       # optional; all parts optional
           "segments": ["returning_customers"],  # none: everyone
           "match": "any",                   # "any" (default) or "all" of the segments
           "exclude": ["cart_abandoners"],   # in none of these
           "filter": {"context.device": "mobile"}},  # over the profile and context.*
         "exclusion_group": "home_tests",    # optional
         "traffic_allocation": 50,           # percent 0-100, at most 2 decimals; default 100
         "holdout": 5,                       # percent 0-100, at most 2 decimals; default 0
         "salt": "...",                      # optional, default the id; changing it reshuffles
         "assignment": "stored",             # "stored" (default): a visitor keeps the arm
                                             # first served; "hashed": drawn every time
         "variants": [                       # required, non-empty
           {"id": "control", "weight": 1, "control": true},
           {"id": "b", "weight": 1, "content": {...}}]}
      ],
      "webhooks": [                          # where segment changes are POSTed
        {"id": "crm",                        # its signing secret is server configuration
         "url": "https://crm.example.com/hooks/decide",  # http(s), no credentials in it
         "segments": ["at_risk_customers"]}  # optional; notify segments (none: all of them)
      ]
    }

Every top-level list is optional (default empty). A variant's ``weight`` is a
non-negative integer, default 1; the weights of a campaign add up to more than 0. At
most one variant is the ``control``; a control may omit ``content`` and then serves
the requested placement's fallback. Every other variant needs ``content`` (any JSON,
null included). The traffic allocations of an exclusion group's campaigns add up to
at most 100. A top-level ``"$schema"`` string is allowed so editors can find
``decision/rules.schema.json``; it has no other meaning.

Filters are MongoDB query filters (``decision.filters``). A filter may use
``{"$segment": "<id>"}`` to reuse a segment; references must name existing segments
and must not form a cycle. The document a filter sees is the visitor's profile with
the request context under ``context``.

A document validates only if the engine can evaluate it. Evaluation recurses once per
level of a filter and per ``$segment`` reference, so references nest at most
``MAX_SEGMENT_REFERENCE_DEPTH`` deep and a filter, counted through the filters of the
segments it references (a referenced filter starts one level below its ``$segment``
clause), at most ``MAX_FILTER_DEPTH`` levels: about 150 Python frames at worst, well
inside any recursion limit. The segment (or campaign filter) where a chain first goes
over a limit is reported; those referring to it are not reported again.

Every number, string and list has a bound (the ``MAX_*`` constants below, one table in
the README's "Errors and limits"), each refused with the path of what goes over it. A
document holds only JSON values (string keys, no NaN or infinities, integers within
+-2**53) nested at most ``MAX_DOCUMENT_DEPTH`` deep; that is checked first, without
recursion, so that nothing deeper reaches ``json.dumps`` or ``copy.deepcopy``.

``version`` is the first 16 hex digits of the SHA-256 of the document serialized with
``json.dumps(document, separators=(",", ":"), ensure_ascii=False)``. Keys are not
sorted: key order is content (MongoDB equality on objects compares it).

How a compiled ruleset is resolved is described in ``decision.engine``; how visitors
are bucketed, and how they move when percentages or weights change, in
``decision.bucketing``.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import re
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

from decision import bucketing
from decision.errors import FilterError, Problem, RulesetError
from decision.filters import MAX_FILTER_DEPTH, Predicate, compile_filter
from decision.model import (
    BUCKETS,
    JSON,
    MAX_EXACT_INTEGER,
    Audience,
    Campaign,
    ExclusionGroup,
    Placement,
    Ruleset,
    Schedule,
    Segment,
    Variant,
    Webhook,
)
from decision.retention import NO_ACTIVITY

MAX_SEGMENT_REFERENCE_DEPTH = 32
"""Longest chain of ``$segment`` references (s2 refers to s1, which refers to s0: 2).
A chain of 32 refinements is past any audience a marketer builds; together with
``MAX_FILTER_DEPTH`` it bounds the stack evaluation needs."""

MAX_SEGMENTS = 10_000
"""Segments in a document: the engine is measured at this size (``bench/engine.py``:
decide() 1.1 times its time with 200 segments)."""

MAX_PLACEMENTS = 1_000
MAX_CAMPAIGNS = 1_000
MAX_EXCLUSION_GROUPS = 100
"""Placements, campaigns and exclusion groups in a document: ten times a large shop's."""

MAX_VARIANTS = 100
"""Variants of one campaign: an A/B/n test past a dozen arms never reaches significance."""

MAX_ID_LENGTH = 128
"""Longest id (segment, placement, exclusion group, campaign, variant): the longest
placement id a Decide request may name, ``server.limits.MAX_PLACEMENT_ID_LENGTH``."""

MAX_NAME_LENGTH = 256
"""Longest ``name``, ``salt`` and ``$schema``."""

MAX_DESCRIPTION_LENGTH = 4096
"""Longest segment ``description``."""

MAX_PRIORITY = 1_000_000
"""Largest magnitude of a campaign's ``priority``."""

MAX_WEIGHT = 1_000_000
"""Largest variant ``weight``: splits finer than one in a million have no use, and the
sum of a campaign's weights stays exact."""

MAX_PERCENT_DECIMALS = 2
"""Decimals of ``traffic_allocation`` and ``holdout``: 0.01 % is one bucket."""

MAX_CONTENT_BYTES = 64 * 1024
"""Largest variant ``content`` or placement ``fallback``, as compact UTF-8 JSON: a
Decide for the most placements a request may name (32) stays at 2 MiB, within gRPC's
default 4 MiB a client receives."""

MAX_CONTENT_DEPTH = 32
"""Deepest nesting of a ``content`` or ``fallback`` (the value itself is level 1): half of
the 64 levels some JSON readers stop at by default (.NET's System.Text.Json)."""

MAX_WEBHOOKS = 20
"""Webhook targets in a document: each has a delivery thread of its own."""

MAX_URL_LENGTH = 2048
"""Longest webhook ``url``: browsers' practical URL limit, as for event URLs."""

MAX_DOCUMENT_DEPTH = 160
"""Deepest nesting of objects and arrays in the whole document. Nothing valid comes
close (a filter at MAX_FILTER_DEPTH spans about 130), so this only stops a document
deeper than the serializers recurse."""

_LIST_BOUNDS = {
    "segments": MAX_SEGMENTS,
    "placements": MAX_PLACEMENTS,
    "exclusion_groups": MAX_EXCLUSION_GROUPS,
    "campaigns": MAX_CAMPAIGNS,
    "webhooks": MAX_WEBHOOKS,
}

_ID = re.compile(r"[A-Za-z0-9_.-]+")
_SURROGATE = re.compile("[\ud800-\udfff]")
_TOP_LEVEL = ("segments", "placements", "exclusion_groups", "campaigns", "webhooks")
_SEGMENT_KEYS = ({"id", "filter"}, {"name", "description", "notify"})
_PLACEMENT_KEYS = ({"id"}, {"name", "fallback"})
_GROUP_KEYS = ({"id"}, {"name", "salt"})
_CAMPAIGN_KEYS = (
    {"id", "placements", "variants"},
    {
        "name",
        "status",
        "schedule",
        "priority",
        "audience",
        "exclusion_group",
        "traffic_allocation",
        "holdout",
        "salt",
        "assignment",
    },
)
_SCHEDULE_KEYS: tuple[set[str], set[str]] = (set(), {"start", "end"})
_AUDIENCE_KEYS: tuple[set[str], set[str]] = (set(), {"segments", "match", "exclude", "filter"})
_VARIANT_KEYS = ({"id"}, {"weight", "control", "content"})
_WEBHOOK_KEYS = ({"id", "url"}, {"segments"})
_ASSIGNMENTS = ("stored", "hashed")


def compile_ruleset(document: Any) -> Ruleset:
    """Validate a rules document and compile it; raises ``RulesetError`` listing every
    problem. The input is never mutated; the result shares nothing mutable with it."""
    compiler = _Compiler()
    ruleset = compiler.compile(document)
    if compiler.problems or ruleset is None:
        raise RulesetError(compiler.problems)
    return ruleset


def validate_ruleset(document: Any) -> list[Problem]:
    """Every problem of a rules document, each with its path; empty when it is valid."""
    compiler = _Compiler()
    compiler.compile(document)
    return compiler.problems


def ruleset_version(document: Any) -> str:
    """The content hash of a rules document (first 16 hex digits of SHA-256)."""
    text = json.dumps(document, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _join(prefix: str, path: str) -> str:
    if not path:
        return prefix
    if not prefix or path.startswith("["):
        return prefix + path
    return f"{prefix}.{path}"


class _Compiler:
    """One validation pass. Collects problems instead of stopping at the first."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []
        # Ids declared with a valid id, per kind, even when the item has other
        # problems: references to them are not reported again as unknown.
        self.declared: dict[str, dict[str, str]] = {
            "segment": {},
            "placement": {},
            "exclusion group": {},
            "campaign": {},
            "webhook": {},
        }
        # Segment id -> (reference depth, filter depth counted through references).
        self.nesting: dict[str, tuple[int, int]] = {}

    def add(self, path: str, message: str) -> None:
        self.problems.append(Problem(path, message))

    # -- generic checks ------------------------------------------------------------

    def expect_object(
        self, value: Any, path: str, keys: tuple[set[str], set[str]]
    ) -> dict[str, Any] | None:
        """``value`` if it is a dict; reports missing required and unknown keys."""
        if not isinstance(value, dict):
            self.add(path, "must be an object")
            return None
        required, optional = keys
        for key in sorted(required - value.keys()):
            self.add(_join(path, key), "is required")
        allowed = required | optional
        for key in value:
            if key not in allowed:
                hint = ", ".join(sorted(allowed))
                self.add(_join(path, str(key)), f"unknown key (allowed: {hint})")
        return value

    def expect_list(self, value: Any, path: str, *, non_empty: bool = False) -> list[Any]:
        if not isinstance(value, list):
            self.add(path, "must be a list")
            return []
        if non_empty and not value:
            self.add(path, "must not be empty")
        return value

    def expect_string(
        self, value: Any, path: str, *, non_empty: bool = False, max_length: int = MAX_NAME_LENGTH
    ) -> str | None:
        if not isinstance(value, str):
            self.add(path, "must be a string")
            return None
        if non_empty and not value:
            self.add(path, "must not be empty")
            return None
        if len(value) > max_length:
            self.add(path, f"must be at most {max_length} characters, not {len(value)}")
            return None
        return value

    def identifier(self, value: Any, path: str) -> str | None:
        if not isinstance(value, str) or not _ID.fullmatch(value):
            self.add(path, "must be a non-empty string of letters, digits, '_', '.' or '-'")
            return None
        if len(value) > MAX_ID_LENGTH:
            self.add(path, f"must be at most {MAX_ID_LENGTH} characters, not {len(value)}")
            return None
        return value

    def plain_json(self, document: dict[str, Any]) -> bool:
        """Whether ``document`` holds only JSON values (string keys, valid Unicode)
        nested at most MAX_DOCUMENT_DEPTH deep; reports each other value at its path.
        Iterative, so any depth is safe here."""
        before = len(self.problems)
        stack: list[tuple[Any, str, int]] = [(document, "", 1)]
        while stack:
            value, path, depth = stack.pop()
            kind = type(value)
            if kind is dict or kind is list:
                if depth > MAX_DOCUMENT_DEPTH:
                    self.add(path, f"nests deeper than {MAX_DOCUMENT_DEPTH} levels")
                    continue
                children: list[tuple[Any, str, int]] = []
                if kind is list:
                    children = [(v, f"{path}[{i}]", depth + 1) for i, v in enumerate(value)]
                for key, item in value.items() if kind is dict else ():
                    if type(key) is not str:
                        self.add(path, f"keys must be strings, not {_shown(key)}")
                    elif _SURROGATE.search(key):
                        self.add(path, f"key {_shown(key)} is not valid Unicode")
                    else:
                        children.append((item, _join(path, key), depth + 1))
                stack.extend(reversed(children))  # document order
            elif kind is str:
                if _SURROGATE.search(value):
                    self.add(path, "is not valid Unicode (an unpaired surrogate)")
            elif value is not None and kind not in (bool, int, float):
                self.add(path, f"is not a JSON value ({kind.__name__})")
        return len(self.problems) == before

    def exact_numbers(self, value: Any, path: str, max_depth: int | None = None) -> bool:
        """Whether the JSON ``value`` holds only finite numbers and integers within
        +-MAX_EXACT_INTEGER (and, with ``max_depth``, nests at most that deep: ``value``
        is level 1); reports each other number at its path."""
        before = len(self.problems)
        stack: list[tuple[Any, str, int]] = [(value, path, 1)]
        while stack:
            item, here, depth = stack.pop()
            kind = type(item)
            if kind is dict or kind is list:
                if max_depth is not None and depth > max_depth:
                    self.add(here, f"nests deeper than {max_depth} levels")
                    continue
                pairs = item.items() if kind is dict else enumerate(item)
                stack.extend(
                    (child, _join(here, k) if kind is dict else f"{here}[{k}]", depth + 1)
                    for k, child in reversed(list(pairs))
                )
            elif kind is float and not math.isfinite(item):
                self.add(here, "must be a finite number")
            elif kind is int and not -MAX_EXACT_INTEGER <= item <= MAX_EXACT_INTEGER:
                bound = MAX_EXACT_INTEGER
                self.add(here, f"must be an integer from {-bound} to {bound}")
        return len(self.problems) == before

    def content(self, value: Any, path: str) -> None:
        """A variant's content or a placement's fallback: any JSON within the bounds."""
        if not self.exact_numbers(value, path, MAX_CONTENT_DEPTH):
            return
        size = len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())
        if size > MAX_CONTENT_BYTES:
            self.add(path, f"is {size} bytes as JSON; at most {MAX_CONTENT_BYTES}")

    def unique_id(self, obj: dict[str, Any], path: str, kind: str) -> str | None:
        """The item's id if valid and not used before in its list. A missing id is
        already reported as required."""
        if "id" not in obj:
            return None
        identifier = self.identifier(obj["id"], path)
        if identifier is None:
            return None
        seen = self.declared[kind]
        if identifier in seen:
            self.add(path, f"duplicate {kind} id {identifier!r} (first at {seen[identifier]})")
            return None
        seen[identifier] = path
        return identifier

    def id_list(
        self, value: Any, path: str, kind: str, *, non_empty: bool = False
    ) -> tuple[str, ...]:
        """A list of distinct ids, each naming a declared ``kind``."""
        ids: list[str] = []
        known = self.declared[kind]
        for index, item in enumerate(self.expect_list(value, path, non_empty=non_empty)):
            item_path = f"{path}[{index}]"
            if not isinstance(item, str) or not item:
                self.add(item_path, f"must be a {kind} id")
            elif item not in known:
                self.add(item_path, f"unknown {kind} {_shown(item)}")
            elif item in ids:
                self.add(item_path, f"duplicate {kind} {_shown(item)}")
            else:
                ids.append(item)
        return tuple(ids)

    def percent(self, value: Any, path: str, default: int) -> int:
        """A percentage 0-100 with at most two decimals, in buckets (basis points)."""
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.add(path, "must be a number from 0 to 100")
            return default
        if not 0 <= value <= 100:  # also NaN; a huge int compares exactly (no float())
            self.add(path, f"must be from 0 to 100, not {_shown(value)}")
            return default
        exact = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
        exponent = exact.as_tuple().exponent
        if isinstance(exponent, int) and exponent < -MAX_PERCENT_DECIMALS:
            self.add(
                path,
                f"allows at most {MAX_PERCENT_DECIMALS} decimals (0.01 % steps), "
                f"not {_shown(value)}",
            )
            return default
        return bucketing.percent_to_buckets(value)

    def instant(self, value: Any, path: str) -> datetime | None:
        """An ISO-8601 timestamp with a UTC offset or ``Z``, in UTC; ``None`` stays open."""
        if value is None:
            return None
        if not isinstance(value, str):
            self.add(path, "must be an ISO-8601 timestamp string or null")
            return None
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            self.add(path, f"is not an ISO-8601 timestamp: {_shown(value)}")
            return None
        if parsed.tzinfo is None or parsed.utcoffset() is None:
            self.add(path, f"needs a UTC offset or 'Z': {_shown(value)}")
            return None
        return parsed.astimezone(UTC)

    def expect_filter(self, spec: Any, path: str) -> Predicate | None:
        if not isinstance(spec, dict):
            self.add(path, "must be an object (a MongoDB filter)")
            return None
        if not self.exact_numbers(spec, path):
            return None
        try:
            return compile_filter(spec)
        except FilterError as error:
            self.add(_join(path, error.path), error.message)
            return None

    # -- the document --------------------------------------------------------------

    def compile(self, document: Any) -> Ruleset | None:
        if not isinstance(document, dict):
            self.add("", "the rules document must be a JSON object")
            return None
        if not self.plain_json(document):
            return None
        try:
            version = ruleset_version(document)
        except (TypeError, ValueError) as error:
            self.add("", f"the rules document is not JSON: {error}")
            return None
        # Compile from a private copy: the ruleset must not change when the caller
        # later mutates its document, and content values are shared with decisions.
        document = copy.deepcopy(document)
        top = self.expect_object(document, "", (set(), {"$schema", *_TOP_LEVEL}))
        assert top is not None
        if "$schema" in top:
            self.expect_string(top["$schema"], "$schema")
        lists = {key: self.expect_list(top.get(key, []), key) for key in _TOP_LEVEL}
        for key, bound in _LIST_BOUNDS.items():
            if len(lists[key]) > bound:
                self.add(key, f"has {len(lists[key])} items; at most {bound}")

        segments = self.segments(lists["segments"])
        placements = self.placements(lists["placements"])
        groups = self.groups(lists["exclusion_groups"])
        campaigns = self.campaigns(lists["campaigns"], groups)
        compiled_groups = self.group_slots(groups, campaigns)
        webhooks = self.webhooks(lists["webhooks"], segments)
        if self.problems:
            return None
        return _build(version, document, segments, placements, compiled_groups, campaigns, webhooks)

    def segments(self, items: list[Any]) -> dict[str, Segment]:
        segments: dict[str, Segment] = {}
        paths: dict[str, str] = {}
        for index, item in enumerate(items):
            path = f"segments[{index}]"
            obj = self.expect_object(item, path, _SEGMENT_KEYS)
            if obj is None:
                continue
            segment_id = self.unique_id(obj, f"{path}.id", "segment")
            name = self.expect_string(obj.get("name", segment_id or ""), f"{path}.name")
            description = self.expect_string(
                obj.get("description", ""),
                f"{path}.description",
                max_length=MAX_DESCRIPTION_LENGTH,
            )
            predicate = (
                self.expect_filter(obj.get("filter"), f"{path}.filter") if "filter" in obj else None
            )
            notify = obj.get("notify", False)
            if not isinstance(notify, bool):
                self.add(f"{path}.notify", f"must be true or false, not {_shown(notify)}")
                notify = True  # reported here; webhooks naming it are not reported again
            if segment_id and predicate is not None and name is not None:
                segments[segment_id] = Segment(
                    segment_id, name, description or "", predicate, notify
                )
                paths[segment_id] = f"{path}.filter"
        for segment_id, segment in segments.items():
            self.references(segment.filter, paths[segment_id])
        self.cycles(segments, paths)
        self.depths(segments, paths)
        return segments

    def references(self, predicate: Predicate, path: str) -> None:
        known = self.declared["segment"]
        for ref in sorted(predicate.references):
            if ref not in known:
                self.add(path, f"$segment references unknown segment {_shown(ref)}")

    def cycles(self, segments: Mapping[str, Segment], paths: Mapping[str, str]) -> None:
        """Reports each ``$segment`` reference cycle once, at its first segment."""
        done: set[str] = set()
        for root in segments:
            if root in done:
                continue
            # Iterative depth-first search; ``stack`` is the current reference chain.
            stack: list[tuple[str, list[str]]] = [(root, _refs(segments, root))]
            on_stack = {root}
            while stack:
                node, pending = stack[-1]
                if not pending:
                    stack.pop()
                    on_stack.discard(node)
                    done.add(node)
                    continue
                child = pending.pop(0)
                if child in on_stack:
                    chain = [n for n, _ in stack]
                    cycle = chain[chain.index(child) :] + [child]
                    self.add(paths[child], "reference cycle " + " -> ".join(cycle))
                elif child not in done:
                    stack.append((child, _refs(segments, child)))
                    on_stack.add(child)

    def depths(self, segments: Mapping[str, Segment], paths: Mapping[str, str]) -> None:
        """Fills ``nesting`` for every segment, referenced segments first (an iterative
        depth-first walk: a chain may be thousands long); references closing a cycle
        are left out (the cycle is reported already)."""
        entered: set[str] = set()
        for root in segments:
            if root in entered:
                continue
            entered.add(root)
            stack = [(root, iter(_refs(segments, root)))]
            while stack:
                node, children = stack[-1]
                child = next((c for c in children if c not in entered), None)
                if child is not None:
                    entered.add(child)
                    stack.append((child, iter(_refs(segments, child))))
                    continue
                stack.pop()
                self.nesting[node] = self.limit_nesting(segments[node].filter, paths[node])

    def limit_nesting(self, predicate: Predicate, path: str) -> tuple[int, int]:
        """``(reference depth, filter depth through references)`` of a filter whose
        referenced segments are in ``nesting``; reports a limit it is the first to pass."""
        references, levels = 0, predicate.depth
        inherited = False  # a referenced segment is over a limit: reported there
        for ref, level in predicate.reference_depths.items():
            found = self.nesting.get(ref)
            if found is None:  # unknown, or closing a cycle: reported elsewhere
                continue
            references = max(references, found[0] + 1)
            levels = max(levels, level + 1 + found[1])
            inherited |= found[0] > MAX_SEGMENT_REFERENCE_DEPTH or found[1] > MAX_FILTER_DEPTH
        if not inherited and references > MAX_SEGMENT_REFERENCE_DEPTH:
            self.add(
                path,
                f"$segment references nest {references} deep; "
                f"at most {MAX_SEGMENT_REFERENCE_DEPTH}",
            )
        if not inherited and levels > MAX_FILTER_DEPTH:
            self.add(
                path,
                f"nests {levels} levels deep counting the segments it references; "
                f"at most {MAX_FILTER_DEPTH}",
            )
        return references, levels

    def placements(self, items: list[Any]) -> dict[str, Placement]:
        placements: dict[str, Placement] = {}
        for index, item in enumerate(items):
            path = f"placements[{index}]"
            obj = self.expect_object(item, path, _PLACEMENT_KEYS)
            if obj is None:
                continue
            placement_id = self.unique_id(obj, f"{path}.id", "placement")
            name = self.expect_string(obj.get("name", placement_id or ""), f"{path}.name")
            if "fallback" in obj:
                self.content(obj["fallback"], f"{path}.fallback")
            if placement_id and name is not None:
                placements[placement_id] = Placement(placement_id, name, obj.get("fallback"))
        return placements

    def groups(self, items: list[Any]) -> dict[str, ExclusionGroup]:
        groups: dict[str, ExclusionGroup] = {}
        for index, item in enumerate(items):
            path = f"exclusion_groups[{index}]"
            obj = self.expect_object(item, path, _GROUP_KEYS)
            if obj is None:
                continue
            group_id = self.unique_id(obj, f"{path}.id", "exclusion group")
            name = self.expect_string(obj.get("name", group_id or ""), f"{path}.name")
            salt = group_id
            if "salt" in obj:
                salt = self.expect_string(obj["salt"], f"{path}.salt", non_empty=True)
            if group_id and name is not None and salt:
                groups[group_id] = ExclusionGroup(group_id, name, salt, ())
        return groups

    def campaigns(
        self, items: list[Any], groups: Mapping[str, ExclusionGroup]
    ) -> dict[str, Campaign]:
        campaigns: dict[str, Campaign] = {}
        for index, item in enumerate(items):
            path = f"campaigns[{index}]"
            obj = self.expect_object(item, path, _CAMPAIGN_KEYS)
            if obj is None:
                continue
            before = len(self.problems)
            campaign_id = self.unique_id(obj, f"{path}.id", "campaign")
            campaign = self.campaign(obj, path, campaign_id or "", groups)
            if campaign_id and len(self.problems) == before:
                campaigns[campaign_id] = campaign
        return campaigns

    def campaign(
        self, obj: dict[str, Any], path: str, campaign_id: str, groups: Mapping[str, ExclusionGroup]
    ) -> Campaign:
        name = self.expect_string(obj.get("name", campaign_id), f"{path}.name") or ""
        placement_ids = self.id_list(
            obj.get("placements", []),
            f"{path}.placements",
            "placement",
            non_empty="placements" in obj,
        )

        status = obj.get("status", "active")
        if status not in ("active", "paused"):
            self.add(f"{path}.status", f"must be 'active' or 'paused', not {_shown(status)}")

        schedule = self.schedule(obj.get("schedule", {}), f"{path}.schedule")

        priority = obj.get("priority", 0)
        if isinstance(priority, bool) or not isinstance(priority, int):
            self.add(f"{path}.priority", f"must be an integer, not {_shown(priority)}")
            priority = 0
        elif not -MAX_PRIORITY <= priority <= MAX_PRIORITY:
            self.add(
                f"{path}.priority",
                f"must be from {-MAX_PRIORITY} to {MAX_PRIORITY}, not {_shown(priority)}",
            )
            priority = 0

        audience = self.audience(obj.get("audience", {}), f"{path}.audience")

        group_id = None
        if "exclusion_group" in obj:
            value = obj["exclusion_group"]
            if not isinstance(value, str) or not value:
                self.add(f"{path}.exclusion_group", "must be an exclusion group id")
            elif value not in self.declared["exclusion group"]:
                self.add(f"{path}.exclusion_group", f"unknown exclusion group {_shown(value)}")
            else:
                group_id = value

        traffic = BUCKETS
        if "traffic_allocation" in obj:
            traffic = self.percent(obj["traffic_allocation"], f"{path}.traffic_allocation", BUCKETS)
        holdout = 0
        if "holdout" in obj:
            holdout = self.percent(obj["holdout"], f"{path}.holdout", 0)

        salt = campaign_id
        if "salt" in obj:
            salt = self.expect_string(obj["salt"], f"{path}.salt", non_empty=True) or campaign_id

        assignment = obj.get("assignment", "stored")
        if assignment not in _ASSIGNMENTS:
            self.add(
                f"{path}.assignment", f"must be 'stored' or 'hashed', not {_shown(assignment)}"
            )

        variants, bounds = self.variants(obj.get("variants"), f"{path}.variants", "variants" in obj)

        group_prefix = ""
        if group_id is not None and group_id in groups:
            group_prefix = bucketing.group_seed(groups[group_id].salt) + ":"
        return Campaign(
            id=campaign_id,
            name=name,
            placements=placement_ids,
            active=status == "active",
            schedule=schedule,
            priority=priority,
            audience=audience,
            variants=variants,
            variant_bounds=bounds,
            traffic=traffic,
            holdout=holdout,
            exclusion_group=group_id,
            salt=salt,
            group_prefix=group_prefix,
            traffic_prefix=bucketing.traffic_seed(salt) + ":",
            holdout_prefix=bucketing.holdout_seed(salt) + ":",
            variant_prefix=bucketing.variant_seed(salt) + ":",
            keeps_assignment=assignment != "hashed",
        )

    def webhooks(self, items: list[Any], segments: Mapping[str, Segment]) -> dict[str, Webhook]:
        webhooks: dict[str, Webhook] = {}
        notified = tuple(s.id for s in segments.values() if s.notify)
        for index, item in enumerate(items):
            path = f"webhooks[{index}]"
            obj = self.expect_object(item, path, _WEBHOOK_KEYS)
            if obj is None:
                continue
            before = len(self.problems)
            webhook_id = self.unique_id(obj, f"{path}.id", "webhook")
            url = self.url(obj.get("url"), f"{path}.url") if "url" in obj else None
            chosen = notified
            if "segments" in obj:
                chosen = self.id_list(obj["segments"], f"{path}.segments", "segment")
                for position, segment_id in enumerate(chosen):
                    segment = segments.get(segment_id)
                    if segment is not None and not segment.notify:
                        self.add(
                            f"{path}.segments[{position}]",
                            f'segment {segment_id!r} is not marked "notify": true',
                        )
            if webhook_id and url is not None and len(self.problems) == before:
                webhooks[webhook_id] = Webhook(webhook_id, url, chosen)
        return webhooks

    def url(self, value: Any, path: str) -> str | None:
        """A webhook's target: an absolute http(s) URL without credentials or fragment."""
        text = self.expect_string(value, path, non_empty=True, max_length=MAX_URL_LENGTH)
        if text is None:
            return None
        try:
            parts = urlsplit(text)
            port = parts.port
        except ValueError as error:
            self.add(path, f"is not a URL: {error}")
            return None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            self.add(path, f"must be an http:// or https:// URL with a host, not {_shown(text)}")
        elif parts.username is not None or parts.password is not None:
            self.add(path, "must not hold credentials: the signing secret is server configuration")
        elif parts.fragment or any(c.isspace() for c in text):
            self.add(path, "must have no fragment and no whitespace")
        elif port == 0:
            self.add(path, "must not name port 0")
        else:
            return text
        return None

    def schedule(self, value: Any, path: str) -> Schedule:
        obj = self.expect_object(value, path, _SCHEDULE_KEYS)
        if obj is None:
            return Schedule()
        start = self.instant(obj.get("start"), f"{path}.start")
        end = self.instant(obj.get("end"), f"{path}.end")
        if start is not None and end is not None and start >= end:
            self.add(path, f"start {obj['start']} must be before end {obj['end']}")
        return Schedule(start, end)

    def audience(self, value: Any, path: str) -> Audience:
        obj = self.expect_object(value, path, _AUDIENCE_KEYS)
        if obj is None:
            return Audience()
        include = self.id_list(obj.get("segments", []), f"{path}.segments", "segment")
        exclude = self.id_list(obj.get("exclude", []), f"{path}.exclude", "segment")
        match = obj.get("match", "any")
        if match not in ("any", "all"):
            self.add(f"{path}.match", f"must be 'any' or 'all', not {_shown(match)}")
            match = "any"
        predicate = None
        if "filter" in obj:
            predicate = self.expect_filter(obj["filter"], f"{path}.filter")
            if predicate is not None:
                self.references(predicate, f"{path}.filter")
                self.limit_nesting(predicate, f"{path}.filter")
        return Audience(include, match, exclude, predicate)

    def variants(
        self, value: Any, path: str, present: bool
    ) -> tuple[tuple[Variant, ...], tuple[int, ...]]:
        if not present:
            return (), ()
        items = self.expect_list(value, path, non_empty=True)
        if len(items) > MAX_VARIANTS:
            self.add(path, f"has {len(items)} variants; at most {MAX_VARIANTS}")
        self.declared["variant"] = {}  # variant ids are unique per campaign
        variants: list[Variant] = []
        weights: list[int] = []
        control_at: str | None = None
        weights_valid = True
        for index, item in enumerate(items):
            item_path = f"{path}[{index}]"
            obj = self.expect_object(item, item_path, _VARIANT_KEYS)
            if obj is None:
                continue
            variant_id = self.unique_id(obj, f"{item_path}.id", "variant")
            weight = obj.get("weight", 1)
            if isinstance(weight, bool) or not isinstance(weight, int) or weight < 0:
                self.add(
                    f"{item_path}.weight", f"must be a non-negative integer, not {_shown(weight)}"
                )
                weight = 0
                weights_valid = False
            elif weight > MAX_WEIGHT:
                self.add(
                    f"{item_path}.weight", f"must be at most {MAX_WEIGHT}, not {_shown(weight)}"
                )
                weight = 0
                weights_valid = False
            control = obj.get("control", False)
            if not isinstance(control, bool):
                self.add(f"{item_path}.control", "must be true or false")
                control = False
            if control:
                if control_at is not None:
                    self.add(
                        f"{item_path}.control", f"only one control variant (also {control_at})"
                    )
                control_at = item_path
            if "content" not in obj and not control:
                self.add(f"{item_path}.content", "is required (only a control may omit it)")
            elif "content" in obj:
                self.content(obj["content"], f"{item_path}.content")
            weights.append(weight)
            variants.append(
                Variant(
                    id=variant_id or "",
                    weight=weight,
                    content=obj.get("content"),
                    control=control,
                    uses_fallback="content" not in obj,
                )
            )
        if sum(weights) <= 0:
            if items and weights_valid and len(weights) == len(items):
                self.add(path, "variant weights must add up to more than 0")
            return tuple(variants), ()
        return tuple(variants), bucketing.variant_bounds(weights)

    def group_slots(
        self, groups: Mapping[str, ExclusionGroup], campaigns: dict[str, Campaign]
    ) -> dict[str, ExclusionGroup]:
        """Gives each grouped campaign its slot range; the group's members in order."""
        compiled: dict[str, ExclusionGroup] = {}
        for group in groups.values():
            members = [c for c in campaigns.values() if c.exclusion_group == group.id]
            total = sum(c.traffic for c in members)
            if total > BUCKETS:
                shares = ", ".join(f"{c.id} {_percent(c.traffic)}" for c in members)
                self.add(
                    self.declared["exclusion group"][group.id].removesuffix(".id"),
                    f"traffic allocations of its campaigns add up to {_percent(total)}"
                    f" ({shares}); at most 100% fits",
                )
                continue
            low = 0
            for member in members:
                campaigns[member.id] = replace(member, group_slots=(low, low + member.traffic))
                low += member.traffic
            compiled[group.id] = ExclusionGroup(
                group.id, group.name, group.salt, tuple(c.id for c in members)
            )
        return compiled


def _refs(segments: Mapping[str, Segment], segment_id: str) -> list[str]:
    return [r for r in sorted(segments[segment_id].filter.references) if r in segments]


def _percent(buckets: int) -> str:
    return f"{buckets / 100:g}%"


def _shown(value: Any) -> str:
    """``repr(value)`` for a message, cut to 80 characters: a problem echoes what it
    refuses, never a megabyte of it."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _build(
    version: str,
    document: dict[str, JSON],
    segments: dict[str, Segment],
    placements: dict[str, Placement],
    groups: dict[str, ExclusionGroup],
    campaigns: dict[str, Campaign],
    webhooks: dict[str, Webhook],
) -> Ruleset:
    candidates = {
        placement_id: tuple(
            sorted(
                (c for c in campaigns.values() if placement_id in c.placements),
                key=lambda c: (-c.priority, c.id),
            )
        )
        for placement_id in placements
    }
    profile_segments = _profile_only({k: s.filter for k, s in segments.items()})
    activity = NO_ACTIVITY
    for predicate in [s.filter for s in segments.values()] + [
        c.audience.filter for c in campaigns.values() if c.audience.filter is not None
    ]:
        activity = activity.merge(predicate.activity)
    return Ruleset(
        version=version,
        document=MappingProxyType(document),
        segments=MappingProxyType(segments),
        placements=MappingProxyType(placements),
        campaigns=MappingProxyType(campaigns),
        exclusion_groups=MappingProxyType(groups),
        candidates=MappingProxyType(candidates),
        segment_filters=MappingProxyType({k: s.filter for k, s in segments.items()}),
        profile_segments=profile_segments,
        profile_audiences=frozenset(
            c.id for c in campaigns.values() if _profile_only_audience(c.audience, profile_segments)
        ),
        activity=activity,
        notify_segments=tuple(s.id for s in segments.values() if s.notify),
        webhooks=MappingProxyType(webhooks),
    )


def _reads_request(predicate: Predicate) -> bool:
    """Whether the filter itself reads more than the profile: the request context, a
    relative date, or fields it does not know."""
    return predicate.uses_now or predicate.fields is None or "context" in predicate.fields


def _profile_only(filters: Mapping[str, Predicate]) -> frozenset[str]:
    """The segments whose result depends on the profile alone: they read no ``context``
    field and no relative date, and reference only such segments."""
    referrers: dict[str, list[str]] = {}
    for segment_id, predicate in filters.items():
        for referenced in predicate.references:
            referrers.setdefault(referenced, []).append(segment_id)
    unfit = [segment_id for segment_id, predicate in filters.items() if _reads_request(predicate)]
    # Whatever refers to an unfit segment, directly or not, is unfit too.
    excluded = set(unfit)
    while unfit:
        for referrer in referrers.get(unfit.pop(), ()):
            if referrer not in excluded:
                excluded.add(referrer)
                unfit.append(referrer)
    return frozenset(filters.keys() - excluded)


def _profile_only_audience(audience: Audience, profile_segments: frozenset[str]) -> bool:
    """Whether whom ``audience`` admits depends on the profile alone."""
    inline = audience.filter
    return (
        profile_segments.issuperset(audience.segments)
        and profile_segments.issuperset(audience.exclude)
        and (
            inline is None
            or (not _reads_request(inline) and profile_segments.issuperset(inline.references))
        )
    )
