"""Activity clauses of the filter language: events counted and summed in time windows,
sequences of events, and calendar windows (seasons).

These are our extensions (README, "Extensions to MongoDB's language"). Two top-level
clauses, allowed wherever ``$segment`` is (at the top level and inside ``$and $or
$nor``, not inside ``$elemMatch``)::

    {"$activity": {"type": "product_view",                 # an event type, or "session"
                   "properties": {"category": "shoes"},    # a MongoDB filter (optional)
                   "timestamp": {"$gte": {"$daysAgo": 7}}, # or "during": {...}
                   "count": {"$gte": 3}}}                  # and/or "sum": {"value": {...}}

    {"$sequence": {"first": {"type": "add_to_cart", "timestamp": {"$gte": {"$daysAgo": 30}}},
                   "notFollowedBy": {"type": "purchase"},  # or "followedBy"
                   "within": {"hours": 24}}}               # optional

SEMANTICS, defined over the visitor's event log (the profile keeps what the rules need
of it: ``decision.retention``), at the decision's ``now``:

- The events of ``type`` whose timestamp is in the window and whose ``properties``
  match the filter (MongoDB semantics, compiled by ``decision.filters``; ``"session"``
  events are the sessions of ``decision.sessions``, stamped at their start, with the
  properties ``pages`` and ``duration`` in seconds).
- ``timestamp``: ``$gte``/``$gt`` (required) and ``$lt``/``$lte`` (optional) with
  ``{"$daysAgo": N}``, ``{"$hoursAgo": N}`` (``now - N``) or ``{"$date": ...}``. Without
  an upper bound the window has no end: events stamped after ``now`` (client clocks run
  ahead by up to 24 hours) count.
- ``during``: calendar windows in UTC: ``{"yearsAgo": [1, 2], "months": [11, 12]}``,
  ``{"yearsAgo": 1, "period": "black_friday_week"}``, ``{"yearsAgo": 0, "dates":
  ["12-01", "12-24"]}`` (inclusive; wraps into the next year when the end comes first),
  or ``{"monthsAgo": [0, 1]}``. The clause counts over all the windows together, or
  with ``"each": true`` must hold in each year's (month's) windows on its own.
- ``count``: a number or an operator object of ``$eq $ne $gt $gte $lt $lte`` compared
  with the number of events; ``sum``: ``{"<property path>": <number or operator
  object>}`` compared with the sum of that numeric property (events without it add 0;
  summed with ``math.fsum``). Without either: ``count >= 1``.
- ``$sequence``: an event matching ``first`` (type, properties, window) for which an
  event matching ``followedBy`` exists, other than itself, stamped at or after it and
  at most ``within`` (``{"days"|"hours"|"minutes": N}``) later; ``notFollowedBy``: for
  which no such event exists, and, with ``within``, whose ``within`` has passed by
  ``now`` (until then the visitor may still do it).

Everything is validated when the filter compiles, with the path of each problem
(``$activity.properties.price.$lt``); a window reaching back more than
``MAX_HISTORY_DAYS`` is refused. Each clause declares what it reads (``ActivityNeeds``)
so the profile fold keeps exactly that. Evaluation reads the profile document's
``activity`` field (``decision.retention.render_activity``) and never raises on its
content: anything malformed counts as no events.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from decision.errors import FilterError
from decision.profile import INTERNAL_EVENT_TYPES, PROPERTY_SCHEMAS
from decision.retention import (
    DAY_US,
    HOUR_US,
    MAX_HISTORY_DAYS,
    SESSION,
    ActivityNeeds,
    TypeNeeds,
)

if TYPE_CHECKING:
    from decision.filters import EvalContext, Predicate

__all__ = ["CLAUSES", "ClauseCompiler", "CompiledClause", "compile_clause"]

CLAUSES = ("$activity", "$sequence")
"""The top-level clause operators this module compiles."""

Matcher = Callable[[Any, "EvalContext"], bool]
Window = tuple[int, int | None]
"""``[lo, hi)`` in microseconds since 1970; ``hi`` None: no end."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_MINUTE_US = 60_000_000
_MAX_HISTORY_US = MAX_HISTORY_DAYS * DAY_US
_SESSION_PROPERTIES = {"pages": "count", "duration": "amount"}
_NUMERIC_KINDS = ("amount", "count")
_COUNT_OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "$eq": lambda a, b: a == b,
    "$ne": lambda a, b: a != b,
    "$gt": lambda a, b: a > b,
    "$gte": lambda a, b: a >= b,
    "$lt": lambda a, b: a < b,
    "$lte": lambda a, b: a <= b,
}
_PERIODS = ("black_friday_week",)
_ACTIVITY_KEYS = ("type", "properties", "timestamp", "during", "count", "sum")
_EVENT_KEYS = ("type", "properties", "timestamp", "during")
_SEQUENCE_KEYS = ("first", "followedBy", "notFollowedBy", "within")
_DURATIONS = {"days": DAY_US, "hours": HOUR_US, "minutes": _MINUTE_US}
_EMPTY: dict[str, Any] = {}


