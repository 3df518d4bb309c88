"""Proto events to the plain dicts ``decision.profile.validate_events`` checks.

The conversion is written out by hand, field by field, rather than through
``json_format``: ingest runs it for every event, and a generic reflection walk costs
several times more per event than reading known attributes.

A converted event has the JSON event shape (the one the JSONL files and the Python
client use)::

    {"event_id": str, "visitor_id": str, "type": "product_view",
     "timestamp": datetime (aware, UTC), "properties": {"sku": ..., "price": ...}}

Unset fields are left out, so the engine reports a missing required field as missing
rather than as an empty string or a zero. What the engine cannot see, this module
checks: the event type must agree with the properties message that is set
(``events[2].properties``), a custom event's Struct must respect the size limits of
``server.limits``, and a Timestamp must be one protobuf defines (``nanos`` 0 to
999,999,999, ``seconds`` within years 1 to 9999: ``events[2].timestamp.nanos``), rather
than be normalised into another moment.

Fast path: almost every batch is valid, so ``convert_batch`` first reads each proto
straight into an ``Event``, checking the engine's rules (``PROPERTY_SCHEMAS``) on the
typed fields, without the intermediate dicts and the engine's type checks that proto
fields make redundant. It only accepts, never reports: at the first doubt (a broken
rule, an unknown type, a repeated event id with other content) it gives up and the
batch takes the path above, which names every problem. A property test checks that
the fast path accepts nothing the engine refuses and yields the engine's events.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from google.protobuf.descriptor import FieldDescriptor

from decision import InvalidRequestError, Problem
from decision.profile import (
    EVENT_TYPES,
    MAX_AMOUNT,
    MAX_COUNT,
    MAX_FUTURE,
    MAX_ID_LENGTH,
    MAX_TEXT_LENGTH,
    MIN_TIMESTAMP,
    PROPERTY_SCHEMAS,
    Event,
    validate_events,
)
from protos import decisioning_pb2 as pb
from server import limits

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MAX_NANOS = 999_999_999
# google.protobuf.Timestamp's documented range: 0001-01-01T00:00:00Z to
# 9999-12-31T23:59:59.999999999Z. Within it the conversion cannot overflow.
_MIN_SECONDS = -62_135_596_800
_MAX_SECONDS = 253_402_300_799

# Built at import, like the Reason table in server.api.decision_service: an event type the proto
# lacks (or the reverse) fails loudly here rather than per call.
TYPE_NAMES: dict[int, str] = {pb.EventType.Value(f"EVENT_TYPE_{t.upper()}"): t for t in EVENT_TYPES}
"""EventType enum number -> the engine's type name."""

PROPERTIES_FIELD: dict[str, str] = {
    "session_start": "session_start",
    "page_view": "page_view",
    "product_view": "product_view",
    "add_to_cart": "cart",
    "remove_from_cart": "cart",
    "purchase": "purchase",
    "return": "order_return",
    "campaign_impression": "campaign",
    "campaign_click": "campaign",
    "campaign_conversion": "campaign",
    "identify": "identify",
    "custom": "custom",
}
"""Event type -> the ``Event.properties`` oneof field it carries."""

OPTIONAL_PROPERTIES = frozenset({"session_start", "page_view"})
"""Types whose properties message may be left out altogether."""

if set(PROPERTIES_FIELD) != set(EVENT_TYPES):  # pragma: no cover - a wiring bug
    raise RuntimeError("server.api.event_messages.PROPERTIES_FIELD does not cover decision.profile.EVENT_TYPES")


