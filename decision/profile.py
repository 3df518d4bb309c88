"""Visitor profiles from behavioural events: validation, and an order-independent fold.

``validate_events(raw, now)`` turns a batch of raw event objects into ``Event`` values or
raises ``InvalidRequestError`` listing every problem of every event (``events[3].
properties.price: must be >= 0``), so a batch is stored whole or not at all.

A profile is kept as a JSON-serializable *state*: ``new_state()``, ``apply(state,
event)`` (mutates), and ``render(state)`` gives the profile document the segments read
(README, "The profile document"). ``rebuild(events)`` folds a whole event log in
``(timestamp, event_id)`` order.

THE INVARIANT: for a set of events with distinct ``event_id`` s, applying them in any
order gives a state whose ``render`` equals ``render(rebuild(events))``. The state is
built for that; every aggregate is one of:

- a counter (``visits``: session_start events) — commutative. It is the one aggregate
  that is not idempotent: applying the same event twice counts twice. Deduplication by
  ``event_id`` is the event log's job (``rebuild`` and the store drop repeated ids);
  keeping every session id in the state would make it grow without bound.
- a min/max (``first_seen``, ``last_seen``; every event except ``set_attributes``,
  which records a shop's write, and ``campaign_served``, which records the server's
  own decision: neither is visitor activity).
- a bounded "most recent" map value -> latest timestamp (categories, brands, products,
  campaigns seen/clicked/converted). When it is over its bound the entry with the
  smallest ``(timestamp, value)`` is evicted. That is exact incrementally: an entry's
  key only grows, so an entry of the true top N can only be evicted by N entries with
  larger keys, which would then be the top N.
- a bounded map keyed by an id whose entries carry the ``(timestamp, event_id)`` of the
  event that wrote them, kept the same way (the entry with the smallest ``(timestamp,
  event_id, id)`` is evicted): orders by ``order_id`` (``MAX_ORDERS``), returns by
  ``event_id`` (``MAX_RETURNS``). A purchase whose ``order_id`` is already known
  replaces it when its ``(timestamp, event_id)`` is larger: the latest purchase of an
  order wins (an order sent again, say corrected, counts once with its latest values).
  Keeping the *earliest* instead, as state version 1 did, cannot be bounded: an order
  evicted early could no longer win against a later purchase of it, and the result
  would depend on arrival order. The customer segment aggregates therefore cover the
  most recent ``MAX_ORDERS`` orders and ``MAX_RETURNS`` returns.
- last-writer-wins per attribute by ``(timestamp, event_id)``; a ``null`` value removes
  the attribute (the tombstone stays in the state, so an older write cannot revive it).
  At most ``MAX_ATTRIBUTES`` names, tombstones included, are kept, as above.
- the cart: every purchase event (duplicate order or not: the visitor checked out)
  raises a cutoff ``(timestamp, event_id)``, a max. Cart events at or below the cutoff
  are dropped, the others are kept by ``event_id`` and replayed in ``(timestamp,
  event_id)`` order when rendering. The cutoff only grows, so dropping is safe. Only the
  ``MAX_CART_EVENTS`` most recent are kept (evicted as above): a raised cutoff removes
  a set of the oldest, so what remains is still the true most recent.

Numbers are bounded on the way in (``MAX_AMOUNT``, ``MAX_COUNT``, ``MAX_EXACT_INTEGER``)
and again in the fold: an event log may hold events stored before those bounds existed
(a purchase of 1e308 made the sums overflow), so ``apply`` clamps an amount or a count
into its bound and counts what is not a number as 0. ``apply``, ``rebuild`` and
``render`` never raise for such events; ``STATE_VERSION`` 2 makes stores rebuild the
states of version 1 from the log, which heals a profile that held such a value.

Sums of money are taken with ``math.fsum`` over the stored items in a fixed order, so a
float total does not depend on the order events arrived in. Timestamps in the state are
integer microseconds since 1970-01-01 UTC (compact, exact, cheap to compare); the
document renders them as fixed-width ISO-8601 UTC strings (``2026-11-09T10:00:00.000000Z``),
which sort like the moments they name.

Rendering rules: a field the visitor has no data for is absent, not zero. Money values
are summed as sent (``currency`` is kept in the event log, not converted). The ratio of
returned articles counts, per known order, at most the articles that order had;
returns of orders we never saw count in ``returns_number_total`` only. ``cart`` is
present while there are cart events after the latest purchase (``items`` may then be
empty, if they cancel out).

Engagement and activity (their own modules, each keeping the invariant above):

- ``engagement``: sessions derived from the stream (``decision.sessions``). Exact in any
  order for events at most 3 days behind the visitor's latest activity; an event behind
  activity the fold has already compacted cannot be placed, and the fold marks the state
  for a rebuild from the event log (``needs_rebuild``).
- ``activity``: the events the rules' activity clauses read (``decision.retention``).
  ``apply``, ``rebuild`` and ``backfill`` take the ruleset's declaration
  (``Ruleset.activity``); with none (the default) nothing is kept.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Any

from decision.errors import InvalidRequestError, Problem
from decision.model import JSON, MAX_EXACT_INTEGER
from decision.retention import (
    NO_ACTIVITY,
    SESSION,
    ActivityNeeds,
    new_activity,
    prune,
    render_activity,
    retain,
    use_needs,
)
from decision.retention import covers as _covers
from decision.sessions import (
    NOT_ACTIVITY,
    PAGE_TYPES,
    new_engagement,
    observe,
    render_engagement,
    session_properties,
)

__all__ = [
    "CONTROL_CHARACTERS",
    "EVENT_TYPES",
    "INTERNAL_EVENT_TYPES",
    "MAX_FUTURE",
    "MIN_TIMESTAMP",
    "PROPERTY_SCHEMAS",
    "Event",
    "apply",
    "backfill",
    "control_character_problem",
    "covers",
    "format_timestamp",
    "needs_rebuild",
    "new_state",
    "rebuild",
    "render",
    "validate_events",
]

# -- limits ---------------------------------------------------------------------------

MAX_FUTURE = timedelta(hours=24)
"""How far past ``now`` an event's timestamp may be (client clocks drift)."""

