"""MongoDB query filters, compiled once into closures and evaluated many times.

CONTRACT (kept by the implementation below; other modules rely on it):

- ``compile_filter(spec) -> Predicate`` validates the whole spec, raising ``FilterError``
  with ``.path`` naming the offending place.
- ``Predicate(doc, now=None, *, segments=None) -> bool`` evaluates one document.
  ``now`` is an aware UTC ``datetime``; a predicate with ``uses_now`` raises ValueError
  without it. ``segments`` maps segment ids to Predicates, needed when ``references``
  is non-empty. ``fields`` are the top-level fields of ``doc`` it reads (its own
  clauses, not those of referenced segments): its result depends on nothing else.
- ``Predicate.evaluate(ctx)`` evaluates ``ctx.root`` inside a per-call ``EvalContext``,
  which memoizes segment results so each segment is evaluated at most once per call.

SEMANTICS: MongoDB's (9.0) find() filters are the contract: a filter matches the same
documents here as in MongoDB. Supported: implicit equality, ``$eq $ne $gt $gte $lt $lte
$in $nin $exists $regex/$options $not $and $or $nor $elemMatch $size $all $type $mod``
and ``$comment``; dotted paths through objects and arrays, numeric parts as array
positions. Type bracketing, null/missing and array rules follow MongoDB; ``_bson``
holds the type order and comparison, ``_regex`` the PCRE-to-RE2 translation. Anything
MongoDB would reject, and anything we do not support, is a ``FilterError`` at compile
time; evaluation never raises on document data.

EXTENSIONS (ours, not MongoDB's):

- Date operands. ``{"$daysAgo": N}`` and ``{"$hoursAgo": N}`` (N a number >= 0) stand
  for ``now - N days/hours``; ``{"$date": "2026-11-09T10:00:00Z"}`` (MongoDB Extended
  JSON, also epoch milliseconds) and a ``datetime`` in the spec are fixed dates. They
  are allowed as the operand of ``$eq $ne $gt $gte $lt $lte``, e.g. ``{"last_seen":
  {"$gte": {"$daysAgo": 30}}}`` ("seen within the last 30 days"). Against a date
  operand, document values that are ``datetime`` objects or ISO-8601 strings
  (``"2026-11-09"`` is midnight UTC; a time without offset is UTC) compare
  chronologically; any other value, including a non-ISO string, never matches. A spec
  with a relative date has ``uses_now``; ``now`` is always passed in, never read.
- Segment references. ``{"$segment": "<id>"}`` is a clause (at the top level or in
  ``$and/$or/$nor``, not inside ``$elemMatch``) that is true when the document is in that
  segment, evaluated once per call through ``EvalContext.segment``. ``references``
  lists the ids; the ruleset compiler checks they exist and form no cycle.
- Activity. ``{"$activity": {...}}`` counts or sums the visitor's events in a time or
  calendar window, ``{"$sequence": {...}}`` asks for one event followed (or not) by
  another; clauses placed like ``$segment``, compiled by ``decision.activity``, which
  defines them. They read the document's ``activity`` field; ``activity`` on the
  Predicate declares what of the visitor's events they need kept
  (``decision.retention.ActivityNeeds``).

LIMITS: a filter nests at most ``MAX_FILTER_DEPTH`` levels (each object or array of
clauses and operands is one; a dotted path counts one per part beyond the first, as the
document it walks nests), so that compiling and evaluating it needs a bounded stack:
about two Python frames per level. ``depth`` and ``reference_depths`` of a Predicate let
the ruleset compiler extend that bound through ``$segment`` references. Arrays of
``$in``, ``$nin`` and ``$all`` hold at most ``MAX_ARRAY_OPERAND`` values, a ``$regex``
at most ``MAX_REGEX_LENGTH`` characters.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from decision import _bson
from decision._bson import MISSING
from decision._regex import RegexError, compile_regex
from decision.activity import CLAUSES, compile_clause
from decision.errors import FilterError
from decision.retention import NO_ACTIVITY, ActivityNeeds

Matcher = Callable[[Any, "EvalContext"], bool]
"""A compiled filter node: ``matcher(document, ctx) -> bool``."""


class EvalContext:
    """State of one evaluation call: the root document, ``now`` and segment results."""

    __slots__ = ("memo", "now", "root", "segments")

    def __init__(
        self,
        root: Any,
        now: datetime | None = None,
        segments: Mapping[str, Predicate] | None = None,
    ) -> None:
        self.root = root
        self.now = now
        self.segments = segments
        self.memo: dict[str, bool] = {}

    def segment(self, segment_id: str) -> bool:
        """Whether the root document is in ``segment_id``; evaluated at most once."""
        memo = self.memo
        result = memo.get(segment_id)
        if result is None:
            if self.segments is None or segment_id not in self.segments:
                raise ValueError(f"segment {segment_id!r} is not defined for this evaluation")
            predicate = self.segments[segment_id]
            result = memo[segment_id] = predicate._match(self.root, self)
        return result


class Predicate:
    """A compiled filter. Call it with a document; it never raises on document data."""

    __slots__ = (
        "__call__",
        "_match",
        "activity",
        "depth",
        "fields",
        "reference_depths",
        "references",
        "spec",
        "uses_now",
    )

    if TYPE_CHECKING:

        def __call__(
            self,
            doc: Any,
            now: datetime | None = None,
            *,
            segments: Mapping[str, Predicate] | None = None,
        ) -> bool: ...

    def __init__(
        self,
        spec: Any,
        match: Matcher,
        references: frozenset[str],
        uses_now: bool,
        fields: frozenset[str] | None = None,
        depth: int = 0,
        reference_depths: Mapping[str, int] | None = None,
        activity: ActivityNeeds = NO_ACTIVITY,
    ) -> None:
        self.spec = spec
        self._match = match
        self.references = references
        self.uses_now = uses_now
        # What its activity clauses read of the visitor's events (not counting those of
        # referenced segments): the profile keeps that much (decision.retention).
        self.activity = activity
        # The top-level fields of the document the filter reads, not counting those of
        # referenced segments; None: unknown (treat as any field).
        self.fields = fields
        # The deepest level of its own clauses (the filter object is level 0), and per
        # referenced segment the level of the deepest object holding a $segment clause
        # naming it: that segment's filter evaluates one level further down.
        self.depth = depth
        self.reference_depths: Mapping[str, int] = (
            dict.fromkeys(references, 0) if reference_depths is None else reference_depths
        )
        # Calling an object runs its class's __call__, one Python frame before the
        # matcher's own: a third of the cost of a simple filter. The instance's
        # __call__ slot lets a filter that never reads its context (no relative dates,
        # no segments) be called straight into its matcher instead: the generated one
        # takes the call's arguments itself; a closure gets a thin entry function.
        entry: Callable[..., bool]
        if references or uses_now:
            entry = self._call_with_context
        elif getattr(match, "takes_call_arguments", False):
            entry = match
        else:
            entry = _plain_entry(match)
        self.__call__ = entry  # type: ignore[method-assign,assignment]

    def _call_with_context(
        self,
        doc: Any,
        now: datetime | None = None,
        *,
        segments: Mapping[str, Predicate] | None = None,
    ) -> bool:
        if now is None and self.uses_now:
            raise ValueError("this filter compares relative dates; pass now=")
        if self.references and segments is None:
            raise ValueError(
                f"this filter references segments {sorted(self.references)}; pass segments="
            )
        return self._match(doc, EvalContext(doc, now, segments))

    def evaluate(self, ctx: EvalContext) -> bool:
        """Evaluate ``ctx.root`` within an existing per-call context."""
        return self._match(ctx.root, ctx)

    def __repr__(self) -> str:
        return f"Predicate({self.spec!r})"


_PLAIN_CONTEXT = EvalContext(None)
"""Passed to matchers of filters that never read their context (see ``Predicate``)."""


def _plain_entry(match: Matcher) -> Callable[..., bool]:
    def call(
        doc: Any,
        now: datetime | None = None,
        *,
        segments: Mapping[str, Predicate] | None = None,
    ) -> bool:
        return match(doc, _PLAIN_CONTEXT)

    return call


def compile_filter(spec: Any) -> Predicate:
    """Validate ``spec`` and compile it into a Predicate."""
    compiler = _Compiler()
    match = compiler.finish(compiler.query(spec, "", 0))
    return Predicate(
        spec,
        match,
        frozenset(compiler.references),
        compiler.uses_now,
        frozenset(compiler.fields),
        depth=compiler.depth,
        reference_depths=compiler.references,
        activity=compiler.activity,
    )


# --- evaluation: combinators ---------------------------------------------------------

Pred = _bson.Pred
"""``pred(value, ctx) -> bool`` for one value, which may be ``MISSING``. Same shape as a
Matcher, so the combinators below serve both."""


def _always(value: Any, ctx: EvalContext) -> bool:
    return True


def _never(value: Any, ctx: EvalContext) -> bool:
    return False


def _all_of(matchers: list[Matcher]) -> Matcher:
    if not matchers:
        return _always
    if len(matchers) == 1:
        return matchers[0]
    if len(matchers) == 2:
        first, second = matchers

        def both(doc: Any, ctx: EvalContext) -> bool:
            return first(doc, ctx) and second(doc, ctx)

        return both
    members = tuple(matchers)

    def every(doc: Any, ctx: EvalContext) -> bool:
        for matcher in members:
            if not matcher(doc, ctx):
                return False
        return True

    return every


def _any_of(matchers: list[Matcher]) -> Matcher:
    if len(matchers) == 1:
        return matchers[0]
    members = tuple(matchers)

    def some(doc: Any, ctx: EvalContext) -> bool:
        for matcher in members:
            if matcher(doc, ctx):
                return True
        return False

    return some


def _negate(matcher: Matcher) -> Matcher:
    def negated(doc: Any, ctx: EvalContext) -> bool:
        return not matcher(doc, ctx)

    return negated


# --- compiled operators ----------------------------------------------------------------


class _Leaf:
    """An operator matching single values (MongoDB's leaf match expressions).

    ``fast`` is ``(symbol, operand, kind)`` when the predicate is a plain comparison
    that generated code can inline (see ``_bson.FastTest``); without ``traverse`` it
    applies to the elements of an array, as for ``{$elemMatch: {$in: [...]}}``.
    """

    __slots__ = ("fast", "pred", "traverse")

    def __init__(
        self, pred: Pred, traverse: bool = True, fast: tuple[str, Any, str] | None = None
    ) -> None:
        self.pred = pred
        self.traverse = traverse
        self.fast = fast

    def field(self, parts: tuple[str, ...], compiler: _Compiler) -> Matcher:
        walk = _bson.path_matcher(parts, self.pred, self.traverse)
        if self.fast is not None and _GENERATE and len(parts) <= _MAX_GENERATED_DEPTH:
            symbol, operand, kind = self.fast
            test = _bson.FastTest(parts, symbol, operand, kind, walk, not self.traverse)
            compiler.pending[walk] = (test,)
        return walk

    def element(self) -> Pred:
        return self.pred


class _Not:
    """``$ne``, ``$nin``, ``$not`` and ``$exists: false`` negate a whole field condition,
    so ``{a: {$ne: 1}}`` is false for ``{a: [1, 2]}`` and true when ``a`` is missing."""

    __slots__ = ("ops",)

    def __init__(self, ops: list[_Op]) -> None:
        self.ops = ops

    def field(self, parts: tuple[str, ...], compiler: _Compiler) -> Matcher:
        return _negate(
            compiler.finish(compiler.all_of([op.field(parts, compiler) for op in self.ops]))
        )

    def element(self) -> Pred:
        return _negate(_all_of([op.element() for op in self.ops]))


_Op = _Leaf | _Not
_Fused = tuple[_bson.FastTest, ...]
_MAX_GENERATED_DEPTH = 8  # each part nests an if; Python allows 20 nested blocks
_GENERATE = True
"""Generate code for conjunctions of plain comparisons; tests turn it off to check that
the generated functions and the closures agree."""

_COMPARATORS: dict[str, tuple[Callable[[Any, Any], bool], str]] = {
    "$eq": (operator.eq, "=="),
    "$gt": (operator.gt, ">"),
    "$gte": (operator.ge, ">="),
    "$lt": (operator.lt, "<"),
    "$lte": (operator.le, "<="),
}
_DATE_OPERANDS = ("$daysAgo", "$hoursAgo", "$date")
MAX_DAYS_AGO = 366_000
"""Largest ``$daysAgo`` (``$hoursAgo`` likewise): about 1000 years, which keeps now - N
inside datetime's range."""
MAX_FILTER_DEPTH = 64
"""Deepest nesting of a filter; the ruleset compiler counts referenced segments too."""
MAX_ARRAY_OPERAND = 10_000
"""Most values in the array of a ``$in``, ``$nin`` or ``$all``: a list of SKUs, ids or
postcodes fits; beyond it, a segment built from the data belongs in the profile."""
MAX_REGEX_LENGTH = 1024
"""Longest ``$regex`` pattern, in characters."""
# $elemMatch objects starting with these are queries on the elements, not operators.
_QUERY_OPERATORS = frozenset({"$and", "$or", "$nor", "$comment", "$segment", *CLAUSES})
_UNSUPPORTED = frozenset(
    {
        "$expr", "$where", "$text", "$jsonSchema", "$search", "$sampleRate", "$alwaysTrue",
        "$alwaysFalse", "$bitsAllSet", "$bitsAnySet", "$bitsAllClear", "$bitsAnyClear",
        "$geoWithin", "$geoIntersects", "$near", "$nearSphere", "$within",
    }
)  # fmt: skip


def _is_null(value: Any, ctx: EvalContext) -> bool:
    # Null equality also matches a missing field: they share a rank (expression_leaf.cpp).
    return value is None or value is MISSING


def _is_nan(value: Any, ctx: EvalContext) -> bool:
    return type(value) is float and math.isnan(value)


def _exists(value: Any, ctx: EvalContext) -> bool:
    return value is not MISSING


def _string_matcher(search: Callable[[str], bool]) -> Pred:
    # A regex applies to strings (and, through the path walk, to array elements).
    def matches(value: Any, ctx: EvalContext) -> bool:
        return type(value) is str and search(value)

    return matches


def _as_document(array: list[Any]) -> dict[str, Any]:
    # An $elemMatch object query sees an element that is itself an array as a document
    # keyed "0", "1", ... (isABSONObj in ElemMatchObjectMatchExpression).
    return {str(position): value for position, value in enumerate(array)}


def _now(ctx: EvalContext) -> datetime:
    now = ctx.now
    if now is None:
        raise ValueError("this filter compares relative dates; pass now=")
    return now if now.tzinfo is not None else now.replace(tzinfo=UTC)


def _kind(value: Any) -> str:
    names = {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}
    return names.get(type(value), type(value).__name__)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _is_operator_object(value: Any) -> bool:
    return type(value) is dict and any(type(k) is str and k.startswith("$") for k in value)


def _whole_number(value: Any) -> bool:
    return type(value) in _bson.NUMBER_TYPES and math.isfinite(value) and value == int(value)


class _Compiler:
    """Validates a spec while building its closures; collects references, uses_now and
    the top-level fields read.

    Error paths name the offending place: ``$and[1].a`` for a field (and an unknown
    operator in it), ``$and[1].a.$in`` for an operator's operand.
    """

    def __init__(self) -> None:
        # Referenced segment id -> the deepest level of a $segment clause naming it.
        self.references: dict[str, int] = {}
        self.depth = 0
        self.uses_now = False
        self.fields: set[str] = set()
        self.activity = NO_ACTIVITY
        # Conjunctions of plain comparisons, as closures that work but are slow, and the
        # comparisons: merged with their siblings as far as the filter allows, then
        # turned into generated code where they are used (``finish``).
        self.pending: dict[Matcher, _Fused] = {}

    def all_of(self, matchers: list[Matcher]) -> Matcher:
        if len(matchers) == 1:
            return matchers[0]
        parts = [self.pending.get(m) for m in matchers]
        if matchers and all(parts):
            merged = _all_of(matchers)
            self.pending[merged] = tuple(test for part in parts if part for test in part)
            return merged
        return _all_of([self.finish(m) for m in matchers])

    def any_of(self, matchers: list[Matcher]) -> Matcher:
        if len(matchers) == 1:
            return matchers[0]
        parts = [self.pending.get(m) for m in matchers]
        if all(part is not None and len(part) == 1 for part in parts):
            return _bson.generate_matcher(tuple(p[0] for p in parts if p), any_of=True)
        return _any_of([self.finish(m) for m in matchers])

    def check_depth(self, path: str, depth: int) -> None:
        """Refuse a level beyond MAX_FILTER_DEPTH; remember the deepest one."""
        if depth > MAX_FILTER_DEPTH:
            raise FilterError(path, f"the filter nests more than {MAX_FILTER_DEPTH} levels deep")
        self.depth = max(self.depth, depth)

    def finish(self, matcher: Matcher) -> Matcher:
        """``matcher`` as generated code, if it is a conjunction of plain comparisons."""
        tests = self.pending.get(matcher)
        return matcher if tests is None else _bson.generate_matcher(tests)

    # --- clauses ---

    def query(self, spec: Any, path: str, depth: int, in_elem_match: bool = False) -> Matcher:
        if type(spec) is not dict:
            raise FilterError(path, f"a filter must be an object, got {_kind(spec)}")
        self.check_depth(path, depth)
        clauses = []
        for key, value in spec.items():
            if type(key) is not str:
                raise FilterError(path, f"field names must be strings, got {key!r}")
            if not key.startswith("$"):
                if not in_elem_match:  # inside $elemMatch, fields are the elements'
                    self.fields.add(key.split(".", 1)[0])
                clauses.append(self.field(key, value, _join(path, key), depth + 1))
                continue
            here = _join(path, key)
            if key in ("$and", "$or", "$nor"):
                if type(value) is not list or not value:
                    raise FilterError(here, f"{key} needs a non-empty array of filter objects")
                subs = [
                    self.query(sub, f"{here}[{i}]", depth + 1, in_elem_match)
                    for i, sub in enumerate(value)
                ]
                joined = self.all_of(subs) if key == "$and" else self.any_of(subs)
                clauses.append(_negate(self.finish(joined)) if key == "$nor" else joined)
            elif key == "$segment":
                if in_elem_match:
                    raise FilterError(path, "$segment is not allowed inside $elemMatch")
                clauses.append(self.segment(value, here, depth))
            elif key in CLAUSES:
                if in_elem_match:
                    raise FilterError(path, f"{key} is not allowed inside $elemMatch")
                compiled = compile_clause(key, value, here, self)
                self.activity = self.activity.merge(compiled.needs)
                self.uses_now = self.uses_now or compiled.uses_now
                self.fields.add("activity")
                clauses.append(compiled.match)
            elif key in _UNSUPPORTED:
                raise FilterError(path, f"{key} is not supported")
            elif key != "$comment":
                hint = f" ({key} applies to a field: {{<field>: {{{key}: ...}}}})"
                hint = hint if key in _OPS or key in _DATE_OPERANDS else ""
                raise FilterError(path, f"unknown top-level operator {key!r}{hint}")
        return self.all_of(clauses)

    def sub_filter(self, spec: Any, path: str) -> Predicate:
        """A filter over one event's properties, for an activity clause at ``path``."""
        try:
            return compile_filter(spec)
        except FilterError as error:
            raise FilterError(_join(path, error.path), error.message) from None

    def absolute_date(self, value: Any, path: str) -> datetime:
        """The moment of a ``$date`` operand at ``path``."""
        return _parse_date(value, path)

    def segment(self, segment_id: Any, path: str, depth: int) -> Matcher:
        if type(segment_id) is not str or not segment_id:
            raise FilterError(path, f"$segment needs a segment id string, got {segment_id!r}")
        self.references[segment_id] = max(depth, self.references.get(segment_id, 0))

        def in_segment(doc: Any, ctx: EvalContext) -> bool:
            return ctx.segment(segment_id)

        return in_segment

    def field(self, key: str, value: Any, path: str, depth: int) -> Matcher:
        parts = tuple(key.split("."))
        if "" in parts:
            raise FilterError(path, f"invalid field path {key!r}: empty field name")
        # Walking a path nests like the document it walks: a level per part.
        depth += len(parts) - 1
        self.check_depth(path, depth)
        if _is_operator_object(value):
            ops = self.operators(value, path, depth)
        else:
            ops = [self.comparison("$eq", value, path, depth)]
        return self.all_of([op.field(parts, self) for op in ops])

    def operators(self, spec: dict[Any, Any], path: str, depth: int) -> list[_Op]:
        """Compile an operator object such as ``{"$gte": 1, "$lt": 5}``."""
        self.check_depth(path, depth)
        fields = [k for k in spec if type(k) is not str or not k.startswith("$")]
        if fields:
            raise FilterError(
                path, f"an operator object cannot mix operators and fields (found {fields[0]!r})"
            )
        ops: list[_Op] = []
        for op, operand in spec.items():
            build = _OPS.get(op)
            if build is not None:
                ops += build(self, op, operand, _join(path, op), depth + 1, spec)
            elif op == "$options":
                if "$regex" not in spec:
                    raise FilterError(path, "$options needs $regex")
            elif op in _DATE_OPERANDS:
                raise FilterError(
                    path,
                    f"{op} is an operand, not an operator: compare with it, as in "
                    f'{{"$gte": {{"{op}": ...}}}}',
                )
            elif op in _UNSUPPORTED:
                raise FilterError(path, f"{op} is not supported")
            else:
                raise FilterError(path, f"unknown operator {op!r}")
        return ops

    # --- operators: (op, operand, path of the operand, depth, operator object) -> ops ---

    def op_compare(self, op: str, operand: Any, path: str, depth: int, spec: Any) -> list[_Op]:
        return [self.comparison(op, operand, path, depth)]

    def op_ne(self, op: str, operand: Any, path: str, depth: int, spec: Any) -> list[_Op]:
        return [_Not([self.comparison("$eq", operand, path, depth)])]

    def op_in(self, op: str, operand: Any, path: str, depth: int, spec: Any) -> list[_Op]:
        member = self.membership(op, operand, path, depth)
        return [member if op == "$in" else _Not([member])]

    def op_exists(self, op: str, operand: Any, path: str, depth: int, spec: Any) -> list[_Op]:
        # Read as BSON truthiness (BSONElement::trueValue): false, 0 and null mean
        # false; anything else, even "" or [], means true.
        wanted = bool(operand) if type(operand) in (bool, int, float) else operand is not None
        present = _Leaf(_exists)
        return [present if wanted else _Not([present])]

    def op_regex(self, op: str, operand: Any, path: str, depth: int, spec: Any) -> list[_Op]:
        return [_Leaf(_string_matcher(self.regex(operand, spec.get("$options", ""), path)))]

    def op_not(self, op: str, operand: Any, path: str, depth: int, spec: Any) -> list[_Op]:
        if not _is_operator_object(operand):
            raise FilterError(
                path, '$not needs an operator object or a regex, e.g. {"$not": {"$gt": 1}}'
            )
        return [_Not(self.operators(operand, path, depth))]

    def op_size(self, op: str, operand: Any, path: str, depth: int, spec: Any) -> list[_Op]:
        if not _whole_number(operand) or operand < 0:
            raise FilterError(path, f"$size needs a whole number >= 0, got {operand!r}")
        size = int(operand)

        def has_size(value: Any, ctx: EvalContext) -> bool:
            return type(value) is list and len(value) == size

        return [_Leaf(has_size, traverse=False)]

    def op_type(self, op: str, operand: Any, path: str, depth: int, spec: Any) -> list[_Op]:
        names = operand if type(operand) is list else [operand]
        if not names:
            raise FilterError(path, "$type needs at least one type")
        codes: set[int] = set()
        for name in names:
            if name == "number" and type(name) is str:
                codes |= _bson.NUMBER_CODES
            elif type(name) is str and name in _bson.TYPE_CODES:
                codes.add(_bson.TYPE_CODES[name])
            elif _whole_number(name) and int(name) in _bson.TYPE_CODES.values():
                codes.add(int(name))
            else:
                raise FilterError(path, f"unknown $type {name!r}")

        def has_type(value: Any, ctx: EvalContext) -> bool:
            return _bson.type_code(value) in codes

        return [_Leaf(has_type)]

    def op_mod(self, op: str, operand: Any, path: str, depth: int, spec: Any) -> list[_Op]:
        if (
            type(operand) is not list
            or len(operand) != 2
            or not all(type(x) in _bson.NUMBER_TYPES and math.isfinite(x) for x in operand)
        ):
            raise FilterError(path, f"$mod needs [divisor, remainder], got {operand!r}")
        divisor, remainder = (int(x) for x in operand)  # doubles truncate (MongoDB 5.0+)
        if divisor == 0:
            raise FilterError(path, "$mod divisor cannot be 0")

        def has_remainder(value: Any, ctx: EvalContext) -> bool:
            value_type = type(value)
            if value_type is float and math.isfinite(value):
                value = int(value)
            elif value_type is not int:
                return False
            # C++ % (ModMatchExpression): the remainder takes the dividend's sign.
            result = abs(value) % abs(divisor)
            return bool((-result if value < 0 else result) == remainder)

        return [_Leaf(has_remainder)]

    def op_all(self, op: str, operand: Any, path: str, depth: int, spec: Any) -> list[_Op]:
        if type(operand) is not list:
            raise FilterError(path, f"$all needs an array, got {_kind(operand)}")
        _check_length(operand, op, path)
        if not operand:
            return [_Leaf(_never)]  # {$all: []} matches nothing
        elem_matches = [type(x) is dict and "$elemMatch" in x for x in operand]
        if any(elem_matches) and not all(elem_matches):
            raise FilterError(path, "$all cannot mix $elemMatch objects and values")
        ops: list[_Op] = []
        for i, value in enumerate(operand):
            here = f"{path}[{i}]"
            search = self.regex_value(value, here)
            if search is not None:
                ops.append(_Leaf(_string_matcher(search)))
            elif elem_matches[i]:
                ops += self.operators(value, here, depth)
            elif _is_operator_object(value):
                raise FilterError(here, "$all takes values, regexes or $elemMatch objects")
            else:
                ops.append(self.comparison("$eq", value, here, depth))
        return ops

    def op_elem_match(self, op: str, operand: Any, path: str, depth: int, spec: Any) -> list[_Op]:
        if type(operand) is not dict:
            raise FilterError(path, f"$elemMatch needs an object, got {_kind(operand)}")
        first = next(iter(operand), None)
        if type(first) is str and first.startswith("$") and first not in _QUERY_OPERATORS:
            # {$elemMatch: {$gt: 1, $lt: 5}}: one element satisfies every operator.
            ops = self.operators(operand, path, depth)
            elements = _all_of([o.element() for o in ops])

            def any_element(value: Any, ctx: EvalContext) -> bool:
                if type(value) is list:
                    for element in value:
                        if elements(element, ctx):
                            return True
                return False

            fast = ops[0].fast if len(ops) == 1 and isinstance(ops[0], _Leaf) else None
            return [_Leaf(any_element, traverse=False, fast=fast)]
        # {$elemMatch: {sku: "x", qty: {$gt: 1}}}: one element document matches.
        documents = self.finish(self.query(operand, path, depth, in_elem_match=True))

        def any_document(value: Any, ctx: EvalContext) -> bool:
            if type(value) is list:
                for element in value:
                    if type(element) is dict:
                        if documents(element, ctx):
                            return True
                    elif type(element) is list and documents(_as_document(element), ctx):
                        return True
            return False

        return [_Leaf(any_document, traverse=False)]

    # --- operands ---

    def comparison(self, op: str, operand: Any, path: str, depth: int) -> _Leaf:
        """``$eq $gt $gte $lt $lte``: never across BSON types (type bracketing)."""
        compare, symbol = _COMPARATORS[op]
        dated = self.date_comparison(compare, operand, path)
        if dated is not None:
            return _Leaf(dated)
        if _is_operator_object(operand):
            raise FilterError(
                path,
                f"unknown operand {next(iter(operand))!r}; the operand extensions are "
                "$daysAgo, $hoursAgo and $date",
            )
        literal = self.literal(operand, path, depth)
        literal_type = type(literal)
        if literal is None:
            # Nothing sorts below or above null within its rank; missing counts as null.
            return _Leaf(_never if op in ("$gt", "$lt") else _is_null)
        if literal_type is float and math.isnan(literal):
            # NaN equals NaN and is otherwise incomparable (ComparisonMatchExpression).
            return _Leaf(_never if op in ("$gt", "$lt") else _is_nan)
        if literal_type in _bson.NUMBER_TYPES:
            types: tuple[type, ...] = _bson.NUMBER_TYPES
            kind = "number"
        elif literal_type is str or literal_type is bool:
            types = (literal_type,)
            kind = "string" if literal_type is str else "boolean"
        elif op == "$eq":  # an object, an array or a date: exact, field order included

            def equals(value: Any, ctx: EvalContext) -> bool:
                return _bson.equal(value, literal)

            return _Leaf(equals)
        else:
            literal_rank = _bson.rank(literal)

            def ordered(value: Any, ctx: EvalContext) -> bool:
                return _bson.rank(value) == literal_rank and compare(
                    _bson.compare(value, literal), 0
                )

            return _Leaf(ordered)

        def scalar(value: Any, ctx: EvalContext) -> bool:
            return type(value) in types and compare(value, literal)

        return _Leaf(scalar, fast=(symbol, literal, kind))

    def date_comparison(
        self, compare: Callable[[Any, Any], bool], operand: Any, path: str
    ) -> Pred | None:
        """The predicate comparing with a date operand, or None if ``operand`` is not one."""
        if type(operand) is datetime:
            moment = _bson.aware(operand)
        elif type(operand) is dict and any(k in _DATE_OPERANDS for k in operand):
            if len(operand) != 1:
                raise FilterError(path, f"a date operand has one key, got {list(operand)}")
            key, amount = next(iter(operand.items()))
            here = _join(path, key)
            if key == "$date":
                moment = _parse_date(amount, here)
            else:
                if type(amount) not in _bson.NUMBER_TYPES or not 0 <= amount <= MAX_DAYS_AGO:
                    raise FilterError(
                        here, f"{key} needs a number from 0 to {MAX_DAYS_AGO}, got {amount!r}"
                    )
                delta = timedelta(days=amount) if key == "$daysAgo" else timedelta(hours=amount)
                self.uses_now = True

                def relative(value: Any, ctx: EvalContext) -> bool:
                    found = _bson.instant(value)
                    return found is not None and compare(found, _now(ctx) - delta)

                return relative
        else:
            return None

        def absolute(value: Any, ctx: EvalContext) -> bool:
            found = _bson.instant(value)
            return found is not None and compare(found, moment)

        return absolute

    def membership(self, op: str, values: Any, path: str, depth: int) -> _Leaf:
        """``$in``: equal to one of ``values`` or matching one of the regexes among them."""
        if type(values) is not list:
            raise FilterError(path, f"{op} needs an array, got {_kind(values)}")
        _check_length(values, op, path)
        strings: set[str] = set()
        numbers: set[int | float] = set()
        booleans: set[bool] = set()
        regexes: list[Callable[[str], bool]] = []
        others: list[Any] = []
        has_null = has_nan = False
        for i, value in enumerate(values):
            here = f"{path}[{i}]"
            search = self.regex_value(value, here)
            if search is not None:
                regexes.append(search)
            elif _is_operator_object(value):
                raise FilterError(here, f"{op} takes values and regexes, not operators")
            elif value is None:
                has_null = True
            elif type(value) is str:
                strings.add(value)
            elif type(value) is bool:
                booleans.add(value)
            elif type(value) is float and math.isnan(value):
                has_nan = True
            elif type(value) in _bson.NUMBER_TYPES:
                numbers.add(value)
            else:
                others.append(self.literal(value, here, depth))

        def member(value: Any, ctx: EvalContext) -> bool:
            # Dispatch on the exact type: in Python True == 1 and hash(True) == hash(1),
            # but in BSON a boolean never equals a number.
            value_type = type(value)
            if value_type is str:
                if value in strings:
                    return True
                for search in regexes:
                    if search(value):
                        return True
                return False
            if value_type is int or value_type is float:
                return value in numbers or (has_nan and value_type is float and math.isnan(value))
            if value_type is bool:
                return value in booleans
            if value is None or value is MISSING:
                return has_null
            for other in others:
                if _bson.equal(value, other):
                    return True
            return False

        fast: tuple[str, Any, str] | None = None
        if not (regexes or others or booleans or has_null or has_nan):
            if strings and not numbers:
                fast = ("in", frozenset(strings), "string")
            elif numbers and not strings:
                fast = ("in", frozenset(numbers), "number")
        return _Leaf(member, fast=fast)

    def regex_value(self, value: Any, path: str) -> Callable[[str], bool] | None:
        """The search function of a ``{"$regex": ..., "$options": ...}`` value, else None."""
        if type(value) is not dict or "$regex" not in value:
            return None
        extra = [k for k in value if k not in ("$regex", "$options")]
        if extra:
            raise FilterError(path, f"a regex object has only $regex and $options, got {extra}")
        return self.regex(value["$regex"], value.get("$options", ""), path)

    def regex(self, pattern: Any, flags: Any, path: str) -> Callable[[str], bool]:
        if type(pattern) is not str:
            raise FilterError(path, f"$regex needs a string, got {_kind(pattern)}")
        if type(flags) is not str:
            raise FilterError(path, f"$options needs a string, got {_kind(flags)}")
        if len(pattern) > MAX_REGEX_LENGTH:
            raise FilterError(
                path, f"$regex is {len(pattern)} characters long; at most {MAX_REGEX_LENGTH}"
            )
        try:
            return compile_regex(pattern, flags)
        except RegexError as error:
            raise FilterError(path, str(error)) from None

    def literal(self, value: Any, path: str, depth: int) -> Any:
        """A private copy of a JSON operand, so later changes to the spec cannot leak in."""
        self.check_depth(path, depth)
        value_type = type(value)
        if value_type is dict:
            for key in value:
                if type(key) is not str:
                    raise FilterError(path, f"field names must be strings, got {key!r}")
            return {k: self.literal(v, _join(path, k), depth + 1) for k, v in value.items()}
        if value_type is list:
            return [self.literal(v, f"{path}[{i}]", depth + 1) for i, v in enumerate(value)]
        if value is None or value_type in (str, int, float, bool, datetime):
            return value
        raise FilterError(path, f"unsupported value of type {value_type.__name__}")


_OPS: dict[str, Callable[[_Compiler, str, Any, str, int, Any], list[_Op]]] = {
    "$eq": _Compiler.op_compare,
    "$gt": _Compiler.op_compare,
    "$gte": _Compiler.op_compare,
    "$lt": _Compiler.op_compare,
    "$lte": _Compiler.op_compare,
    "$ne": _Compiler.op_ne,
    "$in": _Compiler.op_in,
    "$nin": _Compiler.op_in,
    "$exists": _Compiler.op_exists,
    "$regex": _Compiler.op_regex,
    "$not": _Compiler.op_not,
    "$size": _Compiler.op_size,
    "$type": _Compiler.op_type,
    "$mod": _Compiler.op_mod,
    "$all": _Compiler.op_all,
    "$elemMatch": _Compiler.op_elem_match,
}
"""The field operators: an explicit registry, so no other method is reachable by name."""


def _check_length(values: list[Any], op: str, path: str) -> None:
    if len(values) > MAX_ARRAY_OPERAND:
        raise FilterError(path, f"{op} has {len(values)} values; at most {MAX_ARRAY_OPERAND}")


def _parse_date(value: Any, path: str) -> datetime:
    """A ``$date`` operand: an ISO-8601 string, or epoch milliseconds as a number or as
    Extended JSON's ``{"$numberLong": "..."}``."""
    if type(value) is dict and list(value) == ["$numberLong"] and type(value["$numberLong"]) is str:
        digits = value["$numberLong"]
        value = (
            int(digits) if digits.lstrip("-").isascii() and digits.lstrip("-").isdigit() else None
        )
    if type(value) is int:
        try:
            return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=value)
        except OverflowError:
            raise FilterError(path, f"$date {value} is out of range") from None
    moment = _bson.instant(value) if type(value) is str else None
    if moment is None:
        raise FilterError(path, f"$date needs an ISO-8601 date string, got {value!r}")
    return moment
