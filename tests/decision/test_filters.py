"""MongoDB query filters: the language-neutral cases, then what JSON cannot express."""

from __future__ import annotations

import copy
import json
import math
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from decision import EvalContext, FilterError, Predicate, compile_filter
from decision import filters as filters_module
from decision._regex import translate

CASES = json.loads((Path(__file__).parent / "cases" / "filters.json").read_text("utf-8"))
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Feeds ``valid`` cases to a ``valid_case`` fixture, ``invalid`` ones to ``invalid_case``."""
    for section in ("valid", "invalid"):
        fixture = f"{section}_case"
        if fixture in metafunc.fixturenames:
            cases = CASES[section]
            metafunc.parametrize(fixture, cases, ids=[case["name"] for case in cases])


@pytest.fixture(params=[True, False], ids=["generated", "closures"])
def generate(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> bool:
    """Runs a test with and without generated code for plain comparisons."""
    monkeypatch.setattr(filters_module, "_GENERATE", request.param)
    return bool(request.param)


def _now(case: dict[str, Any]) -> datetime | None:
    return datetime.fromisoformat(case["now"]) if "now" in case else None


def _under(path: str, value: Any) -> Any:
    """``value`` nested in objects along ``path``."""
    for part in reversed(path.split(".")):
        value = {part: value}
    return value


def _segments(case: dict[str, Any]) -> dict[str, Predicate] | None:
    specs = case.get("segments")
    return None if specs is None else {k: compile_filter(v) for k, v in specs.items()}


class TestCases:
    """The cases in cases/filters.json."""

    def test_valid(self, valid_case: dict[str, Any], generate: bool) -> None:
        """A valid filter matches the document exactly when MongoDB would."""
        predicate = compile_filter(valid_case["filter"])

        actual = predicate(valid_case["doc"], _now(valid_case), segments=_segments(valid_case))

        assert valid_case["expected"] == actual

    def test_invalid(self, invalid_case: dict[str, Any]) -> None:
        """An invalid filter fails to compile with an error naming the offending place."""
        with pytest.raises(FilterError) as caught:
            compile_filter(invalid_case["filter"])

        assert invalid_case["error_path"] == caught.value.path
        assert invalid_case["error_contains"] in str(caught.value)

    def test_case_file_is_large_enough(self) -> None:
        """The case file covers the language broadly: 150+ valid and 40+ invalid filters."""
        assert len(CASES["valid"]) >= 150
        assert len(CASES["invalid"]) >= 40

    def test_case_names_are_unique(self) -> None:
        """Every case has its own name, so a failing test id points at one case."""
        names = [case["name"] for section in ("valid", "invalid") for case in CASES[section]]

        assert len(names) == len(set(names))


class TestErrors:
    """Compile-time validation and the FilterError it raises."""

    def test_filter_error_is_a_value_error(self) -> None:
        """Callers may catch FilterError as a ValueError."""
        with pytest.raises(ValueError, match="unknown operator"):
            compile_filter({"a": {"$bogus": 1}})

    def test_message_starts_with_the_path(self) -> None:
        """The message names the place first, as in ``path: problem``."""
        with pytest.raises(FilterError) as caught:
            compile_filter(
                {"$and": [{}, {"customer_segment.returns_articles_ratio": {"$lte2": 5}}]}
            )

        expected = "$and[1].customer_segment.returns_articles_ratio: unknown operator '$lte2'"
        assert expected == str(caught.value)

    def test_non_string_key(self) -> None:
        """Field names must be strings (possible from Python, never from JSON)."""
        with pytest.raises(FilterError, match="field names must be strings"):
            compile_filter({1: 2})

    def test_non_json_operand(self) -> None:
        """An operand must be a JSON value or a datetime."""
        with pytest.raises(FilterError) as caught:
            compile_filter({"a": {"$in": [{"b": {1, 2}}]}})

        assert "a.$in[0].b" == caught.value.path

    def test_too_deep(self) -> None:
        """A pathologically nested filter is an error, not a RecursionError."""
        spec: dict[str, Any] = {"a": 1}
        for _ in range(100):
            spec = {"$and": [spec]}

        with pytest.raises(FilterError, match="nests more than"):
            compile_filter(spec)

    def test_whole_filter_is_checked_before_any_document(self) -> None:
        """An error in a branch that evaluation would never reach still fails compilation."""
        with pytest.raises(FilterError) as caught:
            compile_filter({"$or": [{}, {"a": {"$regex": "(?=x)"}}]})

        assert "$or[1].a.$regex" == caught.value.path


class TestPredicate:
    """The compiled Predicate: its attributes and how it is called."""

    def test_references_are_collected(self) -> None:
        """Every $segment id, however nested, is in ``references``."""
        predicate = compile_filter({"$or": [{"$segment": "a"}, {"$nor": [{"$segment": "b"}]}]})

        assert frozenset({"a", "b"}) == predicate.references

    def test_uses_now_only_with_relative_dates(self) -> None:
        """Only $daysAgo and $hoursAgo need ``now``; a fixed $date does not."""
        actual = [
            compile_filter(spec).uses_now
            for spec in (
                {"a": {"$gt": {"$daysAgo": 1}}},
                {"a": {"$not": {"$lt": {"$hoursAgo": 1}}}},
                {"a": {"$gt": {"$date": "2026-01-01"}}},
                {"a": 1},
            )
        ]

        assert [True, True, False, False] == actual

    def test_relative_date_without_now_raises(self) -> None:
        """Calling a filter with relative dates without ``now`` is a ValueError."""
        predicate = compile_filter({"a": {"$gt": {"$daysAgo": 1}}})

        with pytest.raises(ValueError, match="pass now="):
            predicate({"a": "2026-01-01"})

    def test_segment_reference_without_segments_raises(self) -> None:
        """Calling a filter with $segment without ``segments`` is a ValueError."""
        predicate = compile_filter({"$segment": "vip"})

        with pytest.raises(ValueError, match="pass segments="):
            predicate({})

    @pytest.mark.parametrize(
        "call",
        [
            lambda p, d: p(d),
            lambda p, d: p(d, NOW),
            lambda p, d: p(d, now=NOW),
            lambda p, d: p(d, segments={}),
            lambda p, d: p(d, NOW, segments={}),
        ],
        ids=["doc", "now positional", "now keyword", "segments", "both"],
    )
    @pytest.mark.parametrize(
        "spec", [{"a.b": {"$gte": 2}}, {"a.b": {"$exists": True}}], ids=["generated", "closure"]
    )
    def test_plain_filters_accept_every_call_form(self, call: Any, spec: dict[str, Any]) -> None:
        """A filter without dates or segments takes and ignores ``now`` and ``segments``."""
        predicate = compile_filter(spec)

        assert call(predicate, {"a": {"b": 3}}) is True

    def test_segments_are_evaluated_once_per_call(self) -> None:
        """The EvalContext memo evaluates a referenced segment once, however often used."""
        calls = []

        def counting(doc: Any, ctx: EvalContext) -> bool:
            calls.append(doc)
            return True

        segments = {"s": Predicate({}, counting, frozenset(), False)}
        predicate = compile_filter({"$and": [{"$segment": "s"}, {"$or": [{"$segment": "s"}]}]})

        actual = predicate({}, segments=segments)

        assert (True, 1) == (actual, len(calls))

    def test_evaluate_uses_the_given_context(self) -> None:
        """``evaluate(ctx)`` evaluates ``ctx.root`` with that context's now and segments."""
        predicate = compile_filter({"$segment": "recent"})
        recent = compile_filter({"seen": {"$gte": {"$hoursAgo": 1}}})
        ctx = EvalContext({"seen": "2026-11-23T11:30:00Z"}, NOW, {"recent": recent})

        assert predicate.evaluate(ctx) is True

    def test_changing_the_spec_afterwards_changes_nothing(self) -> None:
        """Operands are copied at compile time: mutating the spec later has no effect."""
        spec: dict[str, Any] = {"a": {"$in": [[1, 2]]}, "b": {"c": 1}}
        predicate = compile_filter(spec)
        spec["a"]["$in"][0].append(3)
        spec["b"]["c"] = 2

        assert predicate({"a": [1, 2], "b": {"c": 1}}) is True

    def test_repr_shows_the_spec(self) -> None:
        """The repr is enough to recognise a filter in a log line."""
        assert "Predicate({'a': 1})" == repr(compile_filter({"a": 1}))


