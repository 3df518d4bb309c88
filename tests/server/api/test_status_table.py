"""The status table: every error class is mapped, and statuses carry their problems."""

from __future__ import annotations

import logging

import grpc
import pytest
from google.rpc import code_pb2, error_details_pb2

import decision
from decision import InvalidRequestError, Problem
from server.api import status as errors
from server.api.status import STATUS_TABLE, internal_status, status_for
from server import errors as server_errors
from server.errors import InvalidRulesError, StaleVersionError


def _public_subclasses(base: type) -> list[type]:
    found = []
    for cls in base.__subclasses__():
        if not cls.__name__.startswith("_"):
            found.append(cls)
        found += _public_subclasses(cls)
    return found


def _bad_request(status) -> list[tuple[str, str]]:
    bad_request = error_details_pb2.BadRequest()
    assert status.details[0].Unpack(bad_request)
    return [(v.field, v.description) for v in bad_request.field_violations]


class TestTable:
    @pytest.mark.parametrize(
        "cls",
        _public_subclasses(decision.DecisionError) + _public_subclasses(server_errors.ServerError),
        ids=lambda c: c.__name__,
    )
    def test_every_error_class_is_mapped(self, cls):
        """Each public engine and server error has its own entry in STATUS_TABLE."""
        assert cls in STATUS_TABLE

    def test_bad_input_is_never_unknown_or_internal(self):
        """No mapped error turns into UNKNOWN or INTERNAL."""
        codes = set(STATUS_TABLE.values())

        assert set() == codes & {grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL}

    def test_unmapped_exception_has_no_status(self):
        """Anything outside the table is left to the generic INTERNAL path."""
        assert None is status_for(KeyError("x"))


class TestStatus:
    def test_problems_become_field_violations(self):
        """An error with problems is INVALID_ARGUMENT with one violation per problem."""
        exc = InvalidRequestError([Problem("placements[2]", "must not be empty")])

        status = status_for(exc)

        assert code_pb2.INVALID_ARGUMENT == status.code
        assert [("placements[2]", "must not be empty")] == _bad_request(status)
        assert "placements[2]: must not be empty" in status.message

    def test_huge_problem_lists_are_truncated_with_a_note(self):
        """The detail stays under its byte budget and says how many problems it left out."""
        problems = [Problem(f"campaigns[{i}].id", "x" * 100) for i in range(1000)]

        status = status_for(InvalidRulesError(problems))
        violations = _bad_request(status)

        assert status.ByteSize() < 8 * 1024
        assert violations[-1][1].endswith("more problems not shown")
        assert "and 990 more" in status.message

    def test_stale_version_carries_a_precondition_failure(self):
        """FAILED_PRECONDITION comes with a PreconditionFailure detail."""
        status = status_for(StaleVersionError(1, 2))
        failure = error_details_pb2.PreconditionFailure()

        assert code_pb2.FAILED_PRECONDITION == status.code
        assert status.details[0].Unpack(failure)
        assert "rules/active_version" == failure.violations[0].subject

    def test_filter_error_path_is_a_violation(self):
        """A FilterError's path becomes the violation's field."""
        status = status_for(decision.FilterError("$and[1].x", "unknown operator $foo"))

        assert [("$and[1].x", "unknown operator $foo")] == _bad_request(status)

    def test_internal_status_is_generic(self):
        """The INTERNAL status reveals nothing about the failure."""
        status = internal_status()

        assert (code_pb2.INTERNAL, errors.INTERNAL_MESSAGE) == (status.code, status.message)


class TestGrpcStatus:
    def test_unexpected_exception_is_internal_and_logged(self, caplog):
        """An unmapped exception becomes INTERNAL with a generic message; the log has
        the traceback."""
        log = errors.ErrorLog()
        try:
            raise ZeroDivisionError("secret detail")
        except ZeroDivisionError as exc:
            with caplog.at_level(logging.ERROR, "decide.server"):
                status = errors.grpc_status(exc, "Decide", log)

        assert grpc.StatusCode.INTERNAL == status.code
        assert "secret detail" not in status.details
        assert "ZeroDivisionError" in caplog.text

    def test_mapped_exception_has_its_status(self):
        """A mapped exception has its code and the BadRequest trailer."""
        status = errors.grpc_status(
            InvalidRulesError([Problem("segments", "must be a list")]), "Decide", errors.ErrorLog()
        )

        keys = [key for key, _ in status.trailing_metadata]
        assert grpc.StatusCode.INVALID_ARGUMENT == status.code
        assert ["grpc-status-details-bin"] == keys


class TestErrorLog:
    def test_one_line_per_distinct_error_per_interval(self, caplog):
        """The same error raised at the same place logs once per interval; the next
        line says how many were left out; another error logs at once."""
        clock = [0.0]
        log = errors.ErrorLog(interval=60, clock=lambda: clock[0])

        def fail(exc: Exception) -> None:
            try:
                raise exc
            except Exception as raised:
                log.unexpected("Decide", raised)

        with caplog.at_level(logging.ERROR, "decide.server"):
            for _ in range(5):
                fail(KeyError("x"))
            fail(ValueError("y"))
            clock[0] = 61.0
            fail(KeyError("x"))

        messages = [r.getMessage() for r in caplog.records]
        assert [
            "unexpected error in Decide",
            "unexpected error in Decide",
            "unexpected error in Decide (4 more since the last report)",
        ] == messages
