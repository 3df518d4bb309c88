"""``decisioning.v1.RulesAdmin``: the versioned rules store, and this server's status.

Store calls block (a transaction, an fsync, or the network), so they run in the
server's write pool; validation compiles a document, which takes milliseconds for a
large one, so it runs there too. A publish hands the ruleset it compiled to the
reloader, which serves it before the call returns (read-your-writes) without
compiling the document again.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from importlib import metadata
from typing import Any, Protocol

from decision import InvalidRequestError, Problem, Ruleset
from protos import decisioning_pb2 as pb
from server import limits
from server.api.convert import timestamp, version_message
from server.executors import Pool
from server.profiles.backfill import BackfillStatus
from server.rules.documents import validate_text
from server.rules.reloader import ReloadStatus
from server.rules.snapshot import Snapshot
from server.rules.store import RulesStore, VersionInfo

AUTHOR_KEY = "x-decide-author"
"""Optional metadata naming who publishes or rolls back; stored in the history."""

MAX_AUTHOR_LENGTH = 128

PID_KEY = "x-decide-pid"
"""Initial metadata of GetStatus: the id of the server process that answered, which
tells the processes of ``decide serve --processes N`` apart."""


def server_version() -> str:
    """The installed package version of this server."""
    try:
        return metadata.version("decide")
    except metadata.PackageNotFoundError:
        return "0.0.0+unknown"


class StatusSource(Protocol):
    """The reloader, as RulesAdmin sees it."""

    @property
    def snapshot(self) -> Snapshot | None: ...

    @property
    def status(self) -> ReloadStatus: ...

    def poll_once(self) -> bool: ...

    def adopt(self, version: int, document: str, ruleset: Ruleset) -> bool: ...


def _author(context: Any) -> str:
    for key, value in context.invocation_metadata() or ():
        if key == AUTHOR_KEY:
            text = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
            return "".join(c for c in text.strip() if c.isprintable())[:MAX_AUTHOR_LENGTH]
    return ""


def _check_comment(comment: str, problems: list[Problem]) -> None:
    if len(comment) > limits.MAX_COMMENT_LENGTH:
        problems.append(
            Problem("comment", f"is longer than {limits.MAX_COMMENT_LENGTH} characters")
        )


class RulesAdminServicer:
    """Validate, publish, read, list and roll back rules; report what is served."""

    def __init__(
        self,
        store: RulesStore,
        source: StatusSource,
        *,
        pool: Pool,
        backfill: Callable[[], BackfillStatus] = BackfillStatus,
    ) -> None:
        self._store = store
        self._source = source
        self._pool = pool
        self._backfill = backfill
        self._server_version = server_version()

    def _serve(self, info: VersionInfo, document: str) -> None:
        """Read-your-writes: this server serves ``info``'s version before answering."""
        if info.ruleset is not None:
            self._source.adopt(info.version, document, info.ruleset)
        else:
            self._source.poll_once()

    async def ValidateRules(self, request: pb.ValidateRulesRequest, context: Any) -> Any:
        problems, content_hash = await self._pool.run(validate_text, request.document_json)
        return pb.ValidateRulesResponse(
            valid=not problems,
            problems=[pb.RuleProblem(path=p.path, message=p.message) for p in problems],
            content_hash=content_hash,
        )

    async def PublishRules(self, request: pb.PublishRulesRequest, context: Any) -> Any:
        problems: list[Problem] = []
        _check_comment(request.comment, problems)
        if problems:
            raise InvalidRequestError(problems)
        document = request.document_json
        expected = request.expected_version if request.HasField("expected_version") else None
        author = _author(context)

        def publish() -> VersionInfo:
            info = self._store.publish(
                document, expected_version=expected, comment=request.comment, author=author
            )
            self._serve(info, document)
            return info

        info = await self._pool.run(publish)
        return pb.PublishRulesResponse(version=version_message(info))

    async def GetRules(self, request: pb.GetRulesRequest, context: Any) -> Any:
        version = request.version if request.HasField("version") else None
        if version is not None and version < 1:
            raise InvalidRequestError([Problem("version", "must be >= 1")])
        info, document = await self._pool.run(self._store.get, version)
        return pb.GetRulesResponse(version=version_message(info), document_json=document)

    async def ListVersions(self, request: pb.ListVersionsRequest, context: Any) -> Any:
        if request.limit < 0:
            raise InvalidRequestError([Problem("limit", "must be >= 0")])
        limit = min(request.limit or limits.DEFAULT_LIST_LIMIT, limits.MAX_LIST_LIMIT)

        def read() -> tuple[list[VersionInfo], int]:
            return self._store.list_versions(limit), self._store.active_version()

        versions, active = await self._pool.run(read)
        return pb.ListVersionsResponse(
            versions=[version_message(v) for v in versions], active_version=active
        )

    async def Rollback(self, request: pb.RollbackRequest, context: Any) -> Any:
        problems: list[Problem] = []
        if request.version < 1:
            problems.append(Problem("version", "must be >= 1"))
        _check_comment(request.comment, problems)
        if problems:
            raise InvalidRequestError(problems)
        expected = request.expected_version if request.HasField("expected_version") else None
        author = _author(context)

        def rollback() -> VersionInfo:
            info = self._store.rollback(
                request.version, comment=request.comment, expected_version=expected, author=author
            )
            _, document = self._store.get(info.version)
            self._serve(info, document)
            return info

        info = await self._pool.run(rollback)
        return pb.RollbackResponse(version=version_message(info))

    async def GetStatus(self, request: pb.GetStatusRequest, context: Any) -> Any:
        await context.send_initial_metadata(((PID_KEY, str(os.getpid())),))
        snapshot = self._source.snapshot
        status = self._source.status
        store_version = await self._pool.run(self._store.active_version)
        backfill = self._backfill()
        return pb.GetStatusResponse(
            active_version=snapshot.version if snapshot else 0,
            content_hash=snapshot.content_hash if snapshot else "",
            loaded_at=timestamp(snapshot.loaded_at if snapshot else None),
            store_version=store_version,
            last_reload_error=status.last_error,
            last_reload_error_at=timestamp(status.last_error_at),
            reload_count=status.reload_count,
            reload_error_count=status.error_count,
            server_version=self._server_version,
            activity_backfill=pb.ActivityBackfill(
                complete=backfill.complete,
                pending=backfill.pending,
                backfilled=backfill.backfilled,
                last_error=backfill.last_error,
            ),
        )
