"""``decisioning.v1.ProfileService``: read, annotate, export and forget stored visitors.

Profiles travel as JSON text (``profile_json``), for the reason the rules document does:
Struct keeps neither key order nor the difference between 1 and 1.0. Every call is
admin-only (``server.api.interceptors``): profiles are personal data.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import date, datetime
from typing import Any, Protocol

from decision import InvalidRequestError, Problem
from protos import decisioning_pb2 as pb
from server import limits
from server.executors import Pool

Clock = Callable[[], datetime]


class ProfileAdmin(Protocol):
    """The profile store operations ProfileService exposes (``SQLiteProfileStore``)."""

    def get(self, visitor_id: str) -> dict[str, Any] | None: ...

    def set_attributes(
        self, visitor_id: str, attributes: Mapping[str, Any], now: datetime
    ) -> dict[str, Any]: ...

    def delete_visitor(self, visitor_id: str) -> int: ...

    def export_visitor(self, visitor_id: str) -> dict[str, Any]: ...


def dump_json(value: Any) -> str:
    """Compact JSON text of a profile or export; datetimes become ISO-8601 strings."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=_jsonable)


def _jsonable(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _visitor(visitor_id: str) -> str:
    problems: list[Problem] = []
    limits.check_visitor_id(visitor_id, problems)
    if problems:
        raise InvalidRequestError(problems)
    return visitor_id


class ProfileServicer:
    """Proto in, profile store call, JSON text out."""

    def __init__(self, profiles: ProfileAdmin, *, clock: Clock, pool: Pool) -> None:
        self._profiles = profiles
        self._clock = clock
        self._pool = pool

    async def GetProfile(self, request: pb.GetProfileRequest, context: Any) -> Any:
        profile = await self._pool.run(self._profiles.get, _visitor(request.visitor_id))
        return pb.GetProfileResponse(found=profile is not None, profile_json=dump_json(profile))

    async def SetAttributes(self, request: pb.SetAttributesRequest, context: Any) -> Any:
        problems: list[Problem] = []
        limits.check_visitor_id(request.visitor_id, problems)
        attributes = limits.struct_to_dict(request.attributes, "attributes", problems)
        if not attributes and not problems:
            problems.append(Problem("attributes", "at least one attribute is required"))
        if problems:
            raise InvalidRequestError(problems)
        profile = await self._pool.run(
            self._profiles.set_attributes, request.visitor_id, attributes, self._clock()
        )
        return pb.SetAttributesResponse(profile_json=dump_json(profile))

    async def DeleteVisitor(self, request: pb.DeleteVisitorRequest, context: Any) -> Any:
        deleted = await self._pool.run(self._profiles.delete_visitor, _visitor(request.visitor_id))
        return pb.DeleteVisitorResponse(deleted=deleted)

    async def ExportVisitor(self, request: pb.ExportVisitorRequest, context: Any) -> Any:
        export = await self._pool.run(self._profiles.export_visitor, _visitor(request.visitor_id))
        return pb.ExportVisitorResponse(export_json=dump_json(export))