MIN_TIMESTAMP = datetime(2000, 1, 1, tzinfo=UTC)
"""Events before this are refused: such a timestamp is a bug, not history."""

MAX_ID_LENGTH = 256
"""Longest event id, visitor id, order id, sku, category, campaign id, ..."""

MAX_TEXT_LENGTH = 2048
"""Longest free text property (``url``, ``title``, ``referrer``)."""

MAX_OBJECT_KEYS = 64
"""Most keys in a ``custom`` event's ``properties`` or a ``set_attributes`` object."""

MAX_OBJECT_BYTES = 8192
"""Largest such object, serialized as compact UTF-8 JSON."""

MAX_OBJECT_DEPTH = 4
"""Deepest nesting of such an object: the object itself is depth 1."""

MAX_CATEGORIES = 20
MAX_BRANDS = 20
MAX_PRODUCTS = 50
MAX_CAMPAIGNS = 50
"""Bounds of the "most recent first" lists of the profile document."""

MAX_AMOUNT = 1_000_000_000_000
"""Largest money amount (purchase ``value``, ``price``, campaign ``value``), in the
currency's units: above the price of anything sold online in any currency (10^12
Vietnamese dong are about 40 million US dollars), and small enough that the sums of a
profile stay far inside a double's range (``MAX_ORDERS`` orders total at most 10^15)."""

MAX_COUNT = 1_000_000
"""Largest ``articles`` of a purchase or return and ``quantity`` of a cart change: more
than any one order a shop ships; a cart line adds up at most ``MAX_CART_EVENTS`` of
them, far below 2**53."""

MAX_ORDERS = 1000
"""Orders a profile keeps, the most recent: three years of daily orders. Aggregates of
``customer_segment`` cover these."""

MAX_RETURNS = 1000
"""Returns a profile keeps, the most recent."""

MAX_CART_EVENTS = 200
"""Cart changes since the latest purchase a profile keeps, the most recent: a cart is
rebuilt from these."""

MAX_ATTRIBUTES = 128
"""Attribute names (removed ones included) a profile keeps, the most recently written:
a shop sets a few dozen at most."""

STATE_VERSION = 3
"""Stored in every state; a store rebuilds states of another version from the log.
2: bounded orders, returns, cart and attributes, an order's latest purchase wins,
numbers clamped. 3: engagement and activity."""

CONTROL_CHARACTERS = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
"""What no id and no object key may hold: C0 and C1 control characters (NUL, newline,
escape, DEL, ...) and unpaired surrogates. They make ids that print alike but differ,
break logs and exports, and a surrogate cannot be stored as UTF-8."""

_NEEDS_REBUILD = 0
"""The version a state is marked with when the fold could not place an event exactly:
a store rebuilds it like a state of another version (``needs_rebuild``)."""

# -- event types ----------------------------------------------------------------------

_ID = "id"  # non-empty string, at most MAX_ID_LENGTH
_TEXT = "text"  # string, at most MAX_TEXT_LENGTH
_AMOUNT = "amount"  # finite number >= 0
_COUNT = "count"  # integer >= 0 (an integral float such as 2.0 is accepted)
_CURRENCY = "currency"  # three letters, ISO 4217 style
_OBJECT = "object"  # a JSON object within the MAX_OBJECT_* limits
_BOOL = "bool"  # true or false

_Spec = dict[str, tuple[str, bool]]  # property -> (kind, required)

