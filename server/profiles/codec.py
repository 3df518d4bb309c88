"""How a shared profile store writes profiles and events as text, and reads them back.

The same encoding as the SQLite store's (``server.profiles.sqlite``), so a profile
reads the same whichever backend stored it: compact JSON by orjson, except values
orjson refuses (integers beyond 64 bits), which ``json`` writes exactly after a
leading space; the event log's properties are read back with ``json``, exactly.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import orjson

from decision import InvalidRequestError, Problem
from decision.profile import Event, render, validate_events
from server.profiles.folding import Coverage

__all__ = ["attributes_event", "dumps", "event_from_row", "loads", "profile_row"]

_json_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def dumps(value: Any) -> str:
    """Compact JSON text (see the module docstring)."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return " " + _json_dumps(value)


def loads(text: str) -> Any:
    """The value of JSON text written by ``dumps``."""
    return json.loads(text) if text[:1] == " " else orjson.loads(text)


def event_from_row(row: Sequence[Any]) -> Event:
    """An Event from ``(event_id, source_id, type, ts, properties)``; its ``visitor_id``
    is the id it was sent with."""
    event_id, source_id, kind, ts, properties = row
    return Event(event_id, source_id, kind, datetime.fromisoformat(ts), json.loads(properties))


def profile_row(
    visitor_id: str, state: dict[str, Any], coverage: Coverage
) -> tuple[str, str, str, str]:
    """``(visitor_id, document, state, activity_key)`` as stored."""
    return visitor_id, dumps(render(state)), dumps(state), coverage.key(state)


def attributes_event(visitor_id: str, attributes: Mapping[str, Any], now: datetime) -> Event:
    """The ``set_attributes`` event that records shop attributes (null removes one), so
    rebuilds keep them. ``InvalidRequestError`` with paths such as ``attributes.tier``."""
    raw = {
        "event_id": f"attributes-{uuid.uuid4().hex}",
        "visitor_id": visitor_id,
        "type": "set_attributes",
        "timestamp": now,
        "properties": {"attributes": attributes},
    }
    try:
        (event,) = validate_events([raw], now, allow_internal=True)
    except InvalidRequestError as exc:
        prefixes = ("events[0].properties.", "events[0].")
        raise InvalidRequestError(
            [Problem(_strip(p.path, prefixes), p.message) for p in exc.problems]
        ) from None
    return event


def _strip(path: str, prefixes: Sequence[str]) -> str:
    for prefix in prefixes:
        if path.startswith(prefix):
            return path[len(prefix) :]
    return path
