"""Server errors, and the one table that turns every error into a gRPC status.

    ServerError
     ├── AuthenticationError           UNAUTHENTICATED: missing or wrong token / API key
     ├── RulesNotLoadedError           UNAVAILABLE: no good ruleset loaded yet
     ├── BatchRejectedError            INVALID_ARGUMENT: a TrackStream batch is bad
     ├── SubjectNotFoundError          NOT_FOUND: a report's campaign is unknown
     ├── ScanCancelledError            UNAVAILABLE: the server stopped during a scan
     └── StoreError                    UNAVAILABLE unless more specific: store trouble
          ├── StaleVersionError        FAILED_PRECONDITION: expected_version is not active
          ├── VersionNotFoundError     NOT_FOUND: no such stored version
          ├── InvalidRulesError        INVALID_ARGUMENT: the document has problems
          └── StoreBusyError           UNAVAILABLE: the database stayed locked too long

The engine's errors (``decision.errors``) are mapped in the same table:
``InvalidRequestError``, ``RulesetError`` and ``FilterError`` are INVALID_ARGUMENT.
Every error that carries problems is sent with a ``google.rpc.BadRequest`` detail, one
field violation per problem, so clients can point at ``placements[2]`` or
``campaigns[0].variants[1].weight``. ``BatchRejectedError`` adds a ``google.rpc.ErrorInfo``
saying how much of the stream was stored before the bad batch. Anything not in the table is a bug: INTERNAL with a
generic message, and the traceback is logged.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

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

logger = logging.getLogger("decide.server")

MAX_PROBLEMS_IN_MESSAGE = 10
"""Problems quoted in the status message; the BadRequest detail carries all of them."""

MAX_DETAILS_BYTES = 6 * 1024
"""Budget for the BadRequest detail. The status travels in trailing metadata, which
clients cap at 8 KiB by default; past the budget the detail ends with a note saying how
many problems were left out (ValidateRules returns them all in its response body)."""


class ServerError(Exception):
    """Base class of the errors the server raises itself."""


class AuthenticationError(ServerError):
    """The call carries no valid credentials for the service it calls."""


class RulesNotLoadedError(ServerError):
    """No valid ruleset has been loaded yet, so no decision can be made."""

    def __init__(self, message: str = "no valid ruleset is loaded yet; retry shortly") -> None:
        super().__init__(message)


class BatchRejectedError(ServerError, ValueError):
    """A streamed batch of events is invalid; the batches before it were committed.

    ``problems`` name ``batches[B].events[I]...``; ``accepted`` and ``duplicates`` count
    what the earlier batches stored.
    """

    REASON = "BATCH_REJECTED"
    DOMAIN = "decisioning.v1.EventService"

    def __init__(
        self, problems: Sequence[Problem], *, batch: int, accepted: int, duplicates: int
    ) -> None:
        self.problems: tuple[Problem, ...] = tuple(problems)
        self.batch = batch
        self.accepted = accepted
        self.duplicates = duplicates
        stored = (
            f"earlier batches stored {accepted} new events and {duplicates} duplicates"
            if batch
            else "nothing was stored"
        )
        super().__init__(f"batch {batch} rejected; {stored}")


class SubjectNotFoundError(ServerError, LookupError):
    """What a report is about (a campaign) is neither in the rules nor in the data."""


class ScanCancelledError(ServerError):
    """A scan of the profile store was cut short because the server is stopping."""

    def __init__(self, message: str = "the server is stopping; retry on another") -> None:
        super().__init__(message)


class StoreError(ServerError):
    """The rules store cannot do what was asked."""


class StaleVersionError(StoreError):
    """``expected_version`` is no longer the active version: someone published meanwhile."""

    def __init__(self, expected: int, active: int) -> None:
        self.expected = expected
        self.active = active
        super().__init__(
            f"expected active version {expected}, but the active version is {active}; "
            "reload the rules and apply your change again"
        )


class VersionNotFoundError(StoreError, LookupError):
    """No stored version has this number."""

    def __init__(self, version: int) -> None:
        self.version = version
        super().__init__(f"rules version {version} does not exist")


class InvalidRulesError(StoreError, ValueError):
    """A rules document cannot be stored or activated; ``problems`` lists every problem."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems: tuple[Problem, ...] = tuple(problems)
        super().__init__(_summary("invalid rules document", self.problems))


class StoreBusyError(StoreError):
    """The database stayed locked by another writer for longer than the busy timeout."""

    def __init__(self, store: str = "rules store") -> None:
        super().__init__(f"the {store} is busy; retry shortly")


