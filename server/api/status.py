"""The one table that turns every error into a gRPC status, and the decorator applying it.

The engine's errors (``decision.errors``) and the server's (``server.errors``) are plain
exceptions; this is where they meet gRPC: ``InvalidRequestError``, ``RulesetError`` and
``FilterError`` are INVALID_ARGUMENT, and each ``server.errors`` class has its entry.
Every error that carries problems is sent with a ``google.rpc.BadRequest`` detail, one
field violation per problem, so clients can point at ``placements[2]`` or
``campaigns[0].variants[1].weight``. ``BatchRejectedError`` adds a ``google.rpc.ErrorInfo``
saying how much of the stream was stored before the bad batch. Anything not in the
table is a bug: INTERNAL with a generic message, and the traceback is logged.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2  # type: ignore[import-untyped]
from grpc_status import rpc_status

from decision import (
    FilterError,
    InvalidRequestError,
    Problem,
    RulesetError,
)
from server.errors import (
    AuthenticationError,
    BatchRejectedError,
    InvalidRulesError,
    MalformedRequestError,
    NotOnThisStoreError,
    OverloadedError,
    PreconditionError,
    ResumeTokenExpiredError,
    RulesNotLoadedError,
    ScanCancelledError,
    StaleVersionError,
    StoreBusyError,
    StoreCorruptError,
    StoreError,
    StoreFullError,
    StoreSchemaError,
    StoreUnavailableError,
    StreamIdleError,
    SubjectNotFoundError,
    VersionNotFoundError,
    summary,
)

logger = logging.getLogger("decide.server")

MAX_PROBLEMS_IN_MESSAGE = 10
"""Problems quoted in the status message; the BadRequest detail carries all of them."""

MAX_DETAILS_BYTES = 6 * 1024
"""Budget for the BadRequest detail. The status travels in trailing metadata, which
clients cap at 8 KiB by default; past the budget the detail ends with a note saying how
many problems were left out (ValidateRules returns them all in its response body)."""


STATUS_TABLE: dict[type[Exception], grpc.StatusCode] = {
    # decision/ (the engine)
    InvalidRequestError: grpc.StatusCode.INVALID_ARGUMENT,
    RulesetError: grpc.StatusCode.INVALID_ARGUMENT,
    FilterError: grpc.StatusCode.INVALID_ARGUMENT,
    # server/
    AuthenticationError: grpc.StatusCode.UNAUTHENTICATED,
    BatchRejectedError: grpc.StatusCode.INVALID_ARGUMENT,
    MalformedRequestError: grpc.StatusCode.INVALID_ARGUMENT,
    OverloadedError: grpc.StatusCode.RESOURCE_EXHAUSTED,
    PreconditionError: grpc.StatusCode.FAILED_PRECONDITION,
    # The place to resume at is gone: the caller must start again (a full export).
    ResumeTokenExpiredError: grpc.StatusCode.OUT_OF_RANGE,
    # The server's idle deadline for the stream passed; reopening it is the remedy.
    StreamIdleError: grpc.StatusCode.DEADLINE_EXCEEDED,
    SubjectNotFoundError: grpc.StatusCode.NOT_FOUND,
    ScanCancelledError: grpc.StatusCode.UNAVAILABLE,
    RulesNotLoadedError: grpc.StatusCode.UNAVAILABLE,
    StaleVersionError: grpc.StatusCode.FAILED_PRECONDITION,
    VersionNotFoundError: grpc.StatusCode.NOT_FOUND,
    InvalidRulesError: grpc.StatusCode.INVALID_ARGUMENT,
    StoreBusyError: grpc.StatusCode.UNAVAILABLE,
    # The disk is full: retrying at once will not help, an operator must act.
    StoreFullError: grpc.StatusCode.RESOURCE_EXHAUSTED,
    StoreUnavailableError: grpc.StatusCode.UNAVAILABLE,
    # Data loss is what a damaged file means to the caller (gRPC's own guidance).
    StoreCorruptError: grpc.StatusCode.DATA_LOSS,
    # An operator must act (migrate the database; use another store for this call).
    StoreSchemaError: grpc.StatusCode.FAILED_PRECONDITION,
    NotOnThisStoreError: grpc.StatusCode.FAILED_PRECONDITION,
    StoreError: grpc.StatusCode.UNAVAILABLE,  # any other store trouble: retry later
}
"""Error class -> status code. Looked up along the exception's MRO, so the most specific
entry wins. ``tests/server/api/test_status_table.py`` fails when an error class is missing."""

INTERNAL_MESSAGE = "internal error; the server logged the details"


def status_for(exc: BaseException) -> status_pb2.Status | None:
    """The ``google.rpc.Status`` for a mapped error, or None when ``exc`` is not mapped."""
    code = next((STATUS_TABLE[c] for c in type(exc).__mro__ if c in STATUS_TABLE), None)
    if code is None:
        return None
    problems = _problems_of(exc)
    details: list[any_pb2.Any] = []
    if problems:
        message = _summary_of(_headline(exc), problems)
        details.append(_pack(_bad_request(problems)))
    else:
        message = str(exc)
    if isinstance(exc, StaleVersionError):
        failure = error_details_pb2.PreconditionFailure()
        failure.violations.add(type="VERSION", subject="rules/active_version", description=str(exc))
        details.append(_pack(failure))
    if isinstance(exc, (BatchRejectedError, StreamIdleError)):
        info = error_details_pb2.ErrorInfo(
            reason=exc.REASON,
            domain=exc.DOMAIN,
            metadata={
                "batch": str(exc.batch),
                "accepted": str(exc.accepted),
                "duplicates": str(exc.duplicates),
            },
        )
        details.append(_pack(info))
    return status_pb2.Status(code=code.value[0], message=message, details=details)


def internal_status() -> status_pb2.Status:
    """The status sent for an unexpected exception: no internals leak to the caller."""
    return status_pb2.Status(code=code_pb2.INTERNAL, message=INTERNAL_MESSAGE)


class ErrorLog:
    """Logs unexpected errors with their traceback, once per distinct error per interval.

    A client that can trigger a bug could otherwise write a traceback per call and fill
    the disk. An error is "the same" when the method, exception type and the place it
    was raised are; repeats within ``interval`` seconds are counted and the count is
    reported with the next line logged for that error.
    """

    def __init__(self, interval: float = 60.0, clock: Callable[[], float] = time.monotonic):
        self.interval = interval
        self._clock = clock
        self._last: dict[tuple[str, str, str], tuple[float, int]] = {}

    def unexpected(self, method: str, exc: BaseException) -> None:
        key = (method, type(exc).__name__, _origin(exc))
        now = self._clock()
        last = self._last.get(key)
        if last is not None and now - last[0] < self.interval:
            self._last[key] = (last[0], last[1] + 1)
            return
        suppressed = last[1] if last is not None else 0
        if len(self._last) > 1024:  # a bound on distinct keys kept
            self._last.clear()
        self._last[key] = (now, 0)
        logger.error(
            "unexpected error in %s%s",
            method,
            f" ({suppressed} more since the last report)" if suppressed else "",
            exc_info=exc,
            extra={"event": "rpc_error", "method": method, "suppressed": suppressed},
        )


def _origin(exc: BaseException) -> str:
    """Where ``exc`` was raised: the innermost frame's file and line."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    if tb is None:
        return ""
    return f"{tb.tb_frame.f_code.co_filename}:{tb.tb_lineno}"


