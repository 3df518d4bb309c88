"""Property tests of the profile fold: any arrival order gives the profile a rebuild gives."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from decision import Event
from decision.profile import apply, new_state, rebuild, render

START = datetime(2026, 6, 1, tzinfo=UTC)

# Small pools make collisions likely: the same sku, order id or attribute from several
# events, equal timestamps, and (with more values than the bounds) evictions.
_skus = st.integers(0, 59).map(lambda i: f"sku-{i}")
_categories = st.integers(0, 24).map(lambda i: f"cat-{i}")
_brands = st.sampled_from(["acme", "zeta", "nova"])
_orders = st.integers(0, 4).map(lambda i: f"order-{i}")
_campaigns = st.integers(0, 59).map(lambda i: f"campaign-{i}")
_money = st.one_of(
    st.integers(0, 500), st.floats(0, 500, allow_nan=False).map(lambda x: round(x, 2))
)
_count = st.integers(0, 5)


def _maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.none(), strategy)


def _props(**fields: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    """A properties dict; fields whose drawn value is None are left out."""
    return st.fixed_dictionaries(fields).map(
        lambda d: {key: value for key, value in d.items() if value is not None}
    )


_PROPERTIES: dict[str, st.SearchStrategy[dict[str, Any]]] = {
    "session_start": st.just({}),
    "page_view": _props(category=_maybe(_categories)),
    "product_view": _props(
        sku=_skus, category=_maybe(_categories), brand=_maybe(_brands), price=_maybe(_money)
    ),
    "add_to_cart": _props(
        sku=_skus.map(lambda s: s[-1:]), quantity=_maybe(_count), price=_maybe(_money)
    ),
    "remove_from_cart": _props(
        sku=_skus.map(lambda s: s[-1:]), quantity=_maybe(_count), price=_maybe(_money)
    ),
    "purchase": _props(order_id=_orders, value=_money, articles=_count),
    "return": _props(order_id=_orders, articles=_count),
    "campaign_impression": _props(campaign=_campaigns),
    "campaign_click": _props(campaign=_campaigns),
    "campaign_conversion": _props(campaign=_campaigns, value=_maybe(_money)),
    "identify": st.just({"customer_id": "customer"}),
    "custom": _props(name=st.sampled_from(["signup", "quiz"])),
    "set_attributes": st.dictionaries(
        st.sampled_from(["tier", "country", "opt_in"]),
        st.one_of(st.none(), st.integers(0, 3), st.sampled_from(["DE", "FR"])),
        min_size=1,
    ).map(lambda attributes: {"attributes": attributes}),
}


_VIEWS = ["product_view", "page_view", "campaign_impression", "campaign_click"]


@st.composite
def event_logs(draw: st.DrawFn, kinds: list[str] | None = None, size: int = 80) -> list[Event]:
    """Events with distinct ids, random types (of ``kinds``) and timestamps, ties
    included."""
    count = draw(st.integers(0, size))
    events = []
    for index in range(count):
        kind = draw(st.sampled_from(kinds or sorted(_PROPERTIES)))
        minute = draw(st.integers(0, 40))
        properties = draw(_PROPERTIES[kind])
        # Ids are not in timestamp order, so (timestamp, event_id) ties matter.
        event_id = f"e-{draw(st.integers(0, 9))}-{index}"
        events.append(Event(event_id, "v", kind, START + timedelta(minutes=minute), properties))
    return events


def _fold(events: list[Event], *, through_json: bool) -> dict[str, Any]:
    state = new_state()
    for event in events:
        apply(state, event)
        if through_json:  # as the store does between batches
            state = json.loads(json.dumps(state))
    return render(state)


class TestOrderIndependence:
    @settings(max_examples=300, deadline=None)
    @given(events=event_logs(), seed=st.randoms(use_true_random=False))
    def test_any_order_renders_like_rebuild(self, events: list[Event], seed: random.Random):
        """Folding a log in any order gives the profile of the sorted rebuild."""
        shuffled = list(events)
        seed.shuffle(shuffled)
        expected = render(rebuild(events))

        actual = _fold(shuffled, through_json=False)

        assert expected == actual

    @settings(max_examples=100, deadline=None)
    @given(events=event_logs(_VIEWS, size=200), seed=st.randoms(use_true_random=False))
    def test_bounded_lists_in_any_order(self, events: list[Event], seed: random.Random):
        """Many views (more values than the bounds): the lists match the rebuild in any order."""
        shuffled = list(events)
        seed.shuffle(shuffled)
        expected = render(rebuild(events))

        actual = _fold(shuffled, through_json=False)

        assert expected == actual

    @settings(max_examples=200, deadline=None)
    @given(events=event_logs(), seed=st.randoms(use_true_random=False))
    def test_state_stored_as_json_between_events(self, events: list[Event], seed: random.Random):
        """Storing the state as JSON after every event changes nothing."""
        shuffled = list(events)
        seed.shuffle(shuffled)
        expected = render(rebuild(events))

        actual = _fold(shuffled, through_json=True)

        assert expected == actual

    @settings(max_examples=200, deadline=None)
    @given(events=event_logs(), data=st.data())
    def test_rebuild_ignores_repeated_events(self, events: list[Event], data: st.DataObject):
        """A log holding some events twice rebuilds like the log without repeats."""
        repeats = data.draw(st.lists(st.sampled_from(events), max_size=10)) if events else []
        expected = render(rebuild(events))

        actual = render(rebuild(events + repeats))

        assert expected == actual

    @settings(max_examples=200, deadline=None)
    @given(events=event_logs())
    def test_render_is_json(self, events: list[Event]):
        """A rendered profile is plain JSON: it survives a round trip unchanged."""
        document = render(rebuild(events))

        assert document == json.loads(json.dumps(document, allow_nan=False))
