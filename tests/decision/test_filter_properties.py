"""Properties of compiled filters over arbitrary JSON documents (Hypothesis)."""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from decision import compile_filter
from decision import filters as filters_module

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
PATHS = ["a", "b", "a.b", "a.0", "a.b.c", "a.0.b", "a.1"]

keys = st.sampled_from(["a", "b", "c", "0", "1"])
date_strings = st.sampled_from(
    ["2026-11-20", "2026-11-16T12:00:00Z", "2026-11-22T10:00:00+02:00", "yyyy-mm-dd", "20261120"]
)
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats()
    | st.text(max_size=6)
    | date_strings
)
scalars = json_scalars | st.datetimes(timezones=st.none() | st.just(UTC))
values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(keys, children, max_size=4),
    max_leaves=25,
)
documents = st.dictionaries(keys, values, max_size=5) | values
operands = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(keys, children, max_size=3),
    max_leaves=6,
)
paths = st.sampled_from(PATHS)


def _filters() -> list[dict[str, Any]]:
    """One filter per operator and path shape, with our extensions."""
    by_operator: list[dict[str, Any]] = [
        {"$eq": 1},
        {"$eq": None},
        {"$eq": [1, "x"]},
        {"$eq": {"b": 1}},
        {"$ne": "x"},
        {"$gt": 0},
        {"$gte": ""},
        {"$lt": [1]},
        {"$lte": {"a": None}},
        {"$gte": None},
        {"$in": [1, "x", None, True, [1], {"$regex": "^x"}]},
        {"$nin": [2.5, {"c": 1}]},
        {"$exists": True},
        {"$exists": False},
        {"$regex": "^a.*b$", "$options": "imsx"},
        {"$not": {"$gt": 1}},
        {"$elemMatch": {"$gt": 1, "$lt": 5}},
        {"$elemMatch": {"b": {"$exists": True}, "c": None}},
        {"$size": 2},
        {"$all": [1, [2]]},
        {"$all": [{"$elemMatch": {"a": 1}}]},
        {"$type": ["number", "array", "null", "date"]},
        {"$mod": [3, 1]},
        {"$gte": {"$daysAgo": 7}},
        {"$lt": {"$hoursAgo": 1.5}},
        {"$ne": {"$date": "2026-11-20"}},
    ]
    fields = [{path: operators} for path, operators in itertools.product(PATHS, by_operator)]
    logical = [
        {"$or": [{"a": 1}, {"a.b": {"$gt": 2}}], "$nor": [{"b": None}]},
        {"$and": [{"a.b": {"$lte": 3}}, {"a.c": "x"}, {"b": {"$in": ["x", "y"]}}]},
        {"$segment": "s", "a": {"$exists": True}},
        {"a": None, "b.0": 1.5},
    ]
    return fields + logical


FILTERS = [compile_filter(spec) for spec in _filters()]
SEGMENTS = {"s": compile_filter({"b": {"$type": "string"}})}


def _operand(op: str, value: Any) -> Any:
    if op == "$in":
        return [value, "b"]
    return {"$gte": value} if op == "$elemMatch" else value

# Paths over a small alphabet share prefixes often, and reach past the generated depth
# limit (8 parts). Numbers near 2**53 check that comparisons stay exact.
trie_paths = st.lists(st.sampled_from(["a", "b", "0"]), min_size=1, max_size=9).map(".".join)
numbers = (
    st.integers(-3, 3)
    | st.floats(-3, 3)
    | st.sampled_from([2**53, 2**53 + 1, -(2**53) - 1, 2.0**53, 0.5, -0.0, math.inf])
)
plain_scalars = numbers | st.text("ab", max_size=2) | st.booleans() | st.none()
comparisons = st.one_of(
    st.builds(
        lambda op, value: {op: value},
        st.sampled_from(["$eq", "$gt", "$gte", "$lt", "$lte"]),
        numbers | st.text("ab", max_size=2),
    ),
    st.lists(numbers, min_size=1, max_size=3).map(lambda values: {"$in": values}),
    st.lists(st.text("ab", max_size=2), min_size=1, max_size=3).map(lambda values: {"$in": values}),
    st.lists(st.text("ab", max_size=2), min_size=1, max_size=2).map(
        lambda values: {"$elemMatch": {"$in": values}}
    ),
    st.tuples(numbers, numbers).map(lambda pair: {"$gte": pair[0], "$lte": pair[1]}),
)


@st.composite
def _along(draw: st.DrawFn, suffixes: list[tuple[str, ...]]) -> Any:
    """A value that the path ``suffixes`` lead into: mostly objects along them, with
    arrays, scalars and missing fields drawn in, and scalars or arrays where they end."""
    going = [suffix for suffix in suffixes if suffix]
    shape = draw(st.sampled_from(["object", "object", "object", "array", "leaf"]))
    if not going or shape == "leaf":
        return draw(plain_scalars | st.lists(plain_scalars, max_size=3))
    if shape == "array":
        return draw(st.lists(_along(suffixes) | plain_scalars, max_size=3))
    value: dict[str, Any] = {}
    for key in dict.fromkeys(suffix[0] for suffix in going):
        if draw(st.integers(0, 5)):  # one in six is missing
            value[key] = draw(_along([suffix[1:] for suffix in going if suffix[0] == key]))
    return value


