"""Documented request limits, and the checks that turn request messages into plain values.

Each limit is a module constant so the README, the tests and the checks agree. A request
over a limit fails with INVALID_ARGUMENT naming the offending path, except the message
size, which gRPC enforces itself before any handler runs (RESOURCE_EXHAUSTED).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from google.protobuf import struct_pb2

from decision import Problem
from decision.profile import control_character_problem

MAX_RECEIVE_MESSAGE_BYTES = 4 * 1024 * 1024
"""Largest request message the server accepts; gRPC answers RESOURCE_EXHAUSTED above it."""

MAX_DOCUMENT_BYTES = 2 * 1024 * 1024
"""Largest rules document (UTF-8 bytes). Below the message limit so that an oversized
document gets a clear INVALID_ARGUMENT instead of a transport error."""

MAX_PLACEMENTS = 32
"""Default placements per Decide request (``ServerConfig.max_placements``)."""

MAX_PLACEMENT_ID_LENGTH = 128
"""Longest placement id a request may name."""

MAX_VISITOR_ID_LENGTH = 256
"""Longest visitor id, in characters."""

MAX_STRUCT_DEPTH = 8
"""Deepest nesting of objects and lists in ``context`` or ``profile_overrides``; the
top-level object is depth 1."""

MAX_STRUCT_KEYS = 256
"""Most object keys, counted over all nesting levels, in ``context`` or
``profile_overrides``."""

MAX_STRUCT_BYTES = 16 * 1024
"""Largest serialized ``context`` or ``profile_overrides``."""

MAX_LIST_LIMIT = 1000
"""Most versions one ListVersions call returns."""

DEFAULT_LIST_LIMIT = 50
"""Versions ListVersions returns when the request gives no limit."""

MAX_COMMENT_LENGTH = 1000
"""Longest publish or rollback comment."""

MAX_EVENTS_PER_BATCH = 1000
"""Most events in one Track request, or in one TrackRequest of a TrackStream. 1000
events of typical size stay far below MAX_RECEIVE_MESSAGE_BYTES, and one batch is one
SQLite transaction: bigger batches would hold the write lock longer without making
ingest measurably faster. Stream more batches instead."""

MIN_REPORT_TIME = datetime(1970, 1, 1, tzinfo=UTC)
"""Earliest start of a report's period (CampaignReport, SegmentReport): before any
stored event (they start in 2000), and far enough from the year 1 that the attribution
window can be taken from it (a start in the first week of year 1 overflowed)."""

_MAX_EXACT_INT = 2**53


def check_visitor_id(visitor_id: str, problems: list[Problem]) -> None:
    """Append a problem if ``visitor_id`` is empty, too long or holds a control character
    (the rule of event ids: ``decision.profile.CONTROL_CHARACTERS``)."""
    if not visitor_id:
        problems.append(Problem("visitor_id", "is required"))
    elif len(visitor_id) > MAX_VISITOR_ID_LENGTH:
        problems.append(Problem("visitor_id", f"is longer than {MAX_VISITOR_ID_LENGTH} characters"))
    elif (problem := control_character_problem(visitor_id)) is not None:
        problems.append(Problem("visitor_id", problem))


def check_placements(placements: list[str], max_placements: int, problems: list[Problem]) -> None:
    """Append a problem for a missing or oversized placement list, and per bad entry."""
    if not placements:
        problems.append(Problem("placements", "at least one placement is required"))
        return
    if len(placements) > max_placements:
        problems.append(
            Problem(
                "placements",
                f"{len(placements)} placements requested; at most {max_placements} per call",
            )
        )
        return
    for i, placement in enumerate(placements):
        if not placement:
            problems.append(Problem(f"placements[{i}]", "must not be empty"))
        elif len(placement) > MAX_PLACEMENT_ID_LENGTH:
            problems.append(
                Problem(
                    f"placements[{i}]",
                    f"is longer than {MAX_PLACEMENT_ID_LENGTH} characters",
                )
            )
        elif (problem := control_character_problem(placement)) is not None:
            problems.append(Problem(f"placements[{i}]", problem))


def struct_to_dict(
    message: struct_pb2.Struct, path: str, problems: list[Problem]
) -> dict[str, Any]:
    """Convert a Struct to plain Python values, appending a problem per limit broken.

    Struct carries every number as a double; integral values within 2**53 become ``int``
    so that ``{"items": 3}`` reaches filters as it was written, not as ``3.0``.
    Non-finite numbers are rejected: JSON has no NaN or Infinity.
    """
    size = message.ByteSize()
    if size > MAX_STRUCT_BYTES:
        problems.append(Problem(path, f"is {size} bytes; at most {MAX_STRUCT_BYTES}"))
        return {}
    # Most requests are within every limit: convert without building a path per value,
    # and walk again with paths only to report what the quick pass could not accept.
    keys = [0]
    try:
        result = _quick_struct(message, 1, keys)
    except _Unacceptable:
        pass
    else:
        if keys[0] <= MAX_STRUCT_KEYS:
            return result
    walker = _Walker(problems)
    result = walker.struct(message, path, 1)
    if walker.keys > MAX_STRUCT_KEYS:
        problems.append(Problem(path, f"has {walker.keys} keys; at most {MAX_STRUCT_KEYS}"))
    return result


class _Unacceptable(Exception):
    """The quick conversion met something that ``_Walker`` must report."""


def _quick_struct(message: struct_pb2.Struct, depth: int, keys: list[int]) -> dict[str, Any]:
    """``_Walker.struct`` for a Struct within the limits; raises ``_Unacceptable`` where
    the walker would report a problem. ``keys[0]`` counts the object keys."""
    if depth > MAX_STRUCT_DEPTH:
        raise _Unacceptable
    fields = message.fields
    keys[0] += len(fields)
    return {key: _quick_value(fields[key], depth, keys) for key in sorted(fields)}


def _quick_value(value: struct_pb2.Value, depth: int, keys: list[int]) -> Any:
    kind = value.WhichOneof("kind")
    if kind == "string_value":
        return value.string_value
    if kind == "number_value":
        number = value.number_value
        if not math.isfinite(number):
            raise _Unacceptable
        if number.is_integer() and abs(number) <= _MAX_EXACT_INT:
            return int(number)
        return number
    if kind == "bool_value":
        return value.bool_value
    if kind == "struct_value":
        return _quick_struct(value.struct_value, depth + 1, keys)
    if kind == "list_value":
        if depth + 1 > MAX_STRUCT_DEPTH:
            raise _Unacceptable
        return [_quick_value(item, depth + 1, keys) for item in value.list_value.values]
    return None  # null_value, or a Value with no kind set


class _Walker:
    """One conversion: counts keys and reports each problem once, at its path."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        self.keys = 0

    def struct(self, message: struct_pb2.Struct, path: str, depth: int) -> dict[str, Any]:
        if depth > MAX_STRUCT_DEPTH:
            self.problems.append(Problem(path, f"nests deeper than {MAX_STRUCT_DEPTH} levels"))
            return {}
        self.keys += len(message.fields)
        # Struct's map has no defined order; sorting makes conversions reproducible.
        return {
            key: self.value(message.fields[key], _join(path, key), depth)
            for key in sorted(message.fields)
        }

    def value(self, value: struct_pb2.Value, path: str, depth: int) -> Any:
        kind = value.WhichOneof("kind")
        if kind == "struct_value":
            return self.struct(value.struct_value, path, depth + 1)
        if kind == "list_value":
            if depth + 1 > MAX_STRUCT_DEPTH:
                self.problems.append(Problem(path, f"nests deeper than {MAX_STRUCT_DEPTH} levels"))
                return []
            return [
                self.value(item, f"{path}[{i}]", depth + 1)
                for i, item in enumerate(value.list_value.values)
            ]
        if kind == "number_value":
            number = value.number_value
            if not math.isfinite(number):
                self.problems.append(Problem(path, "must be a finite number"))
                return None
            if number.is_integer() and abs(number) <= _MAX_EXACT_INT:
                return int(number)
            return number
        if kind == "string_value":
            return value.string_value
        if kind == "bool_value":
            return value.bool_value
        return None  # null_value, or a Value with no kind set


def _join(path: str, key: str) -> str:
    """``context`` + ``page`` -> ``context.page``; keys that are not plain names are quoted."""
    if key and all(c.isalnum() or c in "_-$" for c in key):
        return f"{path}.{key}"
    return f"{path}[{key!r}]"