_CART: _Spec = {"sku": (_ID, True), "quantity": (_COUNT, False), "price": (_AMOUNT, False)}
_CAMPAIGN: _Spec = {
    "campaign": (_ID, True),
    "decision_id": (_ID, False),
    "variant": (_ID, False),
    "value": (_AMOUNT, False),
}

_SCHEMAS: dict[str, _Spec] = {
    "session_start": {
        "referrer": (_TEXT, False),
        "landing_page": (_TEXT, False),
        "utm_source": (_ID, False),
        "utm_medium": (_ID, False),
        "utm_campaign": (_ID, False),
    },
    "page_view": {
        "url": (_TEXT, False),
        "title": (_TEXT, False),
        "referrer": (_TEXT, False),
        "page_type": (_ID, False),
        "category": (_ID, False),
    },
    "product_view": {
        "sku": (_ID, True),
        "category": (_ID, False),
        "brand": (_ID, False),
        "price": (_AMOUNT, False),
        "on_sale": (_BOOL, False),
    },
    "add_to_cart": _CART,
    "remove_from_cart": _CART,
    "purchase": {
        "order_id": (_ID, True),
        "value": (_AMOUNT, True),
        "currency": (_CURRENCY, False),
        "articles": (_COUNT, True),
    },
    "return": {"order_id": (_ID, True), "articles": (_COUNT, True)},
    "campaign_impression": _CAMPAIGN,
    "campaign_click": _CAMPAIGN,
    "campaign_conversion": _CAMPAIGN,
    "identify": {"customer_id": (_ID, True)},
    "custom": {"name": (_ID, True), "properties": (_OBJECT, False)},
    "set_attributes": {"attributes": (_OBJECT, True)},
    "campaign_served": {
        "campaign": (_ID, True),
        "variant": (_ID, False),
        "decision_id": (_ID, False),
        "channel": (_ID, False),
    },
}

INTERNAL_EVENT_TYPES = ("set_attributes", "campaign_served")
"""Types the service records itself (SetAttributes; the first time a decision served a
campaign's variant to the visitor); ``Track`` refuses them."""

_NOT_SEEN = frozenset(INTERNAL_EVENT_TYPES)
"""Types that do not move ``first_seen`` and ``last_seen``: the visitor did nothing."""

EVENT_TYPES = tuple(t for t in _SCHEMAS if t not in INTERNAL_EVENT_TYPES)
"""The event types a storefront may track."""

PROPERTY_SCHEMAS: Mapping[str, Mapping[str, tuple[str, bool]]] = MappingProxyType(
    {kind: MappingProxyType(schema) for kind, schema in _SCHEMAS.items()}
)
"""Event type -> property -> ``(kind, required)``, read-only. Kinds: ``"id"`` (non-empty,
not only whitespace, at most MAX_ID_LENGTH), ``"text"`` (at most MAX_TEXT_LENGTH),
``"amount"`` (finite, >= 0), ``"count"`` (integral, >= 0), ``"currency"`` (three
letters, stored upper-case), ``"bool"`` (true or false), ``"object"`` (a JSON object
within the MAX_OBJECT_* limits).
For adapters with typed input (``server.events``) that check valid events without
building the raw dicts; ``validate_events`` stays the definition."""

_EVENT_FIELDS = ("event_id", "visitor_id", "type", "timestamp", "properties")


@dataclass(frozen=True, slots=True)
class Event:
    """One validated behavioural event. ``timestamp`` is an aware UTC datetime;
    ``properties`` holds plain JSON values, owned by the event (do not mutate)."""

    event_id: str
    visitor_id: str
    type: str
    timestamp: datetime
    properties: Mapping[str, JSON]

    def as_dict(self) -> dict[str, JSON]:
        """The raw form ``validate_events`` accepts, with the timestamp as a string."""
        return {
            "event_id": self.event_id,
            "visitor_id": self.visitor_id,
            "type": self.type,
            "timestamp": format_timestamp(self.timestamp),
            "properties": dict(self.properties),
        }


def format_timestamp(moment: datetime) -> str:
    """``moment`` (aware) as fixed-width ISO-8601 UTC with microseconds, e.g.
    ``2026-11-09T10:00:00.000000Z``: sorts chronologically."""
    if moment.tzinfo is not UTC:
        moment = moment.astimezone(UTC)
    # isoformat is several times faster than strftime, and faster still without the
    # timespec keyword (which it then leaves out for a whole second); it ends in
    # "+00:00" here.
    if moment.microsecond:
        return moment.isoformat()[:-6] + "Z"
    return moment.isoformat()[:-6] + ".000000Z"


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_DAY_MICROS = 86_400_000_000


def _micros(moment: datetime) -> int:
    return (moment - _EPOCH) // _MICROSECOND


def _iso(micros: int) -> str:
    # Positional timedelta: a third of the keyword form's cost (render calls this often).
    return format_timestamp(_EPOCH + timedelta(0, 0, micros))


# -- validation -----------------------------------------------------------------------