def event_time(stamp: Any) -> datetime:
    """An aware UTC datetime from a proto Timestamp, without ``ToDatetime``'s overhead.

    ``timedelta`` is called positionally: with keywords it costs three times as much,
    and this runs once per ingested event."""
    return _EPOCH + timedelta(0, stamp.seconds, stamp.nanos // 1000)


def _session_start(m: pb.SessionStart) -> dict[str, Any]:
    d: dict[str, Any] = {}
    if m.referrer:
        d["referrer"] = m.referrer
    if m.landing_page:
        d["landing_page"] = m.landing_page
    if m.utm_source:
        d["utm_source"] = m.utm_source
    if m.utm_medium:
        d["utm_medium"] = m.utm_medium
    if m.utm_campaign:
        d["utm_campaign"] = m.utm_campaign
    return d


def _page_view(m: pb.PageView) -> dict[str, Any]:
    d: dict[str, Any] = {}
    if m.url:
        d["url"] = m.url
    if m.title:
        d["title"] = m.title
    if m.referrer:
        d["referrer"] = m.referrer
    if m.page_type:
        d["page_type"] = m.page_type
    if m.category:
        d["category"] = m.category
    return d


def _product_view(m: pb.ProductView) -> dict[str, Any]:
    d: dict[str, Any] = {}
    if m.sku:
        d["sku"] = m.sku
    if m.category:
        d["category"] = m.category
    if m.brand:
        d["brand"] = m.brand
    if m.HasField("price"):
        d["price"] = m.price
    if m.HasField("on_sale"):
        d["on_sale"] = m.on_sale
    return d


def _cart(m: pb.CartChange) -> dict[str, Any]:
    d: dict[str, Any] = {}
    if m.sku:
        d["sku"] = m.sku
    if m.HasField("quantity"):
        d["quantity"] = m.quantity
    if m.HasField("price"):
        d["price"] = m.price
    return d


def _purchase(m: pb.Purchase) -> dict[str, Any]:
    d: dict[str, Any] = {}
    if m.order_id:
        d["order_id"] = m.order_id
    if m.HasField("value"):
        d["value"] = m.value
    if m.currency:
        d["currency"] = m.currency
    if m.HasField("articles"):
        d["articles"] = m.articles
    return d


def _order_return(m: pb.OrderReturn) -> dict[str, Any]:
    d: dict[str, Any] = {}
    if m.order_id:
        d["order_id"] = m.order_id
    if m.HasField("articles"):
        d["articles"] = m.articles
    return d


def _campaign(m: pb.CampaignInteraction) -> dict[str, Any]:
    d: dict[str, Any] = {}
    if m.decision_id:
        d["decision_id"] = m.decision_id
    if m.campaign:
        d["campaign"] = m.campaign
    if m.variant:
        d["variant"] = m.variant
    if m.HasField("value"):
        d["value"] = m.value
    return d


def _identify(m: pb.Identify) -> dict[str, Any]:
    return {"customer_id": m.customer_id} if m.customer_id else {}


_CONVERTERS: dict[str, Any] = {
    "session_start": _session_start,
    "page_view": _page_view,
    "product_view": _product_view,
    "cart": _cart,
    "purchase": _purchase,
    "order_return": _order_return,
    "campaign": _campaign,
    "identify": _identify,
}


def to_raw(message: pb.Event, path: str, problems: list[Problem]) -> dict[str, Any]:
    """One proto event as a raw event dict; problems the engine cannot see are appended
    with ``path`` (``events[3]``) as their prefix."""
    raw: dict[str, Any] = {"event_id": message.event_id, "visitor_id": message.visitor_id}
    type_number = message.type
    type_name = TYPE_NAMES.get(type_number)
    if type_name is not None:
        raw["type"] = type_name
    elif type_number == 0:
        problems.append(Problem(f"{path}.type", "is required"))
    else:
        problems.append(Problem(f"{path}.type", f"unknown event type {type_number}"))
    if message.HasField("timestamp"):
        stamp = message.timestamp
        if not 0 <= stamp.nanos <= _MAX_NANOS:
            problems.append(Problem(f"{path}.timestamp.nanos", f"must be from 0 to {_MAX_NANOS}"))
        elif not _MIN_SECONDS <= stamp.seconds <= _MAX_SECONDS:
            problems.append(
                Problem(
                    f"{path}.timestamp.seconds",
                    f"must be from {_MIN_SECONDS} to {_MAX_SECONDS} (years 1 to 9999)",
                )
            )
        else:
            raw["timestamp"] = event_time(stamp)
    field = message.WhichOneof("properties")
    if field is None:
        properties: dict[str, Any] = {}
    elif field == "custom":
        custom = message.custom
        properties = {}
        if custom.name:
            properties["name"] = custom.name
        if custom.HasField("properties"):
            properties["properties"] = limits.struct_to_dict(
                custom.properties, f"{path}.properties.properties", problems
            )
    else:
        properties = _CONVERTERS[field](getattr(message, field))
    raw["properties"] = properties
    if type_name is not None:
        expected = PROPERTIES_FIELD[type_name]
        if field != expected and not (field is None and type_name in OPTIONAL_PROPERTIES):
            got = "none" if field is None else field
            problems.append(
                Problem(
                    f"{path}.properties",
                    f"a {type_name} event carries {expected} properties, got {got}",
                )
            )
    return raw


def convert_batch(
    messages: Sequence[pb.Event], now: datetime, *, max_events: int, path: str = "events"
) -> list[Event]:
    """Convert and validate one batch; ``InvalidRequestError`` naming every bad event.

    ``path`` prefixes every problem (``batches[2].events`` for a streamed batch).
    The engine validates the events this module could convert; its problems are
    renumbered so that each names the event's index in the request.
    """
    count = len(messages)
    if count == 0:
        raise InvalidRequestError([Problem(path, "at least one event is required")])
    if count > max_events:
        raise InvalidRequestError(
            [Problem(path, f"{count} events in one batch; at most {max_events}")]
        )
    if now.tzinfo is not None:
        valid = valid_batch(messages, now)
        if valid is not None:
            return valid
    return _checked_batch(messages, now, path)


def _checked_batch(messages: Sequence[pb.Event], now: datetime, path: str) -> list[Event]:
    """The thorough path: raw dicts through ``validate_events``, every problem named."""
    count = len(messages)
    problems: list[Problem] = []
    raws: list[dict[str, Any]] = []
    bad: set[int] = set()
    for i, message in enumerate(messages):
        before = len(problems)
        raws.append(to_raw(message, f"{path}[{i}]", problems))
        if len(problems) != before:
            bad.add(i)
    if not bad:
        try:
            return validate_events(raws, now)
        except InvalidRequestError as e:
            raise InvalidRequestError(_prefixed(e.problems, path)) from None
    # Let the engine check the events that converted, then put every problem back at
    # its event's index in the request.
    kept = [i for i in range(count) if i not in bad]
    try:
        validate_events([raws[i] for i in kept], now)
    except InvalidRequestError as e:
        problems += _renumbered(e.problems, kept, path)
    problems.sort(key=lambda p: _index_of(p.path, path))
    raise InvalidRequestError(problems)


def _rebase(problem_path: str, path: str) -> str:
    """``events[3].type`` -> ``batches[1].events[3].type`` for ``path`` ``batches[1].events``."""
    if path == "events" or not problem_path.startswith("events"):
        return problem_path
    return path + problem_path[len("events") :]


def _prefixed(problems: Sequence[Problem], path: str) -> list[Problem]:
    return [Problem(_rebase(p.path, path), p.message) for p in problems]


def _renumbered(problems: Sequence[Problem], kept: list[int], path: str) -> list[Problem]:
    """Engine problems about ``events[j]`` of the kept sublist, as ``path[kept[j]]``."""
    result = []
    for p in problems:
        j = _index_of(p.path, "events")
        if 0 <= j < len(kept):
            rest = p.path[p.path.index("]") + 1 :]
            result.append(Problem(f"{path}[{kept[j]}]{rest}", p.message))
        else:
            result.append(Problem(_rebase(p.path, path), p.message))
    return result


def _index_of(problem_path: str, prefix: str) -> int:
    """3 for ``events[3].type`` with prefix ``events``; -1 when there is no index."""
    if not problem_path.startswith(prefix + "["):
        return -1
    end = problem_path.find("]", len(prefix))
    try:
        return int(problem_path[len(prefix) + 1 : end])
    except ValueError:
        return -1


# -- fast path --------------------------------------------------------------------------

_CPP = FieldDescriptor
_KINDS = {  # property kind -> the proto field types the fast path checks it on
    "id": {_CPP.CPPTYPE_STRING},
    "text": {_CPP.CPPTYPE_STRING},
    "currency": {_CPP.CPPTYPE_STRING},
    "amount": {_CPP.CPPTYPE_DOUBLE},
    "count": {_CPP.CPPTYPE_INT64, _CPP.CPPTYPE_INT32},
    "bool": {_CPP.CPPTYPE_BOOL},
}

_Check = tuple[str, str, bool, bool]  # property, kind, required, field has presence


def _plans() -> dict[int, tuple[str, str | None, tuple[_Check, ...]]]:
    """EventType number -> (type name, oneof field, checks in field order); the oneof
    field is None for types the fast path leaves to the engine (custom)."""
    plans: dict[int, tuple[str, str | None, tuple[_Check, ...]]] = {}
    for number, type_name in TYPE_NAMES.items():
        field = PROPERTIES_FIELD[type_name]
        schema = PROPERTY_SCHEMAS[type_name]
        if any(kind not in _KINDS for kind, _ in schema.values()):
            plans[number] = (type_name, None, ())
            continue
        descriptor = pb.Event.DESCRIPTOR.fields_by_name[field].message_type
        assert descriptor is not None  # every oneof member is a message
        for f in descriptor.fields:
            if f.name not in schema or f.cpp_type not in _KINDS[schema[f.name][0]]:
                raise RuntimeError(  # pragma: no cover - a wiring bug
                    f"server.api.event_messages: {field}.{f.name} does not fit {type_name}'s schema"
                )
        if len(descriptor.fields) != len(schema):  # pragma: no cover - a wiring bug
            raise RuntimeError(f"server.api.event_messages: {field} lacks properties of {type_name}")
        # Declaration order: the order to_raw fills the properties dict in.
        checks = tuple((f.name, *schema[f.name], f.has_presence) for f in descriptor.fields)
        plans[number] = (type_name, field, checks)
    return plans


_PLANS = _plans()


def valid_batch(messages: Sequence[pb.Event], now: datetime) -> list[Event] | None:
    """The batch's events if every one is plainly valid, else None (then ask
    ``validate_events``, which explains). ``now`` is aware."""
    latest = now + MAX_FUTURE
    events: list[Event] = []
    seen: dict[str, Event] = {}
    for message in messages:
        event = _valid_event(message, latest, now)
        if event is None:
            return None
        earlier = seen.setdefault(event.event_id, event)
        if earlier is not event and earlier != event:
            return None  # repeated with other content: the engine names both
        events.append(event)
    return events


def _valid_event(message: pb.Event, latest: datetime, now: datetime) -> Event | None:
    plan = _PLANS.get(message.type)
    if plan is None:
        return None
    type_name, field, checks = plan
    if field is None:
        return _engine_event(message, now)
    event_id = message.event_id
    visitor_id = message.visitor_id
    if not (0 < len(event_id) <= MAX_ID_LENGTH) or event_id.isspace():
        return None
    if not (0 < len(visitor_id) <= MAX_ID_LENGTH) or visitor_id.isspace():
        return None
    # isprintable() is stricter than the engine's rule (it also refuses, say, a
    # no-break space) and several times cheaper than a search: what it doubts goes to
    # the engine, which decides.
    if not (event_id.isprintable() and visitor_id.isprintable()):
        return None
    if not message.HasField("timestamp"):
        return None
    stamp = message.timestamp
    if not 0 <= stamp.nanos <= _MAX_NANOS:
        return None
    try:
        moment = _EPOCH + timedelta(0, stamp.seconds, stamp.nanos // 1000)
    except OverflowError:
        return None
    if not MIN_TIMESTAMP <= moment <= latest:
        return None
    set_field = message.WhichOneof("properties")
    if set_field == field:
        properties = _valid_properties(getattr(message, field), checks)
        if properties is None:
            return None
        if type_name == "identify" and properties["customer_id"] == visitor_id:
            return None
    elif set_field is None and type_name in OPTIONAL_PROPERTIES:
        properties = {}
    else:
        return None
    return Event(event_id, visitor_id, type_name, moment, properties)


def _valid_properties(message: Any, checks: tuple[_Check, ...]) -> dict[str, Any] | None:
    properties: dict[str, Any] = {}
    for name, kind, required, presence in checks:
        if presence:
            if not message.HasField(name):
                if required:
                    return None
                continue
            value = getattr(message, name)
        else:
            value = getattr(message, name)
            if not value:  # an unset string: to_raw leaves it out
                if required:
                    return None
                continue
        if kind == "id":
            if len(value) > MAX_ID_LENGTH or value.isspace() or not value.isprintable():
                return None
        elif kind == "text":
            if len(value) > MAX_TEXT_LENGTH:
                return None
        elif kind == "amount":
            if not 0.0 <= value <= MAX_AMOUNT:  # also refuses NaN
                return None
        elif kind == "count":
            if not 0 <= value <= MAX_COUNT:
                return None
        elif kind == "bool":
            pass  # a proto bool is true or false
        elif len(value) == 3 and value.isascii() and value.isalpha():  # currency
            value = value.upper()
        else:
            return None
        properties[name] = value
    return properties


def _engine_event(message: pb.Event, now: datetime) -> Event | None:
    """A type the fast path does not check itself (custom: a Struct) through the
    engine, alone; None if anything is wrong with it."""
    problems: list[Problem] = []
    raw = to_raw(message, "events[0]", problems)
    if problems:
        return None
    try:
        (event,) = validate_events([raw], now)
    except InvalidRequestError:
        return None
    return event
