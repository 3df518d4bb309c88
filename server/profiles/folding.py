"""A profile store's per-visitor steps, whatever its backend: fold new events, rebuild,
back-fill kept activity, and the key that says which declarations a stored state covers.

A store does the I/O (it loads states and event logs and writes what these return, in
the same transaction); these functions hold the rules, so that every backend folds
alike:

- **Ingest** (``fold_new``): a visitor's new events are applied in ``(timestamp,
  event_id)`` order, so a batch that arrives out of order within itself is placed
  exactly. When the stored state is of another version, or an event came too late to
  place (``decision.profile.needs_rebuild``), it returns None: the store rebuilds the
  state from the visitor's event log (``rebuilt``) in the same transaction.
- **Rebuilds** (identity merges, ``decide profiles rebuild``, stale states) and
  **back-fills** (``backfilled``) fold with the declaration of the rules being served
  (``Ruleset.activity``).
- **Coverage** (``coverage_key``): a state keeps the activity of a declaration and is
  complete for one (``decision.retention``). A store keeps a short key of the latter
  beside each state, indexed, so the back-fill after a publish finds the states that do
  not cover the new declaration by key, without reading them: states with equal keys
  cover the same declarations (``Coverage.covers``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from decision.profile import (
    Event,
    apply,
    backfill,
    covers,
    needs_rebuild,
    new_state,
    rebuild,
)
from decision.retention import NO_ACTIVITY, ActivityNeeds

__all__ = [
    "STALE_KEY",
    "Coverage",
    "backfilled",
    "coverage_key",
    "fold_new",
    "rebuilt",
]

STALE_KEY = "stale"
"""The coverage key of a state that must be rebuilt from the log (another version of
the fold, or marked by it): it covers no declaration that reads anything."""

_ANY_KEY = "any"
"""The key of a state that has folded nothing: complete for every declaration."""


def _order(event: Event) -> tuple[Any, str]:
    return event.timestamp, event.event_id


def fold_new(
    state: dict[str, Any] | None, events: Sequence[Event], needs: ActivityNeeds
) -> dict[str, Any] | None:
    """Fold a visitor's new events (distinct ids, none stored before) into its stored
    state (None: a visitor without one), keeping what ``needs`` reads. Returns the
    state, changed in place, or None when it must be rebuilt from the event log."""
    if state is None:
        state = new_state()
    elif needs_rebuild(state):
        return None
    if len(events) > 1:
        events = sorted(events, key=_order)
    for event in events:
        apply(state, event, needs)
    return None if needs_rebuild(state) else state


def rebuilt(log: Sequence[Event], needs: ActivityNeeds) -> dict[str, Any] | None:
    """The state of a visitor's whole event log (None without events: no profile)."""
    return rebuild(log, needs) if log else None


def backfilled(
    state: dict[str, Any], log: Sequence[Event], needs: ActivityNeeds
) -> dict[str, Any] | None:
    """``state`` completed from the visitor's event log for ``needs`` (the activity
    and sessions from the log, the rest as it was); a state that must be rebuilt is
    rebuilt. None when the log is empty (no profile)."""
    if not log:
        return None
    if needs_rebuild(state):
        return rebuild(log, needs)
    backfill(state, log, needs)
    return state


def coverage_key(state: Mapping[str, Any]) -> str:
    """A short key of the declaration ``state`` is complete for (16 hex digits)."""
    if needs_rebuild(state):
        return STALE_KEY
    activity = state["activity"]
    record = activity["complete"] if activity["complete"] is not None else activity["using"]
    if record is None:
        return _ANY_KEY
    return _key_of(record)


def _key_of(record: Any) -> str:
    return hashlib.blake2b(orjson.dumps(record), digest_size=8).hexdigest()


class Coverage:
    """The declaration a store folds with, and a memo of which keys cover it. A new
    declaration is a new ``Coverage``, which a store swaps in as one reference."""

    __slots__ = ("_covered", "_own_key", "needs")

    def __init__(self, needs: ActivityNeeds = NO_ACTIVITY) -> None:
        self.needs = needs
        self._own_key = _key_of(needs.as_json())
        self._covered: dict[str, bool] = {_ANY_KEY: True, STALE_KEY: not needs, self._own_key: True}

    def key(self, state: Mapping[str, Any]) -> str:
        """``coverage_key(state)``; cheap for a state complete for ``needs`` itself."""
        activity = state.get("activity")
        if (
            activity is not None
            and activity["complete"] is None
            and self.needs.is_stored_as(activity["using"])
            and not needs_rebuild(state)
        ):
            return self._own_key
        return coverage_key(state)

    def known(self, key: str) -> bool | None:
        """Whether states with ``key`` cover ``needs``; None when not known yet (ask
        ``learn`` with one such state)."""
        return self._covered.get(key)

    def learn(self, key: str, state: Mapping[str, Any]) -> bool:
        """Whether states with ``key`` cover ``needs``, judged on ``state`` (one of them)."""
        answer = self.covers(state)
        self._covered[key] = answer
        return answer

    def covers(self, state: Mapping[str, Any]) -> bool:
        """Whether ``state`` answers every activity clause of ``needs`` exactly."""
        if needs_rebuild(state):
            return not self.needs
        return covers(state, self.needs)
