"""Events as plain dicts (or ``TrackEvent``) to ``TrackRequest`` messages, and back out.

The dict shape is the JSONL line format::

    {"event_id": "e-1", "visitor_id": "v-42", "type": "add_to_cart",
     "timestamp": "2026-05-04T10:15:00Z", "properties": {"sku": "S1", "quantity": 1, "price": 20}}

Only what a ``TrackRequest`` cannot carry is rejected here (an unknown type or property,
a value of the wrong JSON type, a timestamp without an offset), with the same
``events[I].field`` paths the server uses; everything else (required fields, negative
amounts, timestamps in the future) is the server's to judge, so that one set of rules
applies to every client.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from google.protobuf import struct_pb2, timestamp_pb2

from client.errors import BatchRejected, InternalError, InvalidArgument
from client.types import TrackEvent, TrackResult
from protos import decisioning_pb2 as pb

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_INT64 = 2**63

_STRING, _NUMBER, _INTEGER, _BOOLEAN = "a string", "a number", "an integer", "true or false"

EVENT_TYPES: dict[str, int] = {
    name.removeprefix("EVENT_TYPE_").lower(): number
    for name, number in pb.EventType.items()
    if number != 0
}
"""Event type name -> EventType number, from the proto itself."""

_CAMPAIGN_FIELDS = {
    "decision_id": _STRING,
    "campaign": _STRING,
    "variant": _STRING,
    "value": _NUMBER,
}

_PROPERTIES: dict[str, tuple[str, Any, dict[str, str]] | None] = {
    "session_start": (
        "session_start",
        pb.SessionStart,
        {
            "referrer": _STRING,
            "landing_page": _STRING,
            "utm_source": _STRING,
            "utm_medium": _STRING,
            "utm_campaign": _STRING,
        },
    ),
    "page_view": (
        "page_view",
        pb.PageView,
        {
            "url": _STRING,
            "title": _STRING,
            "referrer": _STRING,
            "page_type": _STRING,
            "category": _STRING,
        },
    ),
    "product_view": (
        "product_view",
        pb.ProductView,
        {
            "sku": _STRING,
            "category": _STRING,
            "brand": _STRING,
            "price": _NUMBER,
            "on_sale": _BOOLEAN,
        },
    ),
    "add_to_cart": (
        "cart",
        pb.CartChange,
        {"sku": _STRING, "quantity": _INTEGER, "price": _NUMBER},
    ),
    "remove_from_cart": (
        "cart",
        pb.CartChange,
        {"sku": _STRING, "quantity": _INTEGER, "price": _NUMBER},
    ),
    "purchase": (
        "purchase",
        pb.Purchase,
        {"order_id": _STRING, "value": _NUMBER, "currency": _STRING, "articles": _INTEGER},
    ),
    "return": ("order_return", pb.OrderReturn, {"order_id": _STRING, "articles": _INTEGER}),
    "campaign_impression": ("campaign", pb.CampaignInteraction, _CAMPAIGN_FIELDS),
    "campaign_click": ("campaign", pb.CampaignInteraction, _CAMPAIGN_FIELDS),
    "campaign_conversion": ("campaign", pb.CampaignInteraction, _CAMPAIGN_FIELDS),
    "identify": ("identify", pb.Identify, {"customer_id": _STRING}),
    "custom": None,  # name + a free-form Struct, handled on its own
}
"""Event type -> (oneof field, message class, property kinds); None: custom, whose
free-form properties are handled on their own."""

_TOP_LEVEL = frozenset({"event_id", "visitor_id", "type", "timestamp", "properties"})

Problems = list[tuple[str, str]]


def track_request(
    events: Iterable[Mapping[str, Any] | TrackEvent], path: str = "events"
) -> pb.TrackRequest:
    """A ``TrackRequest`` of ``events``; ``InvalidArgument`` listing every event the
    request cannot carry, by ``path[index].field``."""
    problems: Problems = []
    messages = [event_message(event, f"{path}[{i}]", problems) for i, event in enumerate(events)]
    if problems:
        noun = "problem" if len(problems) == 1 else "problems"
        raise InvalidArgument(f"invalid events ({len(problems)} {noun})", violations=problems)
    return pb.TrackRequest(events=messages)


def event_message(event: Mapping[str, Any] | TrackEvent, path: str, problems: Problems) -> pb.Event:
    """One event as a proto ``Event``; what cannot be carried is appended to ``problems``."""
    if isinstance(event, TrackEvent):
        fields: Mapping[str, Any] = {
            "event_id": event.event_id,
            "visitor_id": event.visitor_id,
            "type": event.type,
            "timestamp": event.timestamp,
            "properties": event.properties,
        }
    elif isinstance(event, Mapping):
        fields = event
        for key in fields:
            if key not in _TOP_LEVEL:
                problems.append((f"{path}.{key}", "unknown field"))
    else:
        problems.append((path, f"must be an object, not {type(event).__name__}"))
        return pb.Event()
    message = pb.Event(
        event_id=_string(fields.get("event_id"), f"{path}.event_id", problems),
        visitor_id=_string(fields.get("visitor_id"), f"{path}.visitor_id", problems),
    )
    type_name = fields.get("type")
    if type_name is not None:
        number = EVENT_TYPES.get(type_name) if isinstance(type_name, str) else None
        if number is None:
            problems.append((f"{path}.type", f"unknown event type {type_name!r}"))
            type_name = None
        else:
            message.type = number  # type: ignore[assignment]
    stamp = fields.get("timestamp")
    if stamp is not None:
        converted = _timestamp(stamp, f"{path}.timestamp", problems)
        if converted is not None:
            message.timestamp.CopyFrom(converted)
    properties = fields.get("properties")
    if properties is None:
        properties = {}
    if not isinstance(properties, Mapping):
        problems.append((f"{path}.properties", "must be an object"))
    elif type_name is not None:
        _set_properties(message, type_name, properties, f"{path}.properties", problems)
    return message


def _set_properties(
    message: pb.Event, type_name: str, properties: Mapping[str, Any], path: str, problems: Problems
) -> None:
    if type_name == "custom":
        custom = message.custom
        for key in properties:
            if key not in ("name", "properties"):
                problems.append((f"{path}.{key}", "unknown property of a custom event"))
        custom.name = _string(properties.get("name"), f"{path}.name", problems)
        free = properties.get("properties")
        if free is not None:
            if not isinstance(free, Mapping):
                problems.append((f"{path}.properties", "must be an object"))
            else:
                try:
                    custom.properties.update(free)
                except (TypeError, ValueError, AttributeError) as e:
                    problems.append((f"{path}.properties", str(e)))
        return
    spec = _PROPERTIES[type_name]
    assert spec is not None
    field, cls, kinds = spec
    if not properties and type_name in ("session_start", "page_view"):
        return  # these two may carry no properties message at all
    values: dict[str, Any] = {}
    for key, value in properties.items():
        kind = kinds.get(key)
        if kind is None:
            problems.append((f"{path}.{key}", f"unknown property of a {type_name} event"))
        elif value is not None:
            converted = _CHECKS[kind](value, f"{path}.{key}", problems)
            if converted is not None:
                values[key] = converted
    getattr(message, field).CopyFrom(cls(**values))


def _string(value: Any, path: str, problems: Problems) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        problems.append((path, "must be a string"))
        return ""
    return value


def _number(value: Any, path: str, problems: Problems) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        problems.append((path, "must be a number"))
        return None
    number = float(value)
    if not math.isfinite(number):
        problems.append((path, "must be a finite number"))
        return None
    return number


def _integer(value: Any, path: str, problems: Problems) -> int | None:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        problems.append((path, "must be an integer"))
        return None
    if not -_INT64 <= value < _INT64:
        problems.append((path, "is out of range"))
        return None
    return value


def _boolean(value: Any, path: str, problems: Problems) -> bool | None:
    if not isinstance(value, bool):
        problems.append((path, "must be true or false"))
        return None
    return value


_CHECKS: dict[str, Any] = {
    _STRING: _string,
    _NUMBER: _number,
    _INTEGER: _integer,
    _BOOLEAN: _boolean,
}


def _timestamp(value: Any, path: str, problems: Problems) -> timestamp_pb2.Timestamp | None:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            problems.append((path, "is not an ISO-8601 date and time"))
            return None
    if not isinstance(value, datetime):
        problems.append((path, "must be an ISO-8601 string or a datetime"))
        return None
    if value.tzinfo is None or value.utcoffset() is None:
        problems.append((path, "needs a UTC offset, e.g. 2026-05-04T10:15:00Z"))
        return None
    delta: timedelta = value - _EPOCH
    return timestamp_pb2.Timestamp(
        seconds=delta.days * 86400 + delta.seconds, nanos=delta.microseconds * 1000
    )


def struct(name: str, values: Mapping[str, Any]) -> struct_pb2.Struct:
    """A Struct of ``values``; ``InvalidArgument`` for values a Struct cannot carry."""
    message = struct_pb2.Struct()
    try:
        message.update(values)
    except (TypeError, ValueError, AttributeError) as e:
        raise InvalidArgument(f"{name}: {e}", violations=[(name, str(e))]) from e
    return message


class BatchStream:
    """The requests of one ``track_stream`` call, converted lazily, batch by batch.

    A batch the client cannot send (or an exception from the caller's iterator) ends
    the stream cleanly instead of cancelling it: the server has committed the batches
    before it, so ``finish`` reports exactly what was stored before raising.
    """

    def __init__(self, batches: Any) -> None:
        self._batches = batches
        self.sent = 0
        self.rejected: InvalidArgument | None = None
        self.failure: BaseException | None = None

    def _convert(self, batch: Any) -> pb.TrackRequest | None:
        try:
            request = track_request(batch, f"batches[{self.sent}].events")
        except InvalidArgument as e:
            self.rejected = e
            return None
        self.sent += 1
        return request

    def __iter__(self) -> Any:
        try:
            for batch in self._batches:
                request = self._convert(batch)
                if request is None:
                    return
                yield request
        # The caller's iterator may raise anything: end the stream cleanly, re-raise after.
        except Exception as e:  # noqa: BLE001
            self.failure = e

    async def __aiter__(self) -> Any:
        try:
            if hasattr(self._batches, "__aiter__"):
                async for batch in self._batches:
                    request = self._convert(batch)
                    if request is None:
                        return
                    yield request
            else:
                for batch in self._batches:
                    request = self._convert(batch)
                    if request is None:
                        return
                    yield request
        except Exception as e:  # noqa: BLE001 - as in __iter__
            self.failure = e

    def finish(self, response: pb.TrackResponse) -> TrackResult:
        """The call's result, or the client-side rejection / caller failure that ended it."""
        if self.failure is not None:
            raise self.failure
        if self.rejected is not None:
            stored = (
                f"earlier batches stored {response.accepted} new events"
                f" and {response.duplicates} duplicates"
                if self.sent
                else "nothing was stored"
            )
            raise BatchRejected(
                f"batch {self.sent} rejected by the client; {stored}",
                violations=self.rejected.violations,
                batch=self.sent,
                accepted=response.accepted,
                duplicates=response.duplicates,
            ) from self.rejected
        return track_result(response)


def track_result(response: pb.TrackResponse) -> TrackResult:
    """The typed result of a Track or TrackStream call."""
    return TrackResult(accepted=response.accepted, duplicates=response.duplicates)


def parse_document(text: str, what: str) -> Any:
    """JSON text the server sent; ``InternalError`` if it is not JSON."""
    try:
        return json.loads(text)
    except ValueError as e:
        raise InternalError(f"the server sent invalid JSON as the {what}: {e}") from e


def profile_result(response: pb.GetProfileResponse) -> dict[str, Any] | None:
    """The profile of a GetProfile call, ``None`` when the visitor is unknown."""
    if not response.found:
        return None
    profile = parse_document(response.profile_json, "profile")
    if not isinstance(profile, dict):
        raise InternalError("the server sent a profile that is not a JSON object")
    return profile