def validate_events(
    raw: Sequence[Mapping[str, JSON]], now: datetime, *, allow_internal: bool = False
) -> list[Event]:
    """Validate a batch; every problem of every event is reported, with its path.

    Raw events have the keys ``event_id``, ``visitor_id``, ``type``, ``timestamp``
    (an ISO-8601 string with an offset, or an aware datetime) and ``properties``
    (optional). ``now`` (aware) bounds timestamps at ``now + MAX_FUTURE``.
    ``allow_internal`` admits the ``INTERNAL_EVENT_TYPES``. Repeating an event id with
    the same content is allowed (the store counts it as a duplicate); with different
    content it is a problem. Raises ``InvalidRequestError``.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    problems: list[Problem] = []
    events: list[Event] = []
    seen: dict[str, tuple[int, Event]] = {}
    latest = now + MAX_FUTURE
    for index, item in enumerate(raw):
        where = f"events[{index}]"
        event = _validate_event(item, where, latest, allow_internal, problems)
        if event is None:
            continue
        earlier = seen.get(event.event_id)
        if earlier is None:
            seen[event.event_id] = (index, event)
        elif earlier[1] != event:
            problems.append(
                Problem(
                    f"{where}.event_id",
                    f"repeats events[{earlier[0]}] with different content",
                )
            )
        events.append(event)
    if problems:
        raise InvalidRequestError(problems)
    return events


def _validate_event(
    item: Any, where: str, latest: datetime, allow_internal: bool, problems: list[Problem]
) -> Event | None:
    if not isinstance(item, Mapping):
        problems.append(Problem(where, "must be an object"))
        return None
    before = len(problems)
    for key in item:
        if key not in _EVENT_FIELDS:
            problems.append(Problem(f"{where}.{key}", "unknown field"))
    event_id = _identifier(item.get("event_id"), f"{where}.event_id", problems)
    visitor_id = _identifier(item.get("visitor_id"), f"{where}.visitor_id", problems)
    timestamp = _timestamp(item.get("timestamp"), f"{where}.timestamp", latest, problems)
    kind = item.get("type")
    schema: _Spec | None = None
    if kind is None or kind == "":
        problems.append(Problem(f"{where}.type", "is required"))
    elif not isinstance(kind, str):
        problems.append(Problem(f"{where}.type", f"must be a string, got {_kind(kind)}"))
    elif kind not in _SCHEMAS or (kind in INTERNAL_EVENT_TYPES and not allow_internal):
        problems.append(
            Problem(
                f"{where}.type",
                f"unknown event type {kind[:MAX_ID_LENGTH]!r}; "
                f"expected one of {', '.join(EVENT_TYPES)}",
            )
        )
    else:
        schema = _SCHEMAS[kind]
    raw_properties = item.get("properties")
    properties: dict[str, JSON] = {}
    if raw_properties is None:
        raw_properties = {}
    if not isinstance(raw_properties, Mapping):
        problems.append(Problem(f"{where}.properties", "must be an object"))
    elif schema is not None:
        properties = _properties(raw_properties, schema, f"{where}.properties", problems)
        if kind == "identify" and properties.get("customer_id") == visitor_id:
            problems.append(
                Problem(f"{where}.properties.customer_id", "must differ from visitor_id")
            )
    if len(problems) > before:
        return None
    assert isinstance(kind, str) and event_id and visitor_id and timestamp
    return Event(event_id, visitor_id, kind, timestamp, properties)


def _identifier(value: Any, path: str, problems: list[Problem]) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        problems.append(Problem(path, "is required"))
    elif not isinstance(value, str):
        problems.append(Problem(path, f"must be a string, got {_kind(value)}"))
    elif len(value) > MAX_ID_LENGTH:
        problems.append(Problem(path, f"must be at most {MAX_ID_LENGTH} characters"))
    elif (problem := control_character_problem(value)) is not None:
        problems.append(Problem(path, problem))
    else:
        return value
    return None


def control_character_problem(text: str) -> str | None:
    """The problem with ``text`` if it holds one of ``CONTROL_CHARACTERS``, else None."""
    if text.isprintable():  # the common case, several times cheaper than a search
        return None
    found = CONTROL_CHARACTERS.search(text)
    if found is None:
        return None
    return f"must not contain control characters ({found.group()!r} at {found.start()})"


def _timestamp(value: Any, path: str, latest: datetime, problems: list[Problem]) -> datetime | None:
    if value is None or value == "":
        problems.append(Problem(path, "is required"))
        return None
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            problems.append(Problem(path, f"is not an ISO-8601 timestamp: {value[:64]!r}"))
            return None
    elif isinstance(value, datetime):
        moment = value
    else:
        problems.append(Problem(path, f"must be an ISO-8601 string, got {_kind(value)}"))
        return None
    if moment.tzinfo is None or moment.utcoffset() is None:
        problems.append(Problem(path, "must carry a UTC offset, e.g. 2026-11-09T10:00:00Z"))
        return None
    moment = moment.astimezone(UTC)
    if moment < MIN_TIMESTAMP:
        problems.append(Problem(path, f"is before {MIN_TIMESTAMP.date().isoformat()}"))
        return None
    if moment > latest:
        hours = int(MAX_FUTURE.total_seconds() // 3600)
        problems.append(Problem(path, f"is more than {hours} hours in the future"))
        return None
    return moment


def _properties(
    raw: Mapping[str, Any], schema: _Spec, where: str, problems: list[Problem]
) -> dict[str, JSON]:
    properties: dict[str, JSON] = {}
    for key, value in raw.items():
        path = f"{where}.{key}"
        spec = schema.get(key) if isinstance(key, str) else None
        if spec is None:
            expected = ", ".join(schema) or "none"
            problems.append(Problem(path, f"unknown property (expected: {expected})"))
            continue
        if value is None:
            continue  # an explicit null is an absent optional property
        checked = _property(value, spec[0], path, problems)
        if checked is not None:
            properties[key] = checked
    for key, (_, required) in schema.items():
        if required and raw.get(key) is None:
            problems.append(Problem(f"{where}.{key}", "is required"))
    return properties


def _property(value: Any, kind: str, path: str, problems: list[Problem]) -> JSON:
    if kind == _ID:
        return _identifier(value, path, problems)
    if kind == _TEXT:
        if not isinstance(value, str):
            problems.append(Problem(path, f"must be a string, got {_kind(value)}"))
        elif len(value) > MAX_TEXT_LENGTH:
            problems.append(Problem(path, f"must be at most {MAX_TEXT_LENGTH} characters"))
        else:
            return value
        return None
    if kind == _CURRENCY:
        if not (isinstance(value, str) and len(value) == 3 and value.isascii() and value.isalpha()):
            problems.append(Problem(path, "must be a three-letter currency code"))
            return None
        return value.upper()
    if kind in (_AMOUNT, _COUNT):
        return _number(value, kind == _COUNT, path, problems)
    if kind == _BOOL:
        if type(value) is not bool:
            problems.append(Problem(path, f"must be true or false, got {_kind(value)}"))
            return None
        return value
    # Attribute names become dotted paths (attributes.loyalty_tier): no dots, no $.
    return _object(value, path, problems, addressable=path.endswith(".attributes"))


def _number(value: Any, integer: bool, path: str, problems: list[Problem]) -> JSON:
    if isinstance(value, bool) or not isinstance(value, int | float):
        problems.append(Problem(path, f"must be a number, got {_kind(value)}"))
        return None
    if not math.isfinite(value):
        problems.append(Problem(path, "must be a finite number"))
        return None
    if integer and value != int(value):
        problems.append(Problem(path, "must be an integer"))
        return None
    if value < 0:
        problems.append(Problem(path, "must be >= 0"))
        return None
    limit = MAX_COUNT if integer else MAX_AMOUNT
    if value > limit:
        problems.append(Problem(path, f"must be <= {limit}"))
        return None
    # Counts arrive as doubles from protobuf Structs: store 2.0 as 2.
    return int(value) if integer else value


def _object(value: Any, path: str, problems: list[Problem], *, addressable: bool) -> JSON:
    if not isinstance(value, Mapping):
        problems.append(Problem(path, f"must be an object, got {_kind(value)}"))
        return None
    if len(value) > MAX_OBJECT_KEYS:
        problems.append(Problem(path, f"must have at most {MAX_OBJECT_KEYS} keys"))
        return None
    before = len(problems)
    _check_json(value, path, 1, addressable, problems)
    if len(problems) > before:
        return None
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    if len(text.encode("utf-8")) > MAX_OBJECT_BYTES:
        problems.append(Problem(path, f"must be at most {MAX_OBJECT_BYTES} bytes as JSON"))
        return None
    copied: JSON = json.loads(text)  # plain dicts and lists, owned by the event
    return copied


def _check_json(
    value: Any, path: str, depth: int, addressable: bool, problems: list[Problem]
) -> None:
    """Only JSON values, nested at most MAX_OBJECT_DEPTH containers deep; with
    ``addressable``, keys a filter can name (no '.', no leading '$')."""
    if isinstance(value, Mapping | list | tuple) and depth > MAX_OBJECT_DEPTH:
        problems.append(Problem(path, f"nests deeper than {MAX_OBJECT_DEPTH} levels"))
    elif isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str) or not key:
                problems.append(Problem(path, "keys must be non-empty strings"))
                continue
            if CONTROL_CHARACTERS.search(key):
                problems.append(Problem(path, f"key {key!r} must not contain control characters"))
                continue
            if addressable and ("." in key or key.startswith("$")):
                problems.append(
                    Problem(f"{path}.{key}", "a key must not contain '.' or start with '$'")
                )
                continue
            _check_json(item, f"{path}.{key}", depth + 1, addressable, problems)
    elif isinstance(value, list | tuple):
        for position, item in enumerate(value):
            _check_json(item, f"{path}[{position}]", depth + 1, addressable, problems)
    elif isinstance(value, float) and not math.isfinite(value):
        problems.append(Problem(path, "must be a finite number"))
    elif type(value) is int and not -MAX_EXACT_INTEGER <= value <= MAX_EXACT_INTEGER:
        bound = MAX_EXACT_INTEGER
        problems.append(Problem(path, f"must be an integer from {-bound} to {bound}"))
    elif value is not None and not isinstance(value, str | int | float | bool):
        problems.append(Problem(path, f"is not a JSON value ({_kind(value)})"))


def _kind(value: Any) -> str:
    return type(value).__name__


# -- aggregation ----------------------------------------------------------------------

_TOPS = {
    "categories": MAX_CATEGORIES,
    "brands": MAX_BRANDS,
    "products": MAX_PRODUCTS,
    "seen": MAX_CAMPAIGNS,
    "clicked": MAX_CAMPAIGNS,
    "converted": MAX_CAMPAIGNS,
}
_CAMPAIGN_LISTS = {
    "campaign_impression": "seen",
    "campaign_click": "clicked",
    "campaign_conversion": "converted",
}


def new_state() -> dict[str, Any]:
    """An empty profile state: JSON-serializable, owned by the caller."""
    return {
        "v": STATE_VERSION,
        "visits": 0,
        "first_seen": None,
        "last_seen": None,
        # order_id -> [timestamp, event_id, value, articles]
        "orders": {},
        # event_id -> [timestamp, order_id, articles]
        "returns": {},
        # [timestamp, event_id] of the latest purchase event, or None
        "cart_cutoff": None,
        # event_id -> [timestamp, "add" | "remove", sku, quantity | None, price | None]
        "cart": {},
        # value -> latest timestamp, bounded by _TOPS
        **{name: {} for name in _TOPS},
        # attribute -> [timestamp, event_id, value]; value None is a removal
        "attributes": {},
        # sessions: decision.sessions
        "engagement": new_engagement(),
        # events the rules' activity clauses read: decision.retention
        "activity": new_activity(),
    }


def apply(state: dict[str, Any], event: Event, needs: ActivityNeeds = NO_ACTIVITY) -> None:
    """Fold one event into ``state``. Each distinct ``event_id`` must be applied once.

    ``needs`` is the ruleset's activity declaration: what of the event to keep for its
    activity clauses. After this, ``needs_rebuild(state)`` may ask for a rebuild.
    """
    ts = _micros(event.timestamp)
    key = [ts, event.event_id]
    props = event.properties
    kind = event.type
    if kind not in _NOT_SEEN:
        if state["first_seen"] is None or ts < state["first_seen"]:
            state["first_seen"] = ts
        if state["last_seen"] is None or ts > state["last_seen"]:
            state["last_seen"] = ts
    _apply_activity(state, kind, ts, props, needs)
    if kind == "session_start":
        state["visits"] += 1
    elif kind == "page_view":
        if "category" in props:
            _touch(state, "categories", props["category"], ts)
    elif kind == "product_view":
        _touch(state, "products", props["sku"], ts)
        if "category" in props:
            _touch(state, "categories", props["category"], ts)
        if "brand" in props:
            _touch(state, "brands", props["brand"], ts)
    elif kind in ("add_to_cart", "remove_from_cart"):
        cutoff = state["cart_cutoff"]
        if cutoff is None or key > cutoff:
            quantity = props.get("quantity")
            if quantity is None and kind == "add_to_cart":
                quantity = 1
            price = props.get("price")
            cart = state["cart"]
            cart[event.event_id] = [
                ts,
                "add" if kind == "add_to_cart" else "remove",
                props["sku"],
                None if quantity is None else _count(quantity),
                None if price is None else _amount(price),
            ]
            if len(cart) > MAX_CART_EVENTS:
                _forget_oldest(cart, MAX_CART_EVENTS, _by_event)
    elif kind == "purchase":
        order = [ts, event.event_id, _amount(props.get("value")), _count(props.get("articles"))]
        orders = state["orders"]
        known = orders.get(props["order_id"])
        if known is None or order[:2] > known[:2]:
            orders[props["order_id"]] = order
            if len(orders) > MAX_ORDERS:
                _forget_oldest(orders, MAX_ORDERS, _by_write)
        cutoff = state["cart_cutoff"]
        if cutoff is None or key > cutoff:
            state["cart_cutoff"] = key
            state["cart"] = {
                eid: item for eid, item in state["cart"].items() if [item[0], eid] > key
            }
    elif kind == "return":
        returns = state["returns"]
        returns[event.event_id] = [ts, props["order_id"], _count(props.get("articles"))]
        if len(returns) > MAX_RETURNS:
            _forget_oldest(returns, MAX_RETURNS, _by_event)
    elif kind in _CAMPAIGN_LISTS:
        _touch(state, _CAMPAIGN_LISTS[kind], props["campaign"], ts)
    elif kind == "campaign_served":
        # The server's own exposure: the campaign was served, as an impression says.
        _touch(state, "seen", props["campaign"], ts)
    elif kind == "set_attributes":
        attributes = state["attributes"]
        for name, value in props["attributes"].items():
            known = attributes.get(name)
            if known is None or key > known[:2]:
                attributes[name] = [ts, event.event_id, value]
        if len(attributes) > MAX_ATTRIBUTES:
            _forget_oldest(attributes, MAX_ATTRIBUTES, _by_write)
    # identify and custom events only move first_seen / last_seen here; the store
    # merges profiles on identify.


def _apply_activity(
    state: dict[str, Any], kind: str, ts: int, props: Mapping[str, Any], needs: ActivityNeeds
) -> None:
    """The engagement and activity parts of ``apply``."""
    last_seen = state["last_seen"]
    closed: tuple[tuple[int, int, int], ...] = ()
    if kind not in NOT_ACTIVITY:
        page_views = 1 if kind in PAGE_TYPES else 0
        found = observe(state["engagement"], ts, kind == "session_start", page_views, last_seen)
        if found is None:
            state["v"] = _NEEDS_REBUILD  # too late to place: sessions need the whole log
        else:
            closed = found
    activity = state["activity"]
    if not needs.is_stored_as(activity["using"]):
        use_needs(activity, needs, last_seen)
    if not needs.types or last_seen is None:
        return
    retain(activity, kind, ts, props, needs, last_seen)
    for start, end, pages in closed:
        retain(activity, SESSION, start, session_properties(start, end, pages), needs, last_seen)
    if ts == last_seen:
        prune(activity, needs, last_seen)


def needs_rebuild(state: Mapping[str, Any]) -> bool:
    """Whether ``state`` must be rebuilt from the event log: folded by another version,
    or marked by ``apply`` because an event came too late to place exactly."""
    return bool(state.get("v") != STATE_VERSION)


def _touch(state: dict[str, Any], name: str, value: str, ts: int) -> None:
    """Record ``value`` at ``ts`` in a bounded most-recent map; evict the oldest."""
    recent: dict[str, int] = state[name]
    known = recent.get(value)
    if known is None or ts > known:
        recent[value] = ts
        if len(recent) > _TOPS[name]:
            oldest = min(recent.items(), key=lambda item: (item[1], item[0]))
            del recent[oldest[0]]


def _amount(value: Any) -> int | float:
    """An amount as the fold counts it: clamped into 0..MAX_AMOUNT (infinity included);
    NaN, negatives and what is not a number count as 0. Only events stored before the
    bound existed need this."""
    if type(value) is int or type(value) is float:
        if 0 <= value <= MAX_AMOUNT:
            return value
        if value > MAX_AMOUNT:
            return MAX_AMOUNT
    return 0


def _count(value: Any) -> int:
    """A count as the fold counts it: an integer in 0..MAX_COUNT, as ``_amount``."""
    if type(value) is int and 0 <= value <= MAX_COUNT:
        return value
    if (type(value) is int or type(value) is float) and value > 0:
        return MAX_COUNT if value >= MAX_COUNT else int(value)
    return 0


def _forget_oldest(
    entries: dict[str, list[Any]],
    bound: int,
    order: Callable[[tuple[str, list[Any]]], tuple[Any, ...]],
) -> None:
    """Evict the entries that come first in ``order`` until ``bound`` are left."""
    while len(entries) > bound:
        del entries[min(entries.items(), key=order)[0]]


def _by_event(item: tuple[str, list[Any]]) -> tuple[Any, ...]:
    """The order of an ``event_id -> [timestamp, ...]`` entry: its event's."""
    event_id, entry = item
    return entry[0], event_id