@contextmanager
def _closures_only() -> Iterator[None]:
    original = filters_module._GENERATE
    filters_module._GENERATE = False
    try:
        yield
    finally:
        filters_module._GENERATE = original


class TestNeverRaises:
    """Evaluation never raises on document data."""

    @settings(max_examples=300)
    @given(documents)
    def test_every_operator_on_arbitrary_documents(self, doc: Any) -> None:
        """Every filter returns a bool for any JSON document, datetimes included."""
        actual = {type(p(doc, NOW, segments=SEGMENTS)) for p in FILTERS}

        assert {bool} == actual


class TestNegations:
    """The negating operators are exactly the negations MongoDB defines."""

    @given(documents, paths, operands)
    def test_ne_is_not_eq(self, doc: Any, path: str, operand: Any) -> None:
        """{$ne: v} matches exactly the documents {$eq: v} does not."""
        eq = compile_filter({path: {"$eq": operand}})
        ne = compile_filter({path: {"$ne": operand}})

        assert (not eq(doc)) == ne(doc)

    @given(documents, paths, st.lists(operands, max_size=4))
    def test_nin_is_not_in(self, doc: Any, path: str, operand: list[Any]) -> None:
        """{$nin: vs} matches exactly the documents {$in: vs} does not."""
        in_ = compile_filter({path: {"$in": operand}})
        nin = compile_filter({path: {"$nin": operand}})

        assert (not in_(doc)) == nin(doc)

    @given(
        documents,
        paths,
        st.sampled_from(["$eq", "$gt", "$gte", "$lt", "$lte"]),
        operands,
    )
    def test_not_negates_comparison(self, doc: Any, path: str, op: str, operand: Any) -> None:
        """{$not: {op: v}} matches exactly the documents {op: v} does not."""
        plain = compile_filter({path: {op: operand}})
        negated = compile_filter({path: {"$not": {op: operand}}})

        assert (not plain(doc)) == negated(doc)

    @given(documents, paths, st.sampled_from([{"$size": 1}, {"$type": "string"}, {"$regex": "a"}]))
    def test_not_negates_other_operators(self, doc: Any, path: str, ops: dict[str, Any]) -> None:
        """$not also negates $size, $type and $regex."""
        plain = compile_filter({path: ops})
        negated = compile_filter({path: {"$not": ops}})

        assert (not plain(doc)) == negated(doc)

    @given(documents, paths, operands, paths, operands)
    def test_nor_is_not_or(self, doc: Any, p1: str, v1: Any, p2: str, v2: Any) -> None:
        """$nor matches exactly the documents $or does not."""
        clauses = [{p1: v1}, {p2: {"$gte": v2}}]
        or_ = compile_filter({"$or": clauses})
        nor = compile_filter({"$nor": clauses})

        assert (not or_(doc)) == nor(doc)


class TestGeneratedCode:
    """Generated code and closures are two implementations of the same semantics."""

    @given(
        documents,
        st.lists(
            st.tuples(
                paths,
                st.sampled_from(["$eq", "$gt", "$gte", "$lt", "$lte", "$in", "$elemMatch"]),
                st.integers(-3, 3) | st.floats(-3, 3) | st.text("ab", max_size=2) | st.booleans(),
            ),
            min_size=1,
            max_size=4,
        ),
        st.booleans(),
    )
    def test_generated_matches_closures(
        self, doc: Any, conditions: list[tuple[str, str, Any]], any_of: bool
    ) -> None:
        """A filter of plain comparisons gives the same answer either way."""
        clauses = [{p: {op: _operand(op, v)}} for p, op, v in conditions]
        spec = {"$or" if any_of else "$and": clauses}
        generated = compile_filter(spec)
        with _closures_only():
            closures = compile_filter(spec)

        assert closures(doc) == generated(doc)

    @settings(max_examples=400)
    @given(st.data(), st.booleans())
    def test_shared_prefixes_match_closures(self, data: st.DataObject, any_of: bool) -> None:
        """Comparisons on paths sharing prefixes, down to and past the generated depth
        limit, on documents that follow those paths with arrays and scalars on the way,
        give the same answer either way."""
        conditions = data.draw(st.lists(st.tuples(trie_paths, comparisons), min_size=1, max_size=6))
        clauses = [{path: condition} for path, condition in conditions]
        spec = {"$or" if any_of else "$and": clauses}
        doc = data.draw(_along([tuple(path.split(".")) for path, _ in conditions]))
        generated = compile_filter(spec)
        with _closures_only():
            closures = compile_filter(spec)

        assert closures(doc) == generated(doc)