class TestPythonValues:
    """Documents and operands JSON cannot hold: datetimes, NaN, non-JSON values."""

    def test_datetime_in_document_against_relative_date(self) -> None:
        """A datetime object in the document is a date."""
        predicate = compile_filter({"seen": {"$gte": {"$daysAgo": 1}}})

        actual = [predicate({"seen": NOW - timedelta(hours=h)}, NOW) for h in (1, 25)]

        assert [True, False] == actual

    def test_naive_datetime_in_document_is_utc(self) -> None:
        """A naive datetime in the document is taken to be UTC."""
        predicate = compile_filter({"seen": {"$gte": {"$hoursAgo": 1}}})

        assert predicate({"seen": datetime(2026, 11, 23, 11, 30)}, NOW) is True

    def test_naive_now_is_utc(self) -> None:
        """A naive ``now`` is taken to be UTC rather than failing to compare."""
        predicate = compile_filter({"seen": {"$gte": {"$hoursAgo": 1}}})

        assert predicate({"seen": "2026-11-23T11:30:00Z"}, datetime(2026, 11, 23, 12)) is True

    def test_datetime_operand(self) -> None:
        """A datetime in the spec is a date operand, compared with dates and ISO strings."""
        moment = datetime(2026, 11, 23, 14, 0, tzinfo=timezone(timedelta(hours=2)))
        predicate = compile_filter({"a": moment})

        actual = [predicate({"a": v}) for v in ("2026-11-23T12:00:00Z", NOW, "x", 12)]

        assert [True, True, False, False] == actual

    def test_datetime_never_equals_a_plain_string_operand(self) -> None:
        """Without a date operand, a datetime field is a BSON date: no string equals it."""
        predicate = compile_filter({"a": {"$lte": "2026-11-24"}})

        assert predicate({"a": NOW}) is False

    def test_dates_compare_inside_documents(self) -> None:
        """Dates nested in an operand document compare as BSON dates."""
        predicate = compile_filter({"a": {"$gt": {"at": datetime(2026, 1, 1, tzinfo=UTC)}}})

        assert predicate({"a": {"at": NOW}}) is True

    @pytest.mark.parametrize(
        ("op", "value", "expected"),
        [
            ("$eq", math.nan, True),
            ("$gte", math.nan, True),
            ("$gt", math.nan, False),
            ("$lt", 1.0, False),
            ("$eq", 1.0, False),
        ],
    )
    def test_nan(self, op: str, value: float, expected: bool) -> None:
        """NaN equals NaN and is otherwise incomparable (ComparisonMatchExpression)."""
        predicate = compile_filter({"a": {op: value}})

        assert expected == predicate({"a": math.nan})

    def test_nan_in_set(self) -> None:
        """$in with NaN matches NaN values, and huge integers do not break the check."""
        predicate = compile_filter({"a": {"$in": [math.nan]}})

        actual = [predicate({"a": v}) for v in (math.nan, 10**400, 1.0)]

        assert [True, False, False] == actual

    @pytest.mark.parametrize("doc", [[], "x", None, 5, [{"a": 1}]], ids=repr)
    def test_non_document_root_is_an_empty_document(self, doc: Any) -> None:
        """A root that is not an object has no fields: nothing exists, null matches."""
        actual = [compile_filter(spec)(doc) for spec in ({"a": None}, {"a": {"$exists": True}})]

        assert [True, False] == actual

    def test_opaque_values_never_match(self) -> None:
        """Values of other Python types never equal or compare with an operand."""
        doc = {"a": {1, 2}, "b": (1, 2), "c": b"x"}
        specs = [{"a": {"$ne": 1}}, {"b": [1, 2]}, {"c": {"$gt": ""}}, {"c": {"$exists": True}}]

        assert [True, False, False, True] == [compile_filter(s)(doc) for s in specs]

    def test_lone_surrogate_does_not_break_regex(self) -> None:
        """A string no UTF-8 encoder accepts is still searched, never raising."""
        predicate = compile_filter({"a": {"$regex": "^x"}})

        assert predicate({"a": "x\ud800"}) is True