def _by_write(item: tuple[str, list[Any]]) -> tuple[Any, ...]:
    """The order of an ``id -> [timestamp, event_id, ...]`` entry: the event that wrote
    it, then the id (one event writes several attributes)."""
    name, entry = item
    return entry[0], entry[1], name


def rebuild(events: Iterable[Event], needs: ActivityNeeds = NO_ACTIVITY) -> dict[str, Any]:
    """The state of a whole event log: sorted by ``(timestamp, event_id)``, repeated
    event ids dropped (the first in that order stays), then folded with ``needs``."""
    state = new_state()
    last_id = None
    for event in sorted(events, key=lambda e: (e.timestamp, e.event_id)):
        if event.event_id == last_id:
            continue
        last_id = event.event_id
        apply(state, event, needs)
    return state


def covers(state: Mapping[str, Any], needs: ActivityNeeds) -> bool:
    """Whether ``state`` keeps every event ``needs`` reads (else ``backfill`` it)."""
    return _covers(state["activity"], needs)


def backfill(state: dict[str, Any], events: Iterable[Event], needs: ActivityNeeds) -> None:
    """Give ``state`` the activity ``needs`` reads, from the visitor's whole event log
    (after a publish whose declaration the state does not cover). Only the activity
    and engagement parts change, to what ``rebuild(events, needs)`` holds; the other
    parts are exact already."""
    rebuilt = rebuild(events, needs)
    state["activity"] = rebuilt["activity"]
    state["engagement"] = rebuilt["engagement"]
    if state.get("v") == _NEEDS_REBUILD:
        state["v"] = STATE_VERSION  # the sessions were why; they are whole again