class ClauseCompiler(Protocol):
    """What this module needs of ``decision.filters``' compiler (which imports this
    module, so it is passed in rather than imported)."""

    def sub_filter(self, spec: Any, path: str) -> Predicate:
        """Compile a filter over one event's properties."""

    def absolute_date(self, value: Any, path: str) -> datetime:
        """The moment of a ``$date`` operand."""


class CompiledClause:
    """A compiled activity clause: its matcher, whether it reads ``now``, what it needs."""

    __slots__ = ("match", "needs", "uses_now")

    def __init__(self, match: Matcher, uses_now: bool, needs: ActivityNeeds) -> None:
        self.match = match
        self.uses_now = uses_now
        self.needs = needs


def compile_clause(key: str, spec: Any, path: str, compiler: ClauseCompiler) -> CompiledClause:
    """Compile ``{key: spec}`` (``key`` one of ``CLAUSES``); ``path`` names ``key``."""
    if key == "$activity":
        return _compile_activity(spec, path, compiler)
    return _compile_sequence(spec, path, compiler)


# -- selecting events: type, properties, window ------------------------------------------


class _Selection:
    """Which events of the log a clause looks at: a type, a property filter, windows."""

    __slots__ = ("each", "kind", "needs", "uses_now", "where", "windows")

    def __init__(
        self,
        kind: str,
        where: Predicate | None,
        windows: Callable[[int, Any], list[list[Window]]] | None,
        each: bool,
        uses_now: bool,
        needs: TypeNeeds,
    ) -> None:
        self.kind = kind
        self.where = where
        # windows(now_us, now) -> groups of windows (one group unless "each"); a window
        # from fixed dates ignores both, and gets (0, None) when the call has no now.
        self.windows = windows
        self.each = each
        self.uses_now = uses_now
        self.needs = needs


def _expect_object(spec: Any, path: str, allowed: Sequence[str]) -> dict[str, Any]:
    if type(spec) is not dict:
        raise FilterError(path, f"needs an object, got {_kind(spec)}")
    for key in spec:
        if key not in allowed:
            raise FilterError(_join(path, str(key)), f"unknown key (allowed: {', '.join(allowed)})")
    return spec


def _select(
    spec: dict[str, Any],
    path: str,
    compiler: ClauseCompiler,
    *,
    window: bool,
    extra: Sequence[str] = (),
) -> _Selection:
    """The ``type``, ``properties`` and (with ``window``) ``timestamp``/``during`` keys;
    ``extra`` names properties read elsewhere (a sum)."""
    if "type" not in spec:
        raise FilterError(_join(path, "type"), "is required")
    kind: str = spec["type"]
    schema = _schema(kind, _join(path, "type"))  # refuses anything but a known type
    where: Predicate | None = None
    fields: set[str] = set()
    uses_now = False
    if "properties" in spec:
        here = _join(path, "properties")
        if type(spec["properties"]) is not dict:
            raise FilterError(here, f"needs a filter object, got {_kind(spec['properties'])}")
        where = compiler.sub_filter(spec["properties"], here)
        if where.references:
            raise FilterError(here, "$segment is not allowed on an event's properties")
        if where.activity:
            raise FilterError(here, "an event's properties have no activity of their own")
        for name in sorted(where.fields or ()):
            _check_property(name, schema, kind, here)
        fields |= where.fields or set()
        uses_now = where.uses_now
        if not spec["properties"]:
            where = None  # {} matches every event
    fields.update(extra)
    horizon = 0
    since: int | None = None
    windows = None
    each = False
    if window:
        if ("timestamp" in spec) == ("during" in spec):
            raise FilterError(path, "needs a window: either 'timestamp' or 'during'")
        if "timestamp" in spec:
            windows, horizon, since, relative = _timestamp_window(
                spec["timestamp"], _join(path, "timestamp"), compiler
            )
        else:
            windows, horizon, each = _calendar_window(spec["during"], _join(path, "during"))
            relative = True
        uses_now = uses_now or relative
    needs = TypeNeeds(frozenset(fields), horizon, since)
    return _Selection(kind, where, windows, each, uses_now, needs)


