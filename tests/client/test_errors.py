"""The client's exception tree and the one function mapping gRPC failures onto it."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2

from client import errors


class FakeRpcError(grpc.RpcError, grpc.Call):
    """A failed call as grpc raises it: an RpcError that is also a Call."""

    def __init__(
        self,
        code: grpc.StatusCode,
        details: str = "",
        trailers: tuple[tuple[str, str | bytes], ...] = (),
    ) -> None:
        self._code = code
        self._details = details
        self._trailers = trailers

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details

    def trailing_metadata(self) -> tuple[tuple[str, str | bytes], ...]:
        return self._trailers

    def initial_metadata(self) -> tuple[()]:
        return ()

    def is_active(self) -> bool:
        return False

    def time_remaining(self) -> None:
        return None

    def cancel(self) -> bool:
        return False

    def add_callback(self, callback: object) -> bool:
        return False


def _bad_request(*violations: tuple[str, str]) -> bytes:
    detail = any_pb2.Any()
    detail.Pack(
        error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(field=f, description=d)
                for f, d in violations
            ]
        )
    )
    status = status_pb2.Status(
        code=code_pb2.INVALID_ARGUMENT, message="invalid rules", details=[detail]
    )
    return status.SerializeToString()


class TestMapping:
    @pytest.mark.parametrize("code", list(grpc.StatusCode), ids=lambda c: c.name)
    def test_every_status_code_is_mapped(self, code: grpc.StatusCode):
        """Each grpc.StatusCode has an explicit entry, so a new one cannot slip through."""
        assert code in errors._STATUS_TO_ERROR

    @pytest.mark.parametrize(
        ("code", "expected"),
        [
            (grpc.StatusCode.INVALID_ARGUMENT, errors.InvalidArgument),
            (grpc.StatusCode.UNAUTHENTICATED, errors.Unauthenticated),
            (grpc.StatusCode.PERMISSION_DENIED, errors.PermissionDenied),
            (grpc.StatusCode.NOT_FOUND, errors.NotFound),
            (grpc.StatusCode.FAILED_PRECONDITION, errors.FailedPrecondition),
            (grpc.StatusCode.UNAVAILABLE, errors.Unavailable),
            (grpc.StatusCode.DEADLINE_EXCEEDED, errors.Unavailable),
            (grpc.StatusCode.INTERNAL, errors.InternalError),
            (grpc.StatusCode.UNKNOWN, errors.InternalError),
        ],
        ids=lambda v: getattr(v, "name", getattr(v, "__name__", str(v))),
    )
    def test_status_code_maps_to_its_exception(self, code, expected):
        """The documented status codes become the documented exception classes."""
        actual = errors.map_rpc_error(FakeRpcError(code, "boom"))

        assert expected is type(actual)
        assert code == actual.code
        assert "boom" == actual.details

    def test_every_exception_derives_from_the_base(self):
        """Callers can catch every client failure with DecideError."""
        assert all(issubclass(cls, errors.DecideError) for cls in errors._STATUS_TO_ERROR.values())

    def test_only_unavailable_is_retryable(self):
        """Unavailable (and deadline exceeded) is the retryable kind; the rest are not."""
        retryable = {cls for cls in errors._STATUS_TO_ERROR.values() if cls.retryable}

        assert {errors.Unavailable} == retryable

    def test_missing_details_fall_back_to_the_code_name(self):
        """An error without details still says which status it was."""
        actual = errors.map_rpc_error(FakeRpcError(grpc.StatusCode.UNAVAILABLE))

        assert "UNAVAILABLE" == str(actual)

    def test_bare_rpc_error_is_internal(self):
        """An RpcError that is not a Call (no code) maps to InternalError, not a crash."""
        actual = errors.map_rpc_error(grpc.RpcError())

        assert isinstance(actual, errors.InternalError)


class TestBadRequest:
    def test_violations_are_read_from_the_status_details(self):
        """INVALID_ARGUMENT carries the BadRequest field violations as (field, description)."""
        trailers = (("grpc-status-details-bin", _bad_request(("a.b", "bad"), ("c", "worse"))),)
        error = FakeRpcError(grpc.StatusCode.INVALID_ARGUMENT, "invalid rules", trailers)

        actual = errors.map_rpc_error(error)

        assert isinstance(actual, errors.InvalidArgument)
        assert [("a.b", "bad"), ("c", "worse")] == actual.violations
        assert "invalid rules\n  - a.b: bad\n  - c: worse" == str(actual)

    def test_malformed_details_give_no_violations(self):
        """Garbage in the details trailer is ignored rather than raised."""
        trailers = (("grpc-status-details-bin", b"\xff\x00 not a status"),)
        error = FakeRpcError(grpc.StatusCode.INVALID_ARGUMENT, "bad", trailers)

        actual = errors.map_rpc_error(error)

        assert [] == actual.violations

    def test_invalid_argument_is_a_value_error(self):
        """InvalidArgument is also a ValueError, like the builtin it resembles."""
        assert issubclass(errors.InvalidArgument, ValueError)
