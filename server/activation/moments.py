"""The moment a request asks to decide at: previews in time, and a batch send's time.

Decide's ``now`` is for previews only (a marketer sees what a visitor will get when a
scheduled campaign starts): decisions that are served are made at the server's clock,
so that exposures, schedules and reports agree. A recorded DecideBatch may name its send
time, within ``RECORDED_SKEW`` of the server's clock (the bound on event times), since
its exposures are stamped with it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from decision import InvalidRequestError, Problem
from decision.profile import MAX_FUTURE, MIN_TIMESTAMP

__all__ = ["LATEST", "RECORDED_SKEW", "preview_moment", "requested_moment"]

LATEST = datetime(3000, 1, 1, tzinfo=UTC)
"""A preview may look this far ahead (exclusive): relative dates stay dates."""

RECORDED_SKEW = MAX_FUTURE
"""How far a recorded batch's ``now`` may be from the server's clock, either way."""


def requested_moment(
    message: Any, *, clock_now: datetime, recorded: bool, path: str = "now"
) -> datetime:
    """``message.now`` when set (else ``clock_now``), checked: a served (recorded)
    decision only within ``RECORDED_SKEW`` of the clock, a preview from 2000-01-01 to
    before 3000-01-01. ``InvalidRequestError`` naming ``path`` otherwise."""
    if not message.HasField("now"):
        return clock_now
    try:
        moment: datetime = message.now.ToDatetime(tzinfo=UTC)
    except (ValueError, OverflowError) as exc:
        raise InvalidRequestError([Problem(path, f"is not a valid time: {exc}")]) from None
    if recorded:
        if abs(moment - clock_now) > RECORDED_SKEW:
            hours = RECORDED_SKEW / timedelta(hours=1)
            raise InvalidRequestError(
                [
                    Problem(
                        path, f"must be within {hours:g} hours of the server's clock when recording"
                    )
                ]
            )
    elif not MIN_TIMESTAMP <= moment < LATEST:
        raise InvalidRequestError([Problem(path, "must be from 2000-01-01 to before 3000-01-01")])
    return moment


def preview_moment(request: Any, clock_now: datetime) -> datetime:
    """A DecideRequest's ``now``: only with ``preview`` (else ``InvalidRequestError``)."""
    if not request.preview:
        raise InvalidRequestError(
            [Problem("now", "is only for previews: set preview, or leave now unset")]
        )
    return requested_moment(request, clock_now=clock_now, recorded=False)