STATUS_TABLE: dict[type[Exception], grpc.StatusCode] = {
    # decision/ (the engine)
    InvalidRequestError: grpc.StatusCode.INVALID_ARGUMENT,
    RulesetError: grpc.StatusCode.INVALID_ARGUMENT,
    FilterError: grpc.StatusCode.INVALID_ARGUMENT,
    # server/
    AuthenticationError: grpc.StatusCode.UNAUTHENTICATED,
    BatchRejectedError: grpc.StatusCode.INVALID_ARGUMENT,
    SubjectNotFoundError: grpc.StatusCode.NOT_FOUND,
    ScanCancelledError: grpc.StatusCode.UNAVAILABLE,
    RulesNotLoadedError: grpc.StatusCode.UNAVAILABLE,
    StaleVersionError: grpc.StatusCode.FAILED_PRECONDITION,
    VersionNotFoundError: grpc.StatusCode.NOT_FOUND,
    InvalidRulesError: grpc.StatusCode.INVALID_ARGUMENT,
    StoreBusyError: grpc.StatusCode.UNAVAILABLE,
    StoreError: grpc.StatusCode.UNAVAILABLE,  # any other store trouble: retry later
}
"""Error class -> status code. Looked up along the exception's MRO, so the most specific
entry wins. ``tests/server/test_errors.py`` fails when an error class is missing."""

INTERNAL_MESSAGE = "internal error; the server logged the details"


def status_for(exc: BaseException) -> status_pb2.Status | None:
    """The ``google.rpc.Status`` for a mapped error, or None when ``exc`` is not mapped."""
    code = next((STATUS_TABLE[c] for c in type(exc).__mro__ if c in STATUS_TABLE), None)
    if code is None:
        return None
    problems = _problems_of(exc)
    details: list[any_pb2.Any] = []
    if problems:
        message = _summary(_headline(exc), problems)
        details.append(_pack(_bad_request(problems)))
    else:
        message = str(exc)
    if isinstance(exc, StaleVersionError):
        failure = error_details_pb2.PreconditionFailure()
        failure.violations.add(type="VERSION", subject="rules/active_version", description=str(exc))
        details.append(_pack(failure))
    if isinstance(exc, BatchRejectedError):
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


@contextmanager
def map_errors(context: grpc.ServicerContext, method: str) -> Iterator[None]:
    """Abort the call with the mapped status of any exception raised inside the block."""
    try:
        yield
    except Exception as exc:
        _abort_for(exc, context, method)


def _abort_for(exc: Exception, context: grpc.ServicerContext, method: str) -> None:
    """Abort the call with the mapped status of ``exc`` (raised inside ``method``)."""
    if type(exc) is Exception and context.code() is not None:  # type: ignore[attr-defined]
        raise exc  # the handler already called context.abort(); let gRPC finish it
    status = status_for(exc)
    if status is None:
        logger.exception(
            "unexpected error in %s", method, extra={"event": "rpc_error", "method": method}
        )
        status = internal_status()
    context.abort_with_status(rpc_status.to_status(status))


F = TypeVar("F", bound=Callable[..., Any])


def handles_errors(method: F) -> F:
    """Decorate a servicer method so that every exception becomes its mapped status."""

    name = method.__name__

    # map_errors inlined: a generator-based context manager costs about 1.5 us per call.
    @functools.wraps(method)
    def wrapper(self: Any, request: Any, context: grpc.ServicerContext) -> Any:
        try:
            return method(self, request, context)
        except Exception as exc:
            _abort_for(exc, context, name)

    return wrapper  # type: ignore[return-value]


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
    if isinstance(exc, InvalidRequestError):
        return "invalid request"
    return str(exc).split("\n", 1)[0]


def _summary(headline: str, problems: Sequence[Problem]) -> str:
    """``headline (N problems): p1; p2; ...`` with at most MAX_PROBLEMS_IN_MESSAGE quoted."""
    quoted = "; ".join(str(p)[:200] for p in problems[:MAX_PROBLEMS_IN_MESSAGE])
    more = len(problems) - MAX_PROBLEMS_IN_MESSAGE
    if more > 0:
        quoted += f"; and {more} more"
    noun = "problem" if len(problems) == 1 else "problems"
    return f"{headline} ({len(problems)} {noun}): {quoted}"


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
    "AuthenticationError",
    "BatchRejectedError",
    "InvalidRulesError",
    "RulesNotLoadedError",
    "ServerError",
    "StaleVersionError",
    "StoreBusyError",
    "StoreError",
    "SubjectNotFoundError",
    "VersionNotFoundError",
    "handles_errors",
    "map_errors",
    "status_for",
]