def render(state: Mapping[str, Any]) -> dict[str, JSON]:
    """The profile document of ``state``: only the fields there is data for."""
    document: dict[str, JSON] = {}
    if state["visits"]:
        document["visits"] = state["visits"]
    if state["first_seen"] is not None:
        document["first_seen"] = _iso(state["first_seen"])
        document["last_seen"] = _iso(state["last_seen"])
    recent = state["engagement"]["s"]
    engagement = render_engagement(state["engagement"])
    if engagement is not None:
        document["engagement"] = engagement
    attributes = {
        name: entry[2]
        for name, entry in sorted(state["attributes"].items())
        if entry[2] is not None
    }
    if attributes:
        document["attributes"] = attributes
    segment = _customer_segment(state["orders"], state["returns"])
    if segment:
        document["customer_segment"] = segment
    for name, field in (
        ("categories", "categories_viewed"),
        ("brands", "brands_viewed"),
        ("products", "products_viewed"),
    ):
        if state[name]:
            document[field] = _most_recent(state[name])
    cart = _cart(state["cart"])
    if cart is not None:
        document["cart"] = cart
    campaigns = {
        name: _most_recent(state[name]) for name in _CAMPAIGN_LISTS.values() if state[name]
    }
    if campaigns:
        document["campaigns"] = campaigns
    activity = state["activity"]
    if activity["using"]:
        kept = render_activity(activity, state["last_seen"], recent)
        if kept:
            document["activity"] = kept
    return document