class TestRegexTranslation:
    """PCRE patterns as RE2 runs them."""

    @pytest.mark.parametrize(
        ("pattern", "flags", "expected"),
        [
            ("a b # comment\n c", "x", "abc"),
            ("a\\ b", "x", "a\\ b"),
            ("[ #]x", "x", "[ #]x"),
            ("[]# ]", "x", "[]# ]"),
            ("\\Q a b \\E c", "x", "\\Q a b \\Ec"),
            ("a(?#note)b", "", "ab"),
            ("a$", "", "a(?:\\n?\\z)"),
            ("a$", "m", "(?m)a$"),
            ("(?m)a$", "", "(?m)a$"),
            ("[$]", "", "[$]"),
            ("a\\Z", "", "a(?:\\n?\\z)"),
            ("ab", "is", "(?i)(?s)ab"),
        ],
    )
    def test_translate(self, pattern: str, flags: str, expected: str) -> None:
        """Extended mode, comments and PCRE's end anchors become RE2 syntax."""
        assert expected == translate(pattern, flags)

    def test_catastrophic_pattern_runs_in_linear_time(self) -> None:
        """A pattern that makes backtracking engines explode answers at once."""
        predicate = compile_filter({"a": {"$regex": "^(a+)+$"}})

        assert predicate({"a": "a" * 50_000 + "b"}) is False


