"""Rules documents as text: strict JSON, every problem with a path or a line and column."""

from __future__ import annotations

import pytest

from server import limits
from server.errors import InvalidRulesError
from server.rules.documents import compile_text, parse_document, validate_text


class TestParse:
    def test_syntax_error_names_line_and_column(self):
        """A JSON syntax error reports where it is."""
        _, problems = parse_document('{\n  "segments": [1,]\n}')

        assert ["invalid JSON at line 2, column 18: Expecting value"] == [
            p.message for p in problems
        ]

    def test_duplicate_keys_are_reported_at_their_path(self):
        """Two equal keys in one object are a problem at that object's path."""
        text = '{"campaigns": [{"id": "a", "id": "b"}], "x": {"y": {"k": 1, "k": 2}}}'

        _, problems = parse_document(text)

        assert [("campaigns[0].id", "duplicate key 'id'"), ("x.y.k", "duplicate key 'k'")] == [
            (p.path, p.message) for p in problems
        ]

    @pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
    def test_non_json_numbers_are_refused(self, constant):
        """NaN and Infinity, which Python's json accepts, are not JSON."""
        _, problems = parse_document(f'{{"a": {constant}}}')

        assert [f"{constant} is not valid JSON"] == [p.message for p in problems]

    def test_empty_text(self):
        """An empty document is one clear problem."""
        assert ["document is empty"] == [p.message for p in parse_document("  ")[1]]

    def test_oversized_document(self):
        """A document over MAX_DOCUMENT_BYTES is refused before parsing."""
        text = '"' + "x" * limits.MAX_DOCUMENT_BYTES + '"'

        document, problems = parse_document(text)

        assert None is document
        assert "at most" in problems[0].message

    def test_objects_come_back_as_plain_dicts(self):
        """The parsed document holds plain dicts, in document key order."""
        document, _ = parse_document('{"b": {"z": 1, "a": 2}, "a": []}')

        assert (dict, ["b", "a"], ["z", "a"]) == (
            type(document["b"]),
            list(document),
            list(document["b"]),
        )


class TestValidate:
    def test_valid_document_has_a_hash(self, make_rules):
        """A valid document yields no problems and its 16-hex-digit content hash."""
        problems, content_hash = validate_text(make_rules())

        assert [] == problems
        assert 16 == len(content_hash)

    def test_engine_problems_are_all_reported(self, invalid_rules):
        """Validation lists every engine problem, each with its path."""
        problems, content_hash = validate_text(invalid_rules)

        assert "" == content_hash
        assert len(problems) >= 2
        assert all(p.path for p in problems)

    def test_compile_text_raises_with_problems(self, invalid_rules):
        """compile_text raises InvalidRulesError carrying the problems."""
        with pytest.raises(InvalidRulesError) as info:
            compile_text(invalid_rules)

        assert info.value.problems
