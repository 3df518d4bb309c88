"""BSON semantics for JSON values: type order, comparison, equality, ``$type``, dates,
and how a dotted path reaches values in a document (generically, and through generated
code for the common case).

Documents are plain JSON values (dict, list, str, int, float, bool, None) plus
``datetime`` objects, which count as BSON dates. Any other Python type is opaque: it
never equals or compares with an operand, so evaluation cannot raise on it.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from types import CodeType
from typing import Any, Final


class _Missing:
    """The value of a path that does not exist in a document (BSON's EOO)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Final[Any] = _Missing()

# Canonical type ranks, as in MongoDB's ``canonicalizeBSONType``: values of different
# ranks never compare in queries (type bracketing), and inside objects and arrays the
# rank decides first. Missing (EOO) ranks with undefined, below null.
RANK_MISSING: Final = 0
RANK_NULL: Final = 5
RANK_NUMBER: Final = 10
RANK_STRING: Final = 15
RANK_OBJECT: Final = 20
RANK_ARRAY: Final = 25
RANK_BOOL: Final = 40
RANK_DATE: Final = 45
RANK_OPAQUE: Final = 1000

_RANKS: Final[dict[type, int]] = {
    _Missing: RANK_MISSING,
    type(None): RANK_NULL,
    int: RANK_NUMBER,
    float: RANK_NUMBER,
    str: RANK_STRING,
    dict: RANK_OBJECT,
    list: RANK_ARRAY,
    bool: RANK_BOOL,
    datetime: RANK_DATE,
}

NUMBER_TYPES: Final = (int, float)
"""Exact types that are BSON numbers (``bool`` is not one, although it subclasses int)."""


def rank(value: Any) -> int:
    """The canonical BSON type rank of ``value``."""
    return _RANKS.get(type(value), RANK_OPAQUE)


def aware(value: datetime) -> datetime:
    """``value`` as an aware datetime; a naive one is taken to be UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def compare(left: Any, right: Any) -> int:
    """BSON comparison (-1, 0 or 1), as MongoDB's ``BSONElement::woCompare``.

    Ranks decide first; numbers compare by value with NaN below every other number;
    strings compare by code point (the order of their UTF-8 bytes, MongoDB's default
    binary collation); objects compare field by field, each by value rank, then field
    name, then value; arrays element by element; a proper prefix is smaller.
    """
    left_rank = _RANKS.get(type(left), RANK_OPAQUE)
    right_rank = _RANKS.get(type(right), RANK_OPAQUE)
    if left_rank != right_rank:
        return -1 if left_rank < right_rank else 1
    if left_rank == RANK_NUMBER:
        left_nan = type(left) is float and math.isnan(left)
        right_nan = type(right) is float and math.isnan(right)
        if left_nan or right_nan:  # NaN sorts below every other number
            return int(right_nan) - int(left_nan)
    elif left_rank == RANK_DATE:
        left, right = aware(left), aware(right)
    elif left_rank == RANK_OBJECT:
        for (left_key, left_value), (right_key, right_value) in zip(
            left.items(), right.items(), strict=False
        ):
            left_value_rank = rank(left_value)
            right_value_rank = rank(right_value)
            if left_value_rank != right_value_rank:
                return -1 if left_value_rank < right_value_rank else 1
            if left_key != right_key:
                return -1 if left_key < right_key else 1
            result = compare(left_value, right_value)
            if result:
                return result
        return (len(left) > len(right)) - (len(left) < len(right))
    elif left_rank == RANK_ARRAY:
        for left_item, right_item in zip(left, right, strict=False):
            result = compare(left_item, right_item)
            if result:
                return result
        return (len(left) > len(right)) - (len(left) < len(right))
    elif left_rank != RANK_STRING and left_rank != RANK_BOOL:
        return 0  # null, missing; opaque values never reach here against an operand
    return int(left > right) - int(left < right)


def equal(left: Any, right: Any) -> bool:
    """BSON equality: same rank and ``compare() == 0`` (so 1 == 1.0 and true != 1)."""
    left_type = type(left)
    if left_type is dict or left_type is list:
        if type(right) is not left_type or len(left) != len(right):
            return False
    elif _RANKS.get(left_type, RANK_OPAQUE) != _RANKS.get(type(right), RANK_OPAQUE):
        return False
    return compare(left, right) == 0


# --- $type -----------------------------------------------------------------------------

TYPE_CODES: Final[dict[str, int]] = {
    "double": 1,
    "string": 2,
    "object": 3,
    "array": 4,
    "binData": 5,
    "undefined": 6,
    "objectId": 7,
    "bool": 8,
    "date": 9,
    "null": 10,
    "regex": 11,
    "dbPointer": 12,
    "javascript": 13,
    "symbol": 14,
    "javascriptWithScope": 15,
    "int": 16,
    "timestamp": 17,
    "long": 18,
    "decimal": 19,
    "minKey": -1,
    "maxKey": 127,
}
"""MongoDB's ``$type`` aliases and their BSON type codes."""

NUMBER_CODES: Final = frozenset({1, 16, 18, 19})
"""What the ``"number"`` alias stands for: double, int, long and decimal."""

_INT32_MIN: Final = -(2**31)
_INT32_MAX: Final = 2**31 - 1


def type_code(value: Any) -> int | None:
    """The BSON type code a driver would store ``value`` as, or None if it has none.

    A Python int is an ``int`` when it fits 32 bits and a ``long`` otherwise, as
    PyMongo encodes it.
    """
    value_type = type(value)
    if value_type is int:
        return 16 if _INT32_MIN <= value <= _INT32_MAX else 18
    return _TYPE_CODE_OF.get(value_type)


_TYPE_CODE_OF: Final[dict[type, int]] = {
    float: 1,
    str: 2,
    dict: 3,
    list: 4,
    bool: 8,
    datetime: 9,
    type(None): 10,
}


# --- dates -----------------------------------------------------------------------------


def instant(value: Any) -> datetime | None:
    """``value`` as an aware datetime when it is a date, else None.

    A ``datetime`` is a date (naive means UTC). So is an ISO-8601 string such as
    ``"2026-11-09"`` (midnight UTC), ``"2026-11-09T10:00:00Z"`` or
    ``"2026-11-09T10:00:00+02:00"`` (a naive time is UTC). Anything else is not.
    """
    value_type = type(value)
    if value_type is datetime:
        return aware(value)
    if value_type is not str or not 8 <= len(value) <= 64 or not value[:4].isdigit():
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


# --- dotted paths ----------------------------------------------------------------------
# A port of MongoDB's BSONElementIterator (src/mongo/db/matcher/path.cpp): a dotted path
# yields values, and a leaf predicate matches when any of them matches. Objects are
# walked into; an array that ends the path yields its elements, then itself (unless
# ``traverse`` is off, as for $size and $elemMatch); an array in the middle of the path
# is walked element by element, a numeric part also selecting the element at that
# position. A path that ends nowhere yields MISSING.

Pred = Callable[[Any, Any], bool]
"""``pred(value, ctx) -> bool``: MongoDB's matchesSingleElement; value may be MISSING."""


def array_index(part: str) -> int:
    """The array position a path part names (ASCII digits, no leading zero), or -1."""
    if part.isascii() and part.isdigit() and (part == "0" or part[0] != "0"):
        return int(part)
    return -1


def any_in_doc(
    doc: dict[str, Any],
    parts: tuple[str, ...],
    indexes: tuple[int, ...],
    i: int,
    pred: Pred,
    ctx: Any,
    traverse: bool,
) -> bool:
    """Whether ``pred`` holds for a value at ``parts[i:]`` in ``doc``.

    ``indexes`` holds ``array_index`` of each part, computed once per path.
    """
    n = len(parts)
    while True:
        value = doc.get(parts[i], MISSING)
        i += 1
        value_type = type(value)
        if value_type is list:
            return any_in_array(value, parts, indexes, i, pred, ctx, traverse)
        if i == n:
            return pred(value, ctx)
        if value_type is not dict:
            return pred(MISSING, ctx)  # a scalar or nothing where the path goes on
        doc = value


def any_in_array(
    array: list[Any],
    parts: tuple[str, ...],
    indexes: tuple[int, ...],
    i: int,
    pred: Pred,
    ctx: Any,
    traverse: bool,
) -> bool:
    """Whether ``pred`` holds for a value at ``parts[i:]`` under ``array``."""
    n = len(parts)
    if i == n:
        if traverse:
            for element in array:
                if pred(element, ctx):
                    return True
        return pred(array, ctx)
    index = indexes[i]
    missing_tested = False
    for position, element in enumerate(array):
        element_type = type(element)
        if element_type is dict:
            # {"a.0.b": ...} looks for a field "0" in each element *and* at position 0
            # (jstests/core/array_match2.js).
            if any_in_doc(element, parts, indexes, i, pred, ctx, traverse):
                return True
            if position == index:
                if i + 1 == n:
                    if pred(element, ctx):
                        return True
                elif any_in_doc(element, parts, indexes, i + 1, pred, ctx, traverse):
                    return True
        elif position == index and i + 1 == n:
            if pred(element, ctx):
                return True
        elif position == index and element_type is list:
            if any_in_array(element, parts, indexes, i + 1, pred, ctx, traverse):
                return True
        elif not missing_tested:
            # Since MongoDB 9.0 (SERVER-36681) a scalar or nested array where the path
            # goes on counts as missing, so {"a.b": null} matches {a: [1, 2]} and {a: []}
            # (jstests/core/query/null_query_semantics.js, dotted_path_in_null.js and the
            # "9.0 compatibility" release notes); 8.0 yielded nothing here.
            missing_tested = True
            if pred(MISSING, ctx):
                return True
    if not array:
        return pred(MISSING, ctx)
    return False


def path_matcher(parts: tuple[str, ...], pred: Pred, traverse: bool = True) -> Pred:
    """``matcher(document, ctx)``: whether ``pred`` holds for a value at ``parts``."""
    indexes = tuple(array_index(part) for part in parts)
    if len(parts) > 1:

        def dotted(doc: Any, ctx: Any) -> bool:
            if type(doc) is not dict:
                return pred(MISSING, ctx)
            return any_in_doc(doc, parts, indexes, 0, pred, ctx, traverse)

        return dotted
    first = parts[0]

    def single(doc: Any, ctx: Any) -> bool:
        if type(doc) is not dict:
            return pred(MISSING, ctx)
        value = doc.get(first, MISSING)
        if type(value) is list:
            return any_in_array(value, parts, indexes, 1, pred, ctx, traverse)
        return pred(value, ctx)

    return single


# --- generated code for the common case ------------------------------------------------


@dataclass(frozen=True, slots=True)
class FastTest:
    """A comparison that generated code can inline.

    At ``parts``, reached through plain objects, a value of the operand's ``kind`` (its
    type bracket) matches when ``value <symbol> operand`` (for ``in``, the operand is a
    set of that kind); at an array ending the path, any element does (the array itself
    never matches a scalar). With ``elements``, as for ``{$elemMatch: {$in: [...]}}``,
    only the elements of such an array are tested. Any other value, or none, fails.
    ``walk`` is the full matcher, taken over where an array is met before the end.
    """

    parts: tuple[str, ...]
    symbol: str
    operand: Any
    kind: str
    walk: Pred
    elements: bool = False


_KIND_TESTS: Final = {
    "number": "({t} is int or {t} is float)",
    "string": "{t} is str",
    "boolean": "{t} is bool",
}
_SYMBOLS: Final = frozenset({"==", ">", ">=", "<", "<=", "in"})
_EXACT_FLOAT_LIMIT: Final = 2**53
"""Every int up to this magnitude is exactly a float."""


def generate_matcher(tests: tuple[FastTest, ...], any_of: bool = False) -> Pred:
    """One Python function evaluating every test (all of them, or any with ``any_of``).

    This is how a filter of plain comparisons runs as fast as hand-written code: one
    frame, direct dict lookups, inline operators, no calls. As attrs does for its
    generated methods, we compile source text; the text holds only names we make and
    operators from a fixed table, and every value reaches it through the namespace.

    The tests are laid out as a trie over their path parts, so tests sharing a prefix
    share its lookups: ``{"a.b": 1, "a.c": 2}`` reads ``doc["a"]`` and checks its type
    once. The value at depth ``d`` lives in ``v{d}`` (its type in ``t{d}``), so a node
    keeps its value while its children read theirs.
    """
    namespace: dict[str, Any] = {}
    # The signature also fits Predicate's call (see Predicate.__init__): the filters
    # that generated code covers never read ``ctx``, ``now`` or ``segments``. These are
    # not keyword-only: CPython 3.11 fills a missing keyword-only argument through a
    # dict lookup and never specializes calls to such functions, which cost ~15 ns of
    # a ~170 ns call.
    lines = [
        "def match(doc, ctx=None, now=None, segments=None):",
        "    if type(doc) is not dict:",
        "        return False",
    ]
    for j, test in enumerate(tests):
        if test.symbol not in _SYMBOLS or test.kind not in _KIND_TESTS:
            raise ValueError(f"cannot generate code for {test!r}")
        namespace[f"operand{j}"] = test.operand
        namespace[f"float{j}"] = _float_operand(test.operand)
        namespace[f"walk{j}"] = test.walk
    _emit_group(tests, list(range(len(tests))), 0, "    ", lines, namespace, any_of)
    lines.append(f"    return {not any_of}")
    exec(_compiled("\n".join(lines)), namespace)  # noqa: S102
    match = namespace["match"]
    # A copy of the shared code object (~1 KB): CPython specializes each global lookup
    # for one namespace, so filters of one shape taking turns, as segments do in
    # decide(), would keep undoing each other's specializations (decide() ~10% slower).
    match.__code__ = match.__code__.replace()
    match.takes_call_arguments = True
    result: Pred = match
    return result


@functools.lru_cache(maxsize=1024)
def _compiled(source: str) -> CodeType:
    # Filters of the same shape share source text (values live in the namespace), so
    # a ruleset of many similar segments compiles each shape once.
    return compile(source, "<generated filter>", "exec")


def _emit_group(
    tests: tuple[FastTest, ...],
    members: list[int],
    depth: int,
    indent: str,
    lines: list[str],
    namespace: dict[str, Any],
    any_of: bool,
) -> None:
    """Emit the tests ``members`` (indexes into ``tests``), whose paths agree before
    ``depth`` and reach an object there (``doc`` at depth 0, else ``v{depth - 1}``).

    Members are grouped by their part at ``depth``, in order of first appearance; each
    group looks the part up once into ``v{depth}`` and ``t{depth}``, then runs the tests
    ending there and, in one block, those going deeper, in the order they came. A
    missing field reads as None: no test tells them apart, since neither is of a kind a
    test accepts, nor an object or array.
    For all_of a failed test returns False and a passed one falls through to the next
    test; for any_of a passed test returns True and a failed one falls through.
    """
    source = "doc" if depth == 0 else f"v{depth - 1}"
    groups: dict[str, list[int]] = {}
    for j in members:
        groups.setdefault(tests[j].parts[depth], []).append(j)
    for group in groups.values():
        part = f"part{group[0]}_{depth}"
        namespace[part] = tests[group[0]].parts[depth]
        lines += [
            f"{indent}v{depth} = {source}.get({part})",
            f"{indent}t{depth} = type(v{depth})",
        ]
        deeper = [j for j in group if len(tests[j].parts) > depth + 1]
        for j in group:
            if len(tests[j].parts) == depth + 1:
                _emit_leaf(tests[j], j, depth, indent, lines, any_of)
            elif j == deeper[0]:
                _emit_inner(tests, deeper, depth, indent, lines, namespace, any_of)


def _emit_inner(
    tests: tuple[FastTest, ...],
    deeper: list[int],
    depth: int,
    indent: str,
    lines: list[str],
    namespace: dict[str, Any],
    any_of: bool,
) -> None:
    """Emit the tests ``deeper``, whose paths go on past ``v{depth}``.

    An object is walked into. An array hands each test over to its full ``walk``
    matcher, which knows MongoDB's array rules. Anything else is missing for all of
    them, so no test passes: all_of fails, any_of tries its remaining tests.
    """
    inner = indent + "    "
    lines.append(f"{indent}if t{depth} is dict:")
    _emit_group(tests, deeper, depth + 1, inner, lines, namespace, any_of)
    lines.append(f"{indent}elif t{depth} is list:")
    for j in deeper:
        lines += [
            f"{inner}if {'' if any_of else 'not '}walk{j}(doc, ctx):",
            f"{inner}    return {any_of}",
        ]
    if not any_of:
        lines += [f"{indent}else:", f"{inner}return False"]


def _float_operand(operand: Any) -> Any:
    """``operand`` as a float when that is exact, else itself.

    Python compares a float with an int exactly, and so a float with the int's exact
    float: same answers, but only the float-float comparison is specialized (CPython
    3.11), ~10 ns faster per comparison.
    """
    if type(operand) is int and -_EXACT_FLOAT_LIMIT <= operand <= _EXACT_FLOAT_LIMIT:
        return float(operand)
    return operand


def _emit_leaf(
    test: FastTest, j: int, depth: int, indent: str, lines: list[str], any_of: bool
) -> None:
    """Emit ``test``, whose path ends at ``v{depth}``.

    A number compared with ``<`` and the like is tested as a float, then as an int, so
    that a float value meets ``float{j}`` (see ``_float_operand``) and an int value
    the operand itself.
    """
    inner = indent + "    "
    v, t = f"v{depth}", f"t{depth}"
    element_kind = _KIND_TESTS[test.kind].format(t="type(e)")
    passed = f"{inner}    return {any_of}"
    if test.elements:
        lines.append(f"{indent}if {t} is list:")
    elif test.kind == "number" and test.symbol != "in":
        lines += [
            f"{indent}if {t} is float:",
            f"{inner}if {'' if any_of else 'not '}{v} {test.symbol} float{j}:",
            passed,
            f"{indent}elif {t} is int:",
            f"{inner}if {'' if any_of else 'not '}{v} {test.symbol} operand{j}:",
            passed,
            f"{indent}elif {t} is list:",
        ]
    else:
        lines += [
            f"{indent}if {_KIND_TESTS[test.kind].format(t=t)}:",
            f"{inner}if {'' if any_of else 'not '}{v} {test.symbol} operand{j}:",
            passed,
            f"{indent}elif {t} is list:",
        ]
    lines += [
        f"{inner}for e in {v}:",
        f"{inner}    if {element_kind} and e {test.symbol} operand{j}:",
        f"{inner}        {'return True' if any_of else 'break'}",
    ]
    if not any_of:
        lines += [f"{inner}else:", f"{inner}    return False"]
        lines += [f"{indent}else:", f"{inner}return False"]