class TestGeneratedCode:
    """Plain comparisons run as generated code; everything else as closures."""

    def test_parcellab_filters_are_generated(self) -> None:
        """The parcelLab filters compile to one generated function each."""
        specs = [case["filter"] for case in CASES["valid"] if case["name"].startswith("parcelLab")]

        actual = {getattr(compile_filter(s)._match, "takes_call_arguments", False) for s in specs}

        assert {True} == actual

    def test_deep_paths_fall_back_to_closures(self) -> None:
        """A path deeper than generated code nests is walked by closures, correctly."""
        path = ".".join("abcdefghijkl")
        doc: Any = 5
        for part in reversed(path.split(".")):
            doc = {part: doc}

        assert compile_filter({path: {"$gte": 5}})(doc) is True

    def test_operands_never_reach_the_source_text(self) -> None:
        """Field names and values that look like code are data, not code."""
        spec = {"a'] or True #": {"$eq": "x') or True #"}}

        actual = compile_filter(copy.deepcopy(spec))({"a'] or True #": "y"})

        assert actual is False

    @pytest.mark.parametrize(
        ("spec", "docs", "expected"),
        [
            (
                {"$and": [{"c.x": {"$lte": 14}}, {"c.y": {"$lte": 5}}], "c.z": "k"},
                [
                    {"c": {"x": 3, "y": 5, "z": "k"}},
                    {"c": {"x": 3, "y": 6, "z": "k"}},
                    {"c": {"x": 3, "y": 5}},
                    {"c": 7},
                    {},
                    {"c": [{"x": 3}, {"y": [9, 4], "z": "k"}]},
                    {"c": [{"x": 30, "y": 1, "z": "k"}]},
                ],
                [True, False, False, False, False, True, False],
            ),
            (
                {"a": {"$gt": 1}, "a.b": 2},
                [{"a": {"b": 2}}, {"a": 5}, {"a": [5, {"b": 2}]}, {"a": [0, {"b": 2}]}],
                [False, False, True, False],
            ),
            (
                {"a.b": 2, "a": {"$gt": 1}},
                [{"a": {"b": 2}}, {"a": 5}, {"a": [{"b": [1, 2]}, 3]}, {"a": [{"b": 2}]}],
                [False, False, True, False],
            ),
            (
                {"$or": [{"a": {"$gt": 1}}, {"a.b": 2}]},
                [{"a": {"b": 2}}, {"a": 5}, {"a": {"b": 3}}, {"a": 0}, {"a": [0, {"b": 2}]}],
                [True, True, False, False, True],
            ),
            (
                {
                    "$or": [
                        {"c.x": {"$gte": 10}},
                        {"c.y": "s"},
                        {"d": 1},
                        {"c.z.w": {"$in": [1, 2]}},
                    ]
                },
                [
                    {"c": {"x": 3, "y": "s"}},
                    {"c": {"x": 3, "z": {"w": 2}}},
                    {"c": {"x": 3, "z": {"w": 3}}, "d": 1},
                    {"c": 5, "d": 1},
                    {"c": 5},
                    {"c": [{"x": 1}, {"z": [{"w": 1}]}]},
                    {"c": [{"x": 1}, {"y": "t"}]},
                    {"c": {"x": [1, 11]}},
                ],
                [True, True, True, True, False, True, False, True],
            ),
            (
                {"a.0.b": 1, "a.0.c": 2},
                [
                    {"a": [{"b": 1, "c": 2}]},
                    {"a": {"0": {"b": 1, "c": 2}}},
                    {"a": [{"b": 1}, {"c": 2}]},
                    {"a": {"0": [{"b": 1}, {"c": 2}]}},
                ],
                [True, True, False, True],
            ),
            (
                {"a.b": {"$gte": 1, "$lte": 3}},
                [
                    {"a": {"b": 2}},
                    {"a": {"b": [0, 5]}},
                    {"a": {"b": 4}},
                    {"a": [{"b": 0}, {"b": 5}]},
                ],
                [True, True, False, True],
            ),
            (
                {"a.b.c.d.e.f.g.h": 1, "a.b.c.d.e.f.g.i": {"$lt": 3}, "a.b.c.d.e.x": "y"},
                [
                    _under("a.b.c.d.e", {"f": {"g": {"h": 1, "i": 2}}, "x": "y"}),
                    _under("a.b.c.d.e", {"f": {"g": {"h": 1, "i": 3}}, "x": "y"}),
                    _under("a.b.c.d.e", {"f": [{"g": {"h": 1}}, {"g": {"i": 2}}], "x": "y"}),
                    _under("a.b.c.d.e", {"f": {"g": 1}, "x": "y"}),
                ],
                [True, False, True, False],
            ),
        ],
        ids=[
            "and-one-prefix",
            "ending-test-before-children",
            "ending-test-after-children",
            "or-ending-test-and-children",
            "or-shared-prefixes",
            "numeric-part-under-prefix",
            "range-on-one-path",
            "depth-limit",
        ],
    )
    def test_shared_prefixes(
        self, spec: dict[str, Any], docs: list[Any], expected: list[bool], generate: bool
    ) -> None:
        """Tests sharing a path prefix keep MongoDB's semantics: arrays met on the way
        are walked per test, and a scalar where a path goes on fails every test under it."""
        predicate = compile_filter(spec)

        actual = [predicate(doc) for doc in docs]

        assert expected == actual
        assert generate == getattr(predicate._match, "takes_call_arguments", False)

    @pytest.mark.parametrize(
        ("spec", "docs", "expected"),
        [
            (
                {"a": {"$lte": 3}},
                [{"a": 3.0}, {"a": 3}, {"a": 3.5}, {"a": True}],
                [True, True, False, False],
            ),
            ({"a": 2.5}, [{"a": 2.5}, {"a": 2}, {"a": [1, 2.5]}], [True, False, True]),
            ({"a": {"$lt": 2**53 + 1}}, [{"a": 2.0**53}, {"a": 2**53 + 1}], [True, False]),
            ({"a": {"$gte": 2**53}}, [{"a": 2.0**53}, {"a": 2**53 - 1}], [True, False]),
            ({"a": {"$eq": 10**30}}, [{"a": 1e30}, {"a": 10**30}], [False, True]),
        ],
        ids=["int-operand", "float-operand", "above-2**53", "at-2**53", "huge-int"],
    )
    def test_numbers_compare_exactly(
        self, spec: dict[str, Any], docs: list[Any], expected: list[bool], generate: bool
    ) -> None:
        """Ints and floats compare by exact value, whichever side is which type."""
        predicate = compile_filter(spec)

        actual = [predicate(doc) for doc in docs]

        assert expected == actual