def grpc_status(exc: BaseException, method: str, errors: ErrorLog) -> grpc.Status:
    """The status to send for ``exc`` raised in ``method``; unexpected ones are logged."""
    status = status_for(exc)
    if status is None:
        errors.unexpected(method, exc)
        status = internal_status()
    return rpc_status.to_status(status)  # type: ignore[no-any-return]


def _problems_of(exc: BaseException) -> tuple[Problem, ...]:
    problems = getattr(exc, "problems", None)
    if problems:
        return tuple(problems)
    if isinstance(exc, FilterError):
        return (Problem(exc.path, exc.message),)
    return ()


def _headline(exc: BaseException) -> str:
    if isinstance(exc, (InvalidRulesError, RulesetError)):
        return "invalid rules document"
    if isinstance(exc, (InvalidRequestError, MalformedRequestError)):
        return "invalid request"
    return str(exc).split("\n", 1)[0]


def _summary_of(headline: str, problems: Sequence[Problem]) -> str:
    return summary(headline, problems, MAX_PROBLEMS_IN_MESSAGE)


def _bad_request(problems: Sequence[Problem]) -> error_details_pb2.BadRequest:
    bad_request = error_details_pb2.BadRequest()
    for i, problem in enumerate(problems):
        violation = bad_request.field_violations.add(
            field=problem.path[:512], description=problem.message[:512]
        )
        if bad_request.ByteSize() > MAX_DETAILS_BYTES:
            bad_request.field_violations.remove(violation)
            bad_request.field_violations.add(
                field="", description=f"{len(problems) - i} more problems not shown"
            )
            break
    return bad_request


def _pack(message: Any) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed


__all__ = [
    "STATUS_TABLE",
    "ErrorLog",
    "grpc_status",
    "internal_status",
    "status_for",
]
