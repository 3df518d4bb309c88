"""The server's own errors: plain exceptions that import no transport.

    ServerError
     ├── AuthenticationError           missing or wrong token / API key
     ├── RulesNotLoadedError           no good ruleset loaded yet
     ├── BatchRejectedError            a TrackStream batch is bad (earlier ones committed)
     ├── SubjectNotFoundError          a report's campaign is unknown
     ├── ScanCancelledError            the server stopped during a scan
     ├── OverloadedError               too many calls of this kind at once: shed
     ├── StreamIdleError               a client stream sent nothing for too long
     ├── MalformedRequestError         the request bytes are not a valid message
     ├── PreconditionError             the call cannot be done in the server's state
     ├── ResumeTokenExpiredError       a stream's resume token names pruned changes
     └── StoreError                    store trouble
          ├── StaleVersionError        expected_version is not the active version
          ├── VersionNotFoundError     no such stored version
          ├── InvalidRulesError        the document has problems
          ├── StoreBusyError           the database stayed locked too long
          ├── StoreFullError           the disk holding the store is full
          ├── StoreUnavailableError    the store cannot be opened, read or written now
          ├── StoreCorruptError        the store's file is damaged
          ├── StoreSchemaError         the database's schema is older or newer than ours
          └── NotOnThisStoreError      the store's backend cannot do this (yet)

Stores, the reloader and the scans raise these; the gRPC edge maps each class to a
status in one table (``server.api.status``), so nothing below the edge imports grpc.
"""

from __future__ import annotations

from collections.abc import Sequence

from decision import Problem


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


class OverloadedError(ServerError):
    """Too many calls of one kind are in flight (or queued for a pool): this one is shed
    at once, so the server answers within its latency budget instead of queueing."""


class StreamIdleError(ServerError):
    """A client stream sent no message within the idle timeout; the server closed it.

    ``accepted``/``duplicates`` count what the stream's earlier batches stored."""

    REASON = "STREAM_IDLE"
    DOMAIN = "decisioning.v1.EventService"

    def __init__(self, seconds: float, *, batches: int, accepted: int, duplicates: int) -> None:
        self.seconds = seconds
        self.batch = batches
        self.accepted = accepted
        self.duplicates = duplicates
        super().__init__(
            f"no batch for {seconds:g} s: the server closed the stream; its {batches} "
            f"batches before stored {accepted} new events and {duplicates} duplicates"
        )


class MalformedRequestError(ServerError, ValueError):
    """The request's bytes do not parse as the method's request message."""

    def __init__(self, message_type: str, reason: str) -> None:
        self.problems: tuple[Problem, ...] = (
            Problem("", f"the request is not a valid {message_type} message: {reason}"),
        )
        super().__init__(f"malformed {message_type}: {reason}")


class PreconditionError(ServerError):
    """What was asked cannot be done in the state the server or the subject is in (a
    delivery that is not dead cannot be sent again; a server recording no exposures
    cannot record a batch)."""


class ResumeTokenExpiredError(ServerError):
    """A resume token names a place in the change log that was pruned since: changes
    after it are gone, so the stream cannot resume there."""


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
        super().__init__(summary("invalid rules document", self.problems))


class StoreBusyError(StoreError):
    """The database stayed locked by another writer for longer than the busy timeout."""

    def __init__(self, store: str = "rules store") -> None:
        super().__init__(f"the {store} is busy; retry shortly")


class StoreFullError(StoreError):
    """A write failed because the disk (or the file system quota) holding the store is full."""

    def __init__(self, store: str, path: str) -> None:
        self.path = path
        super().__init__(f"the {store} ({path}) cannot be written: the disk is full")


class StoreUnavailableError(StoreError):
    """The store's file cannot be opened, read or written (permissions, a read-only
    file system, an I/O error, a closed store)."""

    def __init__(self, store: str, path: str, reason: str) -> None:
        self.path = path
        super().__init__(f"the {store} ({path}) is unavailable: {reason}")


class StoreCorruptError(StoreError):
    """The store's file is damaged; restore it from a backup (``decide store check``)."""

    def __init__(self, store: str, path: str, reason: str) -> None:
        self.path = path
        super().__init__(f"the {store} ({path}) is damaged: {reason}")


class StoreSchemaError(StoreError):
    """The database's schema version is not the one this code knows: older (run
    ``decide store migrate``) or newer (a later decide migrated it)."""

    def __init__(self, where: str, found: int, expected: int) -> None:
        self.where = where
        self.found = found
        self.expected = expected
        if found < expected:
            remedy = f"run `decide store migrate --store {where}` first"
        else:
            remedy = "upgrade decide to the version that migrated it, or use another database"
        super().__init__(
            f"the database {where} has schema version {found}; this decide knows version "
            f"{expected}: {remedy}"
        )


class NotOnThisStoreError(StoreError):
    """What was asked needs something the store's backend does not provide yet."""

    def __init__(self, what: str, backend: str, reason: str) -> None:
        self.what = what
        self.backend = backend
        super().__init__(f"{what} is not available on the {backend} store yet: {reason}")


def summary(headline: str, problems: Sequence[Problem], limit: int = 10) -> str:
    """``headline (N problems): p1; p2; ...`` with at most ``limit`` problems quoted."""
    quoted = "; ".join(str(p)[:200] for p in problems[:limit])
    more = len(problems) - limit
    if more > 0:
        quoted += f"; and {more} more"
    noun = "problem" if len(problems) == 1 else "problems"
    return f"{headline} ({len(problems)} {noun}): {quoted}"


__all__ = [
    "AuthenticationError",
    "BatchRejectedError",
    "InvalidRulesError",
    "MalformedRequestError",
    "NotOnThisStoreError",
    "OverloadedError",
    "PreconditionError",
    "ResumeTokenExpiredError",
    "RulesNotLoadedError",
    "ScanCancelledError",
    "ServerError",
    "StaleVersionError",
    "StoreBusyError",
    "StoreCorruptError",
    "StoreError",
    "StoreFullError",
    "StoreSchemaError",
    "StoreUnavailableError",
    "StreamIdleError",
    "SubjectNotFoundError",
    "VersionNotFoundError",
    "summary",
]
