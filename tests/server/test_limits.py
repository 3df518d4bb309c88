"""Request limits and the Struct -> Python conversion that enforces them."""

from __future__ import annotations

from typing import Any

from google.protobuf import struct_pb2
from hypothesis import given, settings
from hypothesis import strategies as st

from server import limits


def _struct(value: dict) -> struct_pb2.Struct:
    message = struct_pb2.Struct()
    message.update(value)
    return message


def _convert(value: dict) -> tuple[dict, list[tuple[str, str]]]:
    problems: list = []
    result = limits.struct_to_dict(_struct(value), "context", problems)
    return result, [(p.path, p.message) for p in problems]


def _nested(depth: int) -> dict:
    value: dict = {"leaf": 1}
    for _ in range(depth - 1):
        value = {"n": value}
    return value


class TestStructConversion:
    def test_integral_numbers_become_ints(self):
        """Struct sends doubles; 3.0 arrives as 3 and 2.5 stays 2.5."""
        result, problems = _convert({"items": 3, "ratio": 2.5, "flag": True, "none": None})

        assert {"flag": True, "items": 3, "none": None, "ratio": 2.5} == result
        assert int is type(result["items"])
        assert [] == problems

    def test_nested_lists_and_objects(self):
        """Lists and objects convert recursively."""
        result, _ = _convert({"page": {"tags": ["a", {"b": [1]}]}})

        assert {"page": {"tags": ["a", {"b": [1]}]}} == result

    def test_non_finite_number_is_reported_at_its_path(self):
        """NaN inside a list is a problem at e.g. context.page.tags[3]."""
        _, problems = _convert({"page": {"tags": [1, 2, 3, float("nan")]}})

        assert [("context.page.tags[3]", "must be a finite number")] == problems

    def test_depth_limit(self):
        """Nesting up to MAX_STRUCT_DEPTH passes; one more level is a problem."""
        assert [] == _convert(_nested(limits.MAX_STRUCT_DEPTH))[1]
        problems = _convert(_nested(limits.MAX_STRUCT_DEPTH + 1))[1]

        assert 1 == len(problems)
        assert "nests deeper than" in problems[0][1]

    def test_key_limit(self):
        """More than MAX_STRUCT_KEYS keys in total is a problem at the struct's path."""
        value = {f"k{i}": i for i in range(limits.MAX_STRUCT_KEYS + 1)}

        _, problems = _convert(value)

        assert [("context", f"has {limits.MAX_STRUCT_KEYS + 1} keys; at most 256")] == problems

    def test_size_limit(self):
        """A struct over MAX_STRUCT_BYTES serialized is a problem."""
        _, problems = _convert({"blob": "x" * limits.MAX_STRUCT_BYTES})

        assert ["context"] == [path for path, _ in problems]

    def test_odd_keys_are_quoted_in_paths(self):
        """A key that is not a plain name is shown quoted in the path."""
        _, problems = _convert({"a b": float("inf")})

        assert [("context['a b']", "must be a finite number")] == problems


_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-(2**60), 2**60),
    st.text(max_size=5),
)
_json = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.text(max_size=4), inner, max_size=4),
    max_leaves=40,
)


def _walked(message: struct_pb2.Struct) -> tuple[dict, list[Any]]:
    """The path-tracking walker alone: the reference for the quick conversion."""
    problems: list = []
    walker = limits._Walker(problems)
    result = walker.struct(message, "context", 1)
    if walker.keys > limits.MAX_STRUCT_KEYS:
        problems.append(limits.Problem("context", f"has {walker.keys} keys; at most 256"))
    return result, problems


class TestQuickConversion:
    @settings(max_examples=300, deadline=None)
    @given(st.dictionaries(st.text(max_size=4), _json, max_size=5))
    def test_equals_the_walker(self, value: dict):
        """Any Struct converts to what the walker gives, with the same problems
        (non-finite numbers, any depth)."""
        message = _struct(value)
        problems: list = []

        result = limits.struct_to_dict(message, "context", problems)

        assert _walked(message) == (result, problems)

    def test_deep_and_wide_structs_equal_the_walker(self):
        """At and past the depth and key limits, in objects and in lists."""
        deep_list: Any = ["leaf"]
        for _ in range(limits.MAX_STRUCT_DEPTH):
            deep_list = [deep_list]
        for value in (
            _nested(limits.MAX_STRUCT_DEPTH),
            _nested(limits.MAX_STRUCT_DEPTH + 1),
            {"l": deep_list},
            {f"k{i}": i for i in range(limits.MAX_STRUCT_KEYS)},
            {f"k{i}": {"x": i} for i in range(limits.MAX_STRUCT_KEYS // 2 + 1)},
        ):
            message = _struct(value)
            problems: list = []

            result = limits.struct_to_dict(message, "context", problems)

            assert _walked(message) == (result, problems)


class TestRequestChecks:
    def test_placement_problems_name_their_index(self):
        """An empty placement id is reported at placements[i]."""
        problems: list = []

        limits.check_placements(["a", "b", ""], 32, problems)

        assert ["placements[2]"] == [p.path for p in problems]

    def test_too_many_placements(self):
        """More placements than allowed is one problem naming the limit."""
        problems: list = []

        limits.check_placements(["p"] * 5, 4, problems)

        assert [("placements", "5 placements requested; at most 4 per call")] == [
            (p.path, p.message) for p in problems
        ]

    def test_visitor_id(self):
        """An empty or overlong visitor id is a problem at visitor_id."""
        problems: list = []

        limits.check_visitor_id("", problems)
        limits.check_visitor_id("v" * (limits.MAX_VISITOR_ID_LENGTH + 1), problems)
        limits.check_visitor_id("v" * limits.MAX_VISITOR_ID_LENGTH, problems)

        assert ["visitor_id", "visitor_id"] == [p.path for p in problems]
