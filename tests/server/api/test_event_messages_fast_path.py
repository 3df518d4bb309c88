"""The fast conversion path: it accepts only what the engine accepts, and yields the
engine's events (``server.api.event_messages.valid_batch`` against ``validate_events``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from decision import InvalidRequestError, Problem
from protos import decisioning_pb2 as pb
from server.api import event_messages as events

NOW = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)

# Mostly valid values (so that many batches pass), with the values on both sides of
# every rule mixed in: empty, blank, at and over the length limits, control characters,
# negative, zero, at and over the upper bounds, NaN and infinite numbers, lower-case and
# malformed currencies, no or a distant timestamp, nanos outside 0..999,999,999.


def _mostly(valid: list[Any], edge: list[Any]) -> st.SearchStrategy[Any]:
    """One of ``valid`` about four times in five, else one of ``edge``."""
    return st.sampled_from(valid * (4 * len(edge) // len(valid) + 1) + edge)


_ids = _mostly(
    ["a", "sku-1", "v-1", "x" * 256], ["", " ", "\t\n", "x" * 257, "a\x00", "b\x85", "c\x1b"]
)
_texts = _mostly(["", "/p", " ", "t" * 2048], ["t" * 2049])
_amounts = _mostly(
    [None, 0.0, -0.0, 19.99, 1e12], [-1.0, float("nan"), float("inf"), 1e308, 1e12 + 1]
)
_counts = _mostly([None, 0, 1, 1_000_000], [-1, 1_000_001, 2**40])
_currencies = _mostly(["", "EUR", "eur"], ["EU", "EURO", "E1R", "ÄÖÜ"])
_structs = st.one_of(
    st.none(),
    st.dictionaries(st.sampled_from(["a", "b.c", "$d", ""]), st.integers(-3, 3), max_size=2),
)


def _set(message: Any, **values: Any) -> Any:
    """``message`` with the values that are not None set (None leaves a field unset)."""
    for name, value in values.items():
        if value is not None:
            setattr(message, name, value)
    return message


_PROPERTIES = {  # oneof field -> a strategy for its message
    "session_start": st.builds(
        lambda r, lp, s: _set(pb.SessionStart(), referrer=r, landing_page=lp, utm_source=s),
        _texts,
        _texts,
        _ids,
    ),
    "page_view": st.builds(
        lambda u, pt, c: _set(pb.PageView(), url=u, page_type=pt, category=c),
        _texts,
        _ids,
        _ids,
    ),
    "product_view": st.builds(
        lambda s, c, b, p, o: _set(
            pb.ProductView(), sku=s, category=c, brand=b, price=p, on_sale=o
        ),
        _ids,
        _ids,
        _ids,
        _amounts,
        st.none() | st.booleans(),
    ),
    "cart": st.builds(
        lambda s, q, p: _set(pb.CartChange(), sku=s, quantity=q, price=p),
        _ids,
        _counts,
        _amounts,
    ),
    "purchase": st.builds(
        lambda o, v, c, a: _set(pb.Purchase(), order_id=o, value=v, currency=c, articles=a),
        _ids,
        _mostly([0.0, 25.5], [None, -1.0]),
        _currencies,
        _mostly([0, 2], [None, -1]),
    ),
    "order_return": st.builds(
        lambda o, a: _set(pb.OrderReturn(), order_id=o, articles=a),
        _ids,
        _mostly([0, 1], [None, -1]),
    ),
    "campaign": st.builds(
        lambda d, c, v, x: _set(
            pb.CampaignInteraction(), decision_id=d, campaign=c, variant=v, value=x
        ),
        _ids,
        _ids,
        _ids,
        _amounts,
    ),
    "identify": st.builds(lambda c: pb.Identify(customer_id=c), _mostly(["cust", "v-1"], [""])),
    "custom": st.builds(lambda n, p: (n, p), _ids, _structs),
}
_offsets = _mostly(
    [timedelta(0), timedelta(hours=-3), timedelta(hours=24)],
    [None, timedelta(hours=24, microseconds=1), timedelta(days=-10_000)],
)


@st.composite
def _event(draw: st.DrawFn) -> pb.Event:
    kind = draw(_mostly(list(events.TYPE_NAMES), [0, 99]))
    message = pb.Event(
        event_id=draw(_mostly(["e1", "e2", "e3"], ["", " ", "x" * 257, "e\x00"])),
        visitor_id=draw(_ids),
        type=kind,
    )
    offset = draw(_offsets)
    if offset is not None:
        message.timestamp.FromDatetime(NOW + offset)
        message.timestamp.nanos = draw(_mostly([0, 999_999_999], [-1, 1_000_000_000]))
    expected = events.PROPERTIES_FIELD.get(events.TYPE_NAMES.get(kind, ""), "custom")
    field = draw(_mostly([expected], [None, "purchase", "cart"]))
    if field == "custom":
        name, properties = draw(_PROPERTIES["custom"])
        message.custom.name = name
        if properties is not None:
            message.custom.properties.update(properties)
    elif field is not None:
        getattr(message, field).CopyFrom(draw(_PROPERTIES[field]))
    return message


def _engine(messages: list[pb.Event]) -> Any:
    """The thorough path's events, or the problems it names."""
    try:
        return events._checked_batch(messages, NOW, "events")
    except InvalidRequestError as e:
        return e.problems