def _schema(kind: Any, path: str) -> dict[str, str]:
    """Property name -> kind ("id", "amount", ...) of an activity type."""
    if kind == SESSION:
        return _SESSION_PROPERTIES
    if type(kind) is str and kind in PROPERTY_SCHEMAS and kind not in INTERNAL_EVENT_TYPES:
        return {name: spec[0] for name, spec in PROPERTY_SCHEMAS[kind].items()}
    known = [name for name in PROPERTY_SCHEMAS if name not in INTERNAL_EVENT_TYPES] + [SESSION]
    raise FilterError(path, f"unknown activity type {kind!r}; expected one of {', '.join(known)}")


def _check_property(name: str, schema: dict[str, str], kind: str, path: str) -> None:
    if name not in schema:
        have = ", ".join(schema) or "none"
        raise FilterError(_join(path, name), f"{kind} events have no property {name!r} ({have})")


def _timestamp_window(
    spec: Any, path: str, compiler: ClauseCompiler
) -> tuple[Callable[[int, Any], list[list[Window]]], int, int | None, bool]:
    """``(windows, horizon_us, since_us, relative)`` of a ``timestamp`` condition."""
    if type(spec) is not dict or not spec:
        raise FilterError(path, 'needs an operator object such as {"$gte": {"$daysAgo": 7}}')
    lower: tuple[str, bool, int] | None = None  # (operator, relative, amount or moment)
    upper: tuple[str, bool, int] | None = None
    for op, operand in spec.items():
        here = _join(path, str(op))
        if op in ("$gte", "$gt"):
            if lower is not None:
                raise FilterError(here, f"the window already has a lower bound ({lower[0]})")
            lower = (op, *_date_operand(operand, here, compiler))
        elif op in ("$lt", "$lte"):
            if upper is not None:
                raise FilterError(here, f"the window already has an upper bound ({upper[0]})")
            upper = (op, *_date_operand(operand, here, compiler))
        else:
            raise FilterError(here, "a window takes $gte or $gt, and $lt or $lte")
    if lower is None:
        raise FilterError(
            path, "needs a lower bound ($gte or $gt): windows reach back a bounded time"
        )
    lower_op, lower_relative, lower_value = lower
    if lower_relative:
        horizon, since = lower_value, None
        if lower_value > _MAX_HISTORY_US:
            raise FilterError(
                _join(path, lower_op),
                f"reaches back more than the {MAX_HISTORY_DAYS} days of history kept",
            )
    else:
        horizon, since = 0, lower_value
        if upper is None or upper[1]:
            raise FilterError(
                path,
                "a window from a fixed date needs a fixed end ($lt or $lte with $date); "
                "for one that ends now use $daysAgo",
            )
        if upper[2] - lower_value > _MAX_HISTORY_US:
            raise FilterError(path, f"spans more than the {MAX_HISTORY_DAYS} days of history kept")
    if (
        upper is not None
        and upper[1] == lower_relative
        and (upper[2] >= lower_value if lower_relative else upper[2] <= lower_value)
    ):
        raise FilterError(path, "the window is empty: its end is not after its start")
    lo_add = 1 if lower_op == "$gt" else 0
    hi_add = 0 if upper is None or upper[0] == "$lt" else 1

    def windows(now_us: int, now: datetime) -> list[list[Window]]:
        lo = (now_us - lower_value if lower_relative else lower_value) + lo_add
        hi: int | None = None
        if upper is not None:
            hi = (now_us - upper[2] if upper[1] else upper[2]) + hi_add
        return [[(lo, hi)]]

    return windows, horizon, since, lower_relative or (upper is not None and upper[1])