def _most_recent(recent: Mapping[str, int]) -> list[str]:
    # Sorting (timestamp, value) tuples directly: no key function call per item.
    return [
        value for _, value in sorted([(ts, value) for value, ts in recent.items()], reverse=True)
    ]


def _customer_segment(
    orders: Mapping[str, list[Any]], returns: Mapping[str, list[Any]]
) -> dict[str, JSON]:
    segment: dict[str, JSON] = {}
    if orders:
        count = len(orders)
        ordered = [orders[order_id] for order_id in sorted(orders)]
        articles = sum(order[3] for order in ordered)
        first = min(order[0] for order in ordered)
        last = max(order[0] for order in ordered)
        segment["outbounds_number_total"] = count
        segment["outbounds_value_total"] = math.fsum(order[2] for order in ordered)
        segment["outbounds_avg_basket_size"] = articles / count
        if count >= 2:
            segment["outbounds_avg_time_delta"] = (last - first) / _DAY_MICROS / (count - 1)
        segment["last_purchase_date"] = _iso(last)[:10]
        if articles:
            returned: dict[str, int] = {}
            for _, order_id, count_returned in returns.values():
                if order_id in orders:
                    returned[order_id] = returned.get(order_id, 0) + count_returned
            total = sum(min(n, orders[order_id][3]) for order_id, n in returned.items())
            segment["returns_articles_ratio"] = 100 * total / articles
    if returns:
        segment["returns_number_total"] = len(returns)
    return segment


def _cart(events: Mapping[str, list[Any]]) -> dict[str, JSON] | None:
    if not events:
        return None
    lines: dict[str, list[Any]] = {}  # sku -> [quantity, price]
    for _, (_, action, sku, quantity, price) in sorted(
        events.items(), key=lambda item: (item[1][0], item[0])
    ):
        if action == "add":
            line = lines.setdefault(sku, [0, None])
            line[0] += quantity
            if price is not None:
                line[1] = price
        elif sku in lines:
            if quantity is None or quantity >= lines[sku][0]:
                del lines[sku]
            else:
                lines[sku][0] -= quantity
                if price is not None:
                    lines[sku][1] = price
    items: list[JSON] = []
    for sku, (quantity, price) in lines.items():
        if quantity <= 0:
            continue
        item: dict[str, JSON] = {"sku": sku, "quantity": quantity}
        if price is not None:
            item["price"] = price
        items.append(item)
    return {
        "items": items,
        "value": math.fsum(i["quantity"] * i["price"] for i in items if "price" in i),
        "updated_at": _iso(max(event[0] for event in events.values())),
    }
