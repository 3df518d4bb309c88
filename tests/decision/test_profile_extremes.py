"""Property tests of the fold over valid events with extreme in-bound values: it never
raises, renders finite JSON, and any arrival order renders like the rebuild."""

from __future__ import annotations

import json
import random
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest import mock

from hypothesis import given, settings
from hypothesis import strategies as st

from decision import Event, validate_events
from decision import profile as profile_module
from decision.model import MAX_EXACT_INTEGER
from decision.profile import (
    MAX_AMOUNT,
    MAX_COUNT,
    MAX_FUTURE,
    MAX_ID_LENGTH,
    MIN_TIMESTAMP,
    apply,
    needs_rebuild,
    new_state,
    rebuild,
    render,
)

NOW = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)

# Printable text (no control characters or surrogates), and a few long ids, over small
# pools so that the same sku, order or attribute recurs.
_printable = st.text(
    st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=8
).filter(lambda text: text.strip())
_ids = st.one_of(
    st.sampled_from(["a", "b", "c", "d"]),
    st.just("x" * MAX_ID_LENGTH),
    _printable,
)
_amounts = st.one_of(
    st.sampled_from([0, 0.01, MAX_AMOUNT, float(MAX_AMOUNT), 5e-324, MAX_AMOUNT - 0.5]),
    st.integers(0, MAX_AMOUNT),
    st.floats(0, MAX_AMOUNT),
)
_counts = st.one_of(st.sampled_from([0, 1, MAX_COUNT, float(MAX_COUNT)]), st.integers(0, MAX_COUNT))
_json_numbers = st.one_of(
    st.integers(-MAX_EXACT_INTEGER, MAX_EXACT_INTEGER),
    st.sampled_from([MAX_EXACT_INTEGER, -MAX_EXACT_INTEGER]),
    st.floats(allow_nan=False, allow_infinity=False),
)
_leaves = st.none() | st.booleans() | _json_numbers | st.text(max_size=5)
# Values of an object's keys: the object is one level, so two more stay within
# MAX_OBJECT_DEPTH.
_json = st.one_of(
    _leaves,
    st.lists(_leaves, max_size=3),
    st.dictionaries(
        st.sampled_from(["k", "l", "m"]), _leaves | st.lists(_leaves, max_size=2), max_size=3
    ),
)
_moments = st.one_of(
    st.sampled_from([MIN_TIMESTAMP, NOW + MAX_FUTURE, NOW]),
    st.integers(0, 40).map(lambda minute: NOW - timedelta(minutes=minute)),
)


def _maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.none(), strategy)


def _props(**fields: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(fields).map(
        lambda d: {key: value for key, value in d.items() if value is not None}
    )


_PROPERTIES: dict[str, st.SearchStrategy[dict[str, Any]]] = {
    "session_start": _props(referrer=_maybe(st.text(max_size=10))),
    "page_view": _props(category=_maybe(_ids), title=_maybe(st.text(max_size=10))),
    "product_view": _props(
        sku=_ids, category=_maybe(_ids), brand=_maybe(_ids), price=_maybe(_amounts)
    ),
    "add_to_cart": _props(sku=_ids, quantity=_maybe(_counts), price=_maybe(_amounts)),
    "remove_from_cart": _props(sku=_ids, quantity=_maybe(_counts), price=_maybe(_amounts)),
    "purchase": _props(
        order_id=_ids,
        value=_amounts,
        articles=_counts,
        currency=_maybe(st.sampled_from(["EUR", "vnd"])),
    ),
    "return": _props(order_id=_ids, articles=_counts),
    "campaign_impression": _props(campaign=_ids),
    "campaign_click": _props(campaign=_ids, variant=_maybe(_ids)),
    "campaign_conversion": _props(campaign=_ids, value=_maybe(_amounts)),
    "identify": _props(customer_id=_ids),
    "custom": _props(name=_ids, properties=_maybe(st.dictionaries(_ids, _json, max_size=4))),
    "set_attributes": st.dictionaries(
        st.sampled_from(["tier", "points", "country", "opt_in", "extra"]), _json, min_size=1
    ).map(lambda attributes: {"attributes": attributes}),
}


@st.composite
def valid_logs(draw: st.DrawFn, size: int = 60) -> list[Event]:
    """Raw events through ``validate_events``: what validation accepts, extremes included."""
    raws = []
    for index in range(draw(st.integers(0, size))):
        kind = draw(st.sampled_from(sorted(_PROPERTIES)))
        properties = draw(_PROPERTIES[kind])
        if kind == "identify":
            properties["customer_id"] = "customer-" + properties["customer_id"][:8]
        raws.append(
            {
                "event_id": f"e-{draw(st.integers(0, 9))}-{index}",
                "visitor_id": "v",
                "type": kind,
                "timestamp": draw(_moments),
                "properties": properties,
            }
        )
    return validate_events(raws, NOW, allow_internal=True)


def _numbers(value: Any) -> list[Any]:
    """Every number in a JSON value."""
    if isinstance(value, dict):
        return [n for item in value.values() for n in _numbers(item)]
    if isinstance(value, list):
        return [n for item in value for n in _numbers(item)]
    return [value] if type(value) in (int, float) else []


def _incremental(events: list[Event], seed: random.Random) -> dict[str, Any]:
    """The rendering of ``events`` applied in a shuffled order, stored as JSON in between."""
    shuffled = list(events)
    seed.shuffle(shuffled)
    state = new_state()
    applied: list[Event] = []
    for event in shuffled:
        apply(state, event)
        applied.append(event)
        if needs_rebuild(state):  # as the store does: an event too late for sessions
            state = rebuild(applied)
        state = json.loads(json.dumps(state, allow_nan=False))
    return render(state)


class TestExtremeValues:
    @settings(max_examples=100, deadline=None)
    @given(events=valid_logs())
    def test_render_is_finite_exact_json(self, events: list[Event]):
        """The profile of any valid log is JSON with finite numbers and integers within
        +-2**53, and survives a round trip unchanged."""
        document = render(rebuild(events))

        text = json.dumps(document, allow_nan=False)
        assert document == json.loads(text)
        assert all(abs(n) <= MAX_EXACT_INTEGER for n in _numbers(document) if type(n) is int)

    @settings(max_examples=100, deadline=None)
    @given(events=valid_logs(), seed=st.randoms(use_true_random=False))
    def test_any_order_renders_like_rebuild(self, events: list[Event], seed: random.Random):
        """Folding valid events with extreme values in any order gives the rebuild's profile."""
        expected = render(rebuild(events))

        actual = _incremental(events, seed)

        assert expected == actual

    @settings(max_examples=100, deadline=None)
    @given(events=valid_logs(size=80), seed=st.randoms(use_true_random=False))
    def test_bounded_maps_in_any_order(self, events: list[Event], seed: random.Random):
        """With tiny bounds on orders, returns, cart changes and attributes (so entries are
        evicted all the time), any order still renders like the rebuild."""
        with ExitStack() as stack:
            for name, bound in [
                ("MAX_ORDERS", 2),
                ("MAX_RETURNS", 2),
                ("MAX_CART_EVENTS", 3),
                ("MAX_ATTRIBUTES", 2),
            ]:
                stack.enter_context(mock.patch.object(profile_module, name, bound))
            expected = render(rebuild(events))

            actual = _incremental(events, seed)

        assert expected == actual