def _date_operand(operand: Any, path: str, compiler: ClauseCompiler) -> tuple[bool, int]:
    """``(True, microseconds back from now)`` or ``(False, microseconds since 1970)``."""
    if type(operand) is not dict or len(operand) != 1:
        raise FilterError(
            path, 'needs a date operand: {"$daysAgo": N}, {"$hoursAgo": N} or {"$date": ...}'
        )
    key, amount = next(iter(operand.items()))
    here = _join(path, str(key))
    if key in ("$daysAgo", "$hoursAgo"):
        if type(amount) not in (int, float) or not math.isfinite(amount) or amount < 0:
            raise FilterError(here, f"{key} needs a number >= 0, got {amount!r}")
        if amount > MAX_HISTORY_DAYS * (24 if key == "$hoursAgo" else 1):
            raise FilterError(
                here, f"reaches back more than the {MAX_HISTORY_DAYS} days of history kept"
            )
        unit = timedelta(days=amount) if key == "$daysAgo" else timedelta(hours=amount)
        return True, unit // _MICROSECOND
    if key == "$date":
        return False, _micros(compiler.absolute_date(amount, here))
    raise FilterError(path, f"unknown date operand {key!r}; expected $daysAgo, $hoursAgo or $date")


def _calendar_window(
    spec: Any, path: str
) -> tuple[Callable[[int, Any], list[list[Window]]], int, bool]:
    """``(windows, horizon_us, each)`` of a ``during`` object."""
    spec = _expect_object(
        spec, path, ("yearsAgo", "monthsAgo", "months", "period", "dates", "each")
    )
    each = spec.get("each", False)
    if type(each) is not bool:
        raise FilterError(_join(path, "each"), "must be true or false")
    if ("yearsAgo" in spec) == ("monthsAgo" in spec):
        raise FilterError(path, "needs either 'yearsAgo' or 'monthsAgo'")
    if "monthsAgo" in spec:
        for key in ("months", "period", "dates"):
            if key in spec:
                raise FilterError(_join(path, key), "goes with yearsAgo, not monthsAgo")
        back = _offsets(spec["monthsAgo"], _join(path, "monthsAgo"), MAX_HISTORY_DAYS // 31 - 1)
        horizon = 31 * (max(back) + 1) * DAY_US

        def month_windows(now: datetime) -> list[list[Window]]:
            groups: list[list[Window]] = []
            for offset in back:
                index = now.year * 12 + now.month - 1 - offset
                start = datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC)
                end = datetime((index + 1) // 12, (index + 1) % 12 + 1, 1, tzinfo=UTC)
                groups.append([(_micros(start), _micros(end))])
            return groups

        return _by_month(month_windows, each), horizon, each
    years = _offsets(spec["yearsAgo"], _join(path, "yearsAgo"), MAX_HISTORY_DAYS // 366 - 1)
    chosen = [key for key in ("months", "period", "dates") if key in spec]
    if len(chosen) != 1:
        raise FilterError(path, "with yearsAgo, needs exactly one of 'months', 'period', 'dates'")
    key = chosen[0]
    here = _join(path, key)
    per_year: Callable[[int], list[Window]]
    if key == "months":
        months = _months(spec["months"], here)
        per_year = lambda year: _month_ranges(year, months)
    elif key == "period":
        if spec["period"] not in _PERIODS:
            raise FilterError(
                here, f"unknown period {spec['period']!r}; expected {', '.join(_PERIODS)}"
            )
        per_year = lambda year: [_black_friday_week(year)]
    else:
        first, last = _dates(spec["dates"], here)
        per_year = lambda year: [_date_range(year, first, last)]
    horizon = 366 * (max(years) + 1) * DAY_US

    def year_windows(now: datetime) -> list[list[Window]]:
        return [per_year(now.year - offset) for offset in years]

    return _by_month(year_windows, each), horizon, each


def _by_month(
    compute: Callable[[datetime], list[list[Window]]], each: bool
) -> Callable[[int, Any], list[list[Window]]]:
    """``compute`` cached for the month of ``now`` (calendar windows change only then);
    the windows in one group unless ``each``."""
    # One (key, groups) tuple, replaced whole: threads may share the clause.
    cache: list[tuple[tuple[int, int], list[list[Window]]] | None] = [None]

    def windows(now_us: int, now: datetime) -> list[list[Window]]:
        if now.tzinfo is not UTC:
            now = now.astimezone(UTC)  # calendar windows are UTC's
        key = (now.year, now.month)
        known = cache[0]
        if known is not None and known[0] == key:
            return known[1]
        groups = compute(now)
        if not each:
            groups = [[window for group in groups for window in group]]
        cache[0] = (key, groups)
        return groups

    return windows


def _offsets(value: Any, path: str, most: int) -> list[int]:
    values = value if type(value) is list else [value]
    if not values:
        raise FilterError(path, "needs at least one value")
    offsets: list[int] = []
    for index, item in enumerate(values):
        here = f"{path}[{index}]" if type(value) is list else path
        if type(item) is not int or not 0 <= item <= most:
            raise FilterError(
                here,
                f"must be a whole number from 0 to {most} (history is kept "
                f"{MAX_HISTORY_DAYS} days), got {item!r}",
            )
        if item in offsets:
            raise FilterError(here, f"repeats {item}")
        offsets.append(item)
    return offsets


def _months(value: Any, path: str) -> list[int]:
    if type(value) is not list or not value:
        raise FilterError(path, "needs a non-empty list of months 1-12")
    for index, month in enumerate(value):
        if type(month) is not int or not 1 <= month <= 12:
            raise FilterError(f"{path}[{index}]", f"must be a month from 1 to 12, got {month!r}")
    return sorted(set(value))


def _month_ranges(year: int, months: list[int]) -> list[Window]:
    ranges: list[Window] = []
    for month in months:
        start = _micros(datetime(year, month, 1, tzinfo=UTC))
        end = _micros(datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC))
        if ranges and ranges[-1][1] == start:
            ranges[-1] = (ranges[-1][0], end)  # adjacent months make one window
        else:
            ranges.append((start, end))
    return ranges


def _black_friday_week(year: int) -> Window:
    """Monday to Sunday around Black Friday, the day after the fourth Thursday of
    November (US Thanksgiving)."""
    first = date(year, 11, 1)
    thanksgiving = 1 + (3 - first.weekday()) % 7 + 21
    black_friday = datetime(year, 11, thanksgiving + 1, tzinfo=UTC)
    return _micros(black_friday - timedelta(days=4)), _micros(black_friday + timedelta(days=3))


def _dates(value: Any, path: str) -> tuple[tuple[int, int], tuple[int, int]]:
    if type(value) is not list or len(value) != 2:
        raise FilterError(path, 'needs ["MM-DD", "MM-DD"], the first and last day')
    return _day(value[0], f"{path}[0]"), _day(value[1], f"{path}[1]")


def _day(text: Any, path: str) -> tuple[int, int]:
    """``"MM-DD"`` as ``(month, day)``; 02-29 is refused (most years have none)."""
    if type(text) is str and len(text) == 5 and text[2] == "-" and text.replace("-", "").isdigit():
        month, day = int(text[:2]), int(text[3:])
        try:
            date(2001, month, day)  # not a leap year
        except ValueError:
            pass
        else:
            return month, day
    raise FilterError(path, f"must be a day as MM-DD (02-29 excluded), got {text!r}")


def _date_range(year: int, first: tuple[int, int], last: tuple[int, int]) -> Window:
    end_year = year if last >= first else year + 1
    start = datetime(year, *first, tzinfo=UTC)
    end = datetime(end_year, *last, tzinfo=UTC) + timedelta(days=1)
    return _micros(start), _micros(end)


# -- $activity ----------------------------------------------------------------------------


def _compile_activity(spec: Any, path: str, compiler: ClauseCompiler) -> CompiledClause:
    spec = _expect_object(spec, path, _ACTIVITY_KEYS)
    summed: tuple[str, ...] | None = None
    sum_test: Callable[[float], bool] | None = None
    if "sum" in spec:
        here = _join(path, "sum")
        target = spec["sum"]
        if type(target) is not dict or len(target) != 1:
            raise FilterError(here, 'needs one property and a condition: {"value": {"$gte": 100}}')
        name, condition = next(iter(target.items()))
        summed = tuple(str(name).split("."))
        if "" in summed or str(name).startswith("$"):
            raise FilterError(here, f"needs a property path, got {name!r}")
        sum_test = _number_test(condition, _join(here, str(name)))
    count_test = _number_test(spec["count"], _join(path, "count")) if "count" in spec else None
    if count_test is None and sum_test is None:
        count_test = _at_least_one
    selection = _select(spec, path, compiler, window=True, extra=(summed[0],) if summed else ())
    if summed is not None:
        schema = _schema(selection.kind, "")
        here = _join(path, "sum")
        _check_property(summed[0], schema, selection.kind, here)
        if selection.kind != "custom" and schema[summed[0]] not in _NUMERIC_KINDS:
            numeric = [name for name, kind in schema.items() if kind in _NUMERIC_KINDS]
            raise FilterError(
                _join(here, ".".join(summed)),
                f"is not a number; {selection.kind} events can sum {', '.join(numeric) or 'nothing'}",
            )
    match = _activity_matcher(selection, count_test, summed, sum_test)
    needs = ActivityNeeds.of({selection.kind: selection.needs})
    return CompiledClause(match, selection.uses_now, needs)


def _at_least_one(count: float) -> bool:
    return count >= 1


def _number_test(condition: Any, path: str) -> Callable[[float], bool]:
    """A count or sum condition: a number (equality) or an operator object."""
    if _is_number(condition):
        return lambda value: value == condition
    if type(condition) is not dict or not condition:
        raise FilterError(path, f"needs a number or an operator object, got {_kind(condition)}")
    tests: list[tuple[Callable[[float, float], bool], float]] = []
    for op, operand in condition.items():
        here = _join(path, str(op))
        compare = _COUNT_OPERATORS.get(op)
        if compare is None:
            raise FilterError(here, f"unknown operator; expected {', '.join(_COUNT_OPERATORS)}")
        if not _is_number(operand):
            raise FilterError(here, f"needs a number, got {operand!r}")
        tests.append((compare, operand))
    if len(tests) == 1:
        compare, operand = tests[0]
        return lambda value: compare(value, operand)
    return lambda value: all(compare(value, operand) for compare, operand in tests)


def _activity_matcher(
    selection: _Selection,
    count_test: Callable[[float], bool] | None,
    summed: tuple[str, ...] | None,
    sum_test: Callable[[float], bool] | None,
) -> Matcher:
    kind = selection.kind
    where = selection.where
    windows = selection.windows
    assert windows is not None
    each = selection.each

    uses_now = selection.uses_now

    def activity(doc: Any, ctx: EvalContext) -> bool:
        now = _now(ctx, uses_now)
        groups = windows(0 if now is None else _micros(now), now)
        times, props = _entries(doc, kind)
        for group in groups:
            count, total = _tally(times, props, group, where, summed, now)
            ok = (count_test is None or count_test(count)) and (sum_test is None or sum_test(total))
            if each and not ok:
                return False
            if not each:
                return ok
        return True

    return activity


def _tally(
    times: list[Any],
    props: list[Any] | None,
    windows: list[Window],
    where: Predicate | None,
    summed: tuple[str, ...] | None,
    now: datetime | None,
) -> tuple[int, float]:
    """Events of ``times``/``props`` in ``windows`` matching ``where``: their number and
    the sum of their ``summed`` property."""
    count = 0
    values: list[float] = []
    try:
        for lo, hi in windows:
            first = bisect.bisect_left(times, lo)
            end = len(times) if hi is None else bisect.bisect_left(times, hi, first)
            if where is None and summed is None:
                count += max(0, end - first)
                continue
            for index in range(first, end):
                properties = _EMPTY if props is None else props[index]
                if where is not None and not where(properties, now):
                    continue
                count += 1
                if summed is not None:
                    value = _number_at(properties, summed)
                    if value is not None:
                        values.append(value)
    except TypeError:
        return 0, 0.0  # malformed activity (e.g. from profile overrides): no events
    return count, math.fsum(values)


def _number_at(properties: Any, path: tuple[str, ...]) -> float | None:
    value = properties
    for part in path:
        if type(value) is not dict:
            return None
        value = value.get(part)
    return value if _is_number(value) else None


# -- $sequence ----------------------------------------------------------------------------


def _compile_sequence(spec: Any, path: str, compiler: ClauseCompiler) -> CompiledClause:
    spec = _expect_object(spec, path, _SEQUENCE_KEYS)
    if "first" not in spec:
        raise FilterError(_join(path, "first"), "is required")
    if ("followedBy" in spec) == ("notFollowedBy" in spec):
        raise FilterError(path, "needs either 'followedBy' or 'notFollowedBy'")
    follow_key = "followedBy" if "followedBy" in spec else "notFollowedBy"
    first_path = _join(path, "first")
    first_spec = _expect_object(spec["first"], first_path, _EVENT_KEYS)
    first = _select(first_spec, first_path, compiler, window=True)
    if first.each:
        raise FilterError(_join(first_path, "during.each"), "is not allowed in a sequence")
    then_path = _join(path, follow_key)
    then_spec = _expect_object(spec[follow_key], then_path, ("type", "properties"))
    then = _select(then_spec, then_path, compiler, window=False)
    within: int | None = None
    if "within" in spec:
        within = _duration(spec["within"], _join(path, "within"))
    negated = follow_key == "notFollowedBy"
    # The follower is at or after the first event, so it lies in the same history.
    then_needs = TypeNeeds(then.needs.properties, first.needs.horizon, first.needs.since)
    needs = ActivityNeeds.of({first.kind: first.needs}).merge(
        ActivityNeeds.of({then.kind: then_needs})
    )
    uses_now = first.uses_now or then.uses_now or (negated and within is not None)
    match = _sequence_matcher(first, then, within, negated)
    return CompiledClause(match, uses_now, needs)


def _duration(spec: Any, path: str) -> int:
    if type(spec) is not dict or len(spec) != 1:
        raise FilterError(path, 'needs one unit: {"days": N}, {"hours": N} or {"minutes": N}')
    unit, amount = next(iter(spec.items()))
    here = _join(path, str(unit))
    if unit not in _DURATIONS:
        raise FilterError(here, "unknown unit; expected days, hours or minutes")
    if not _is_number(amount) or amount <= 0:
        raise FilterError(here, f"needs a number > 0, got {amount!r}")
    span: int = round(amount * _DURATIONS[unit])
    if span > _MAX_HISTORY_US:
        raise FilterError(here, f"is longer than the {MAX_HISTORY_DAYS} days of history kept")
    return span


def _sequence_matcher(
    first: _Selection, then: _Selection, within: int | None, negated: bool
) -> Matcher:
    first_kind = first.kind
    then_kind = then.kind
    same_type = first_kind == then_kind
    first_where = first.where
    then_where = then.where
    windows = first.windows
    assert windows is not None
    uses_now = first.uses_now or then.uses_now or (negated and within is not None)

    def sequence(doc: Any, ctx: EvalContext) -> bool:
        now = _now(ctx, uses_now)
        now_us = 0 if now is None else _micros(now)
        (group,) = windows(now_us, now)
        times, props = _entries(doc, first_kind)
        later, later_props = (times, props) if same_type else _entries(doc, then_kind)
        try:
            for lo, hi in group:
                start = bisect.bisect_left(times, lo)
                end = len(times) if hi is None else bisect.bisect_left(times, hi, start)
                for index in range(start, end):
                    if first_where is not None:
                        properties = _EMPTY if props is None else props[index]
                        if not first_where(properties, now):
                            continue
                    ts = times[index]
                    if negated and within is not None and ts + within > now_us:
                        continue  # the visitor may still do it
                    last = None if within is None else ts + within
                    found = False
                    position = bisect.bisect_left(later, ts)
                    while position < len(later) and (last is None or later[position] <= last):
                        if not (same_type and position == index) and (
                            then_where is None
                            or then_where(
                                _EMPTY if later_props is None else later_props[position], now
                            )
                        ):
                            found = True
                            break
                        position += 1
                    if found != negated:
                        return True
        except (TypeError, IndexError):
            return False  # malformed activity (e.g. from profile overrides)
        return False

    return sequence


# -- shared -------------------------------------------------------------------------------


def _entries(doc: Any, kind: str) -> tuple[list[Any], list[Any] | None]:
    """The kept events of ``kind`` in the document: timestamps and properties."""
    if type(doc) is dict:
        activity = doc.get("activity")
        if type(activity) is dict:
            entry = activity.get(kind)
            if type(entry) is dict:
                times = entry.get("t")
                props = entry.get("p")
                if type(times) is list and (
                    props is None or (type(props) is list and len(props) == len(times))
                ):
                    return times, props
    return [], None


def _now(ctx: EvalContext, required: bool) -> datetime | None:
    now = ctx.now
    if now is None:
        if required:
            raise ValueError("this filter reads activity in relative windows; pass now=")
        return None
    return now if now.tzinfo is not None else now.replace(tzinfo=UTC)


def _micros(moment: datetime) -> int:
    return (moment - _EPOCH) // _MICROSECOND


def _is_number(value: Any) -> bool:
    return type(value) in (int, float) and math.isfinite(value)


def _kind(value: Any) -> str:
    names = {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}
    return names.get(type(value), type(value).__name__)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key