def _valid(kind: int, **oneof: Any) -> pb.Event:
    message = pb.Event(event_id="e1", visitor_id="v-1", type=kind, **oneof)
    message.timestamp.FromDatetime(NOW - timedelta(minutes=5))
    return message


class TestFastPath:
    @settings(max_examples=500, deadline=None)
    @given(st.lists(_event(), min_size=1, max_size=3))
    def test_agrees_with_the_engine(self, messages: list[pb.Event]):
        """The fast path accepts exactly the batches the engine accepts, as the same
        events; it refuses the others (and the engine names their problems)."""
        expected = _engine(messages)

        actual = events.valid_batch(messages, NOW)

        if actual is None:
            assert isinstance(expected[0], Problem)
        else:
            assert expected == actual

    @pytest.mark.parametrize(
        "message",
        [
            _valid(pb.EVENT_TYPE_SESSION_START),
            _valid(pb.EVENT_TYPE_PAGE_VIEW, page_view=pb.PageView(url="/", category="shoes")),
            _valid(pb.EVENT_TYPE_PRODUCT_VIEW, product_view=pb.ProductView(sku="A", price=0)),
            _valid(pb.EVENT_TYPE_ADD_TO_CART, cart=pb.CartChange(sku="A", quantity=2)),
            _valid(pb.EVENT_TYPE_REMOVE_FROM_CART, cart=pb.CartChange(sku="A")),
            _valid(
                pb.EVENT_TYPE_PURCHASE,
                purchase=pb.Purchase(order_id="o", value=5, articles=1, currency="eur"),
            ),
            _valid(pb.EVENT_TYPE_RETURN, order_return=pb.OrderReturn(order_id="o", articles=0)),
            _valid(pb.EVENT_TYPE_CAMPAIGN_CLICK, campaign=pb.CampaignInteraction(campaign="c")),
            _valid(pb.EVENT_TYPE_IDENTIFY, identify=pb.Identify(customer_id="cust")),
            _valid(pb.EVENT_TYPE_CUSTOM, custom=pb.Custom(name="wishlist")),
        ],
        ids=lambda m: pb.EventType.Name(m.type),
    )
    def test_takes_every_valid_type(self, message: pb.Event):
        """A valid event of every type takes the fast path and equals the engine's."""
        expected = _engine([message])

        actual = events.valid_batch([message], NOW)

        assert expected == actual

    def test_repeat_with_the_same_content_is_kept(self):
        """A repeated event id with the same content passes, as in the engine."""
        message = _valid(pb.EVENT_TYPE_SESSION_START)

        actual = events.valid_batch([message, message], NOW)

        assert _engine([message, message]) == actual

    def test_repeat_with_other_content_is_left_to_the_engine(self):
        """A repeated event id with other content is the engine's to report."""
        other = _valid(pb.EVENT_TYPE_SESSION_START)
        other.visitor_id = "v-2"

        assert None is events.valid_batch([_valid(pb.EVENT_TYPE_SESSION_START), other], NOW)
