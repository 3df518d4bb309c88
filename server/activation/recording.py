"""What follows from a written batch of exposures: stored assignments and served campaigns.

``ExposureListener.written`` runs after each batch of exposures is committed (by the
exposure writer's thread for Decide, by the report thread for a recorded DecideBatch):

1. **assignments**: each exposure's arm becomes its visitor's assignment for the
   campaign (``AssignmentStore.record``; a row is written only when the arm or the
   salt differs from the stored one, so a visitor who keeps their arm costs a lookup,
   not a write). The salt is the campaign's in the rules served now.
2. **served campaigns**: the first time a campaign's variant (not its holdout: a held
   out visitor saw nothing) is served to a visitor, a ``campaign_served`` event is
   tracked for them, which puts the campaign in ``campaigns.seen`` (``decision.
   profile``). Being an event, it is in the event log: a profile rebuilt from the log
   is the same, an identity merge carries it along, DeleteVisitor removes it.

Bounded: the event's id is derived from (visitor id, campaign), so the event log holds
at most one per visitor and campaign, however often it is served; an LRU of the pairs
already queued keeps repeats from reaching the store at all (after a restart the first
repeat of each pair is a duplicate the store drops).

Tracking a served event folds it into the stored profile (read, fold, render, write:
about 110 us of CPU per visitor here), the largest part of a recorded batch send's cost
per visitor (``bench/batch.py``). It is done in the writer's thread, in one ``track``
per batch: a thread of its own was measured slower (its transactions and the writer's
took turns at SQLite's write lock, and the two threads at the GIL), and nothing else
waits for this thread: Decide's writer is in the background, and a batch send's pace is
the pace its exposures are recorded at.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any, Protocol

from decision import HOLDOUT_ARM
from decision.profile import Event
from server.activation.store import AssignmentStore, Served
from server.analytics.exposure_buffer import Pending
from server.rules.snapshot import Snapshot

__all__ = ["SERVED_EVENT", "ExposureListener", "served_event_id"]

logger = logging.getLogger("decide.server")

SERVED_EVENT = "campaign_served"

DEFAULT_REMEMBERED = 100_000
"""(visitor, campaign) pairs whose served event the listener remembers tracking."""


class _Source(Protocol):
    @property
    def snapshot(self) -> Snapshot | None: ...


def served_event_id(visitor_id: str, campaign: str) -> str:
    """The id of the one ``campaign_served`` event of a visitor id and campaign."""
    digest = hashlib.blake2b(f"{visitor_id}\x1f{campaign}".encode(), digest_size=16)
    return f"served-{digest.hexdigest()}"


class ExposureListener:
    """Told of every committed batch of exposures (``ExposureRecorder.listener``)."""

    def __init__(
        self,
        assignments: AssignmentStore,
        profiles: Any,
        source: _Source,
        *,
        remembered: int = DEFAULT_REMEMBERED,
    ) -> None:
        self._assignments = assignments
        self._profiles = profiles
        self._source = source
        self._remembered = remembered
        self._tracked: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._lock = threading.Lock()  # the exposure writer and batch sends both call

    def written(self, batch: Sequence[Pending], channel: str) -> None:
        """Record the batch's assignments and track its first-served campaigns."""
        snapshot = self._source.snapshot
        campaigns = snapshot.ruleset.campaigns if snapshot is not None else {}
        served = []
        events = []
        with self._lock:
            tracked = self._tracked
            for decision_id, visitor_id, campaign_id, variant, _, _, at in batch:
                campaign = campaigns.get(campaign_id)
                salt = campaign.salt if campaign is not None else campaign_id
                served.append(Served(visitor_id, campaign_id, variant, salt, at))
                key = (visitor_id, campaign_id)
                if variant == HOLDOUT_ARM or key in tracked:
                    continue
                tracked[key] = None
                properties = {
                    "campaign": campaign_id,
                    "variant": variant,
                    "decision_id": decision_id,
                    "channel": channel,
                }
                event_id = served_event_id(visitor_id, campaign_id)
                events.append(Event(event_id, visitor_id, SERVED_EVENT, at, properties))
            while len(tracked) > self._remembered:
                tracked.popitem(last=False)
        self._assignments.record(served)
        if events:
            try:
                self._profiles.track(events)
            except Exception:
                with self._lock:  # not tracked: try again with their next exposure
                    for event in events:
                        self._tracked.pop(
                            (event.visitor_id, str(event.properties["campaign"])), None
                        )
                raise
