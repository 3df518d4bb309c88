"""What the load tester sends: Zipf-distributed visitors, Decide requests, Track batches.

Everything is built from a seed before the clock starts, and serialized once: the
timed loop only picks bytes from a pool, so the client spends its CPU on gRPC, not on
building messages. Track batches are the exception: every batch needs fresh event ids
(the server deduplicates on them), so a pre-built template gets new ids and is
re-serialized per call, which costs a few microseconds.
"""

from __future__ import annotations

import bisect
import itertools
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from google.protobuf import struct_pb2

from protos import decisioning_pb2 as pb

DECIDE_METHOD = "/decisioning.v1.DecisionService/Decide"
TRACK_METHOD = "/decisioning.v1.EventService/Track"

DEFAULT_PLACEMENTS = ("home_hero", "product_recommendations", "popup", "email_block")
"""The demo rules' placements (also those of ``bench/synthetic.py``)."""

DEVICES = (("mobile", 60), ("desktop", 32), ("tablet", 8))
COUNTRIES: tuple[tuple[str, int], ...] = (
    ("DE", 30), ("AT", 8), ("CH", 7), ("FR", 12), ("NL", 8),
    ("GB", 12), ("US", 15), ("IT", 4), ("ES", 3), ("PL", 1),
)  # fmt: skip
PAGE_TYPES = (("home", 25), ("category", 30), ("product", 30), ("cart", 10), ("checkout", 5))
CATEGORIES = ("shoes", "shirts", "jackets", "bags", "watches", "sports", "kids", "home", "beauty")
BRANDS = ("acme", "northwind", "contoso", "fabrikam", "globex", "initech", "umbrella")

POOL_SIZE = 4096
"""Distinct pre-built Decide requests per client process; the loop cycles through them."""


VISITOR_PREFIX = "loadtest-"
"""Every visitor id the load tester sends starts with this, so that its visitors are
never mistaken for (or mixed with) a store's real ones."""


def visitor_id(rank: int) -> str:
    """The id of the visitor with Zipf rank ``rank`` (1 is the most active)."""
    return f"{VISITOR_PREFIX}visitor-{rank}"


class ZipfSampler:
    """Draws ranks 1..n with P(k) proportional to 1 / k**s.

    The cumulative distribution is computed once; a draw is one uniform number and a
    binary search, so any ``s`` (including s <= 1, which numpy's zipf refuses) works.
    """

    def __init__(self, n: int, s: float = 1.1) -> None:
        if n < 1:
            raise ValueError(f"the population must have at least 1 visitor, got {n}")
        if s < 0:
            raise ValueError(f"the Zipf exponent must be >= 0, got {s}")
        self.n = n
        self.s = s
        weights = [1.0 / k**s for k in range(1, n + 1)]
        total = sum(weights)
        self.probabilities = tuple(w / total for w in weights)
        self._cdf = list(itertools.accumulate(self.probabilities))
        self._cdf[-1] = 1.0  # no rounding gap at the top

    def rank_for(self, u: float) -> int:
        """The rank a uniform number ``u`` in [0, 1) maps to."""
        return min(bisect.bisect_right(self._cdf, u), self.n - 1) + 1

    def sample(self, rng: random.Random) -> int:
        """One rank drawn with ``rng``."""
        return self.rank_for(rng.random())


def _weighted(rng: random.Random, table: Sequence[tuple[str, int]]) -> str:
    return rng.choices([name for name, _ in table], [weight for _, weight in table])[0]


def decide_context(rng: random.Random) -> dict[str, Any]:
    """A request context as a storefront sends it: device, country, page type, category."""
    page_type = _weighted(rng, PAGE_TYPES)
    context: dict[str, Any] = {
        "device": _weighted(rng, DEVICES),
        "country": _weighted(rng, COUNTRIES),
        "page_type": page_type,
    }
    if page_type in ("category", "product"):
        context["category"] = rng.choice(CATEGORIES)
    return context


@dataclass(frozen=True, slots=True)
class WorkloadSpec:
    """How requests are drawn. ``placements_per_call`` is an inclusive (min, max) range.

    ``writes``: whether the load may write into the target's store. Without it every
    Decide is a preview (no exposure recorded, not counted in decide_decisions_total)
    and the mix has no Track calls.
    """

    visitors: int = 10_000
    zipf_s: float = 1.1
    placements: tuple[str, ...] = DEFAULT_PLACEMENTS
    placements_per_call: tuple[int, int] = (1, 5)
    track_ratio: float = 0.0
    track_batch: int = 10
    seed: int = 1
    writes: bool = True

    def __post_init__(self) -> None:
        low, high = self.placements_per_call
        if not 1 <= low <= high:
            raise ValueError(f"placements per call must be 1 <= min <= max, got {low}-{high}")
        if not self.placements:
            raise ValueError("at least one placement id is needed")
        if not 0.0 <= self.track_ratio <= 1.0:
            raise ValueError(f"the track ratio must be within 0-1, got {self.track_ratio}")
        if not self.writes and self.track_ratio > 0:
            raise ValueError("a load that may not write sends no Track calls (track ratio 0)")
        if not 1 <= self.track_batch <= 1000:
            raise ValueError(f"a Track batch holds 1-1000 events, got {self.track_batch}")


def decide_requests(spec: WorkloadSpec, seed: int, count: int = POOL_SIZE) -> list[bytes]:
    """``count`` serialized DecideRequests: Zipf visitors, realistic contexts, previews
    when ``spec.writes`` is off.

    Placements are drawn without replacement from ``spec.placements`` (a request may
    not name one twice), so a call asks for at most all of them.
    """
    rng = random.Random(seed)
    sampler = ZipfSampler(spec.visitors, spec.zipf_s)
    low, high = spec.placements_per_call
    pool = []
    for _ in range(count):
        n = min(rng.randint(low, high), len(spec.placements))  # no placement twice
        chosen = rng.sample(spec.placements, n)
        context = struct_pb2.Struct()
        context.update(decide_context(rng))
        request = pb.DecideRequest(
            visitor_id=visitor_id(sampler.sample(rng)),
            placements=chosen,
            context=context,
            preview=not spec.writes,
        )
        pool.append(request.SerializeToString())
    return pool


def _event(rng: random.Random, visitor: str, event_id: str, when: datetime) -> dict[str, Any]:
    kind = rng.choices(
        ["page_view", "product_view", "add_to_cart", "session_start", "purchase"],
        [45, 35, 12, 6, 2],
    )[0]
    properties: dict[str, Any]
    if kind == "page_view":
        properties = {"page_type": "category", "category": rng.choice(CATEGORIES)}
    elif kind == "product_view":
        properties = {
            "sku": f"sku-{rng.randint(1, 5000)}",
            "category": rng.choice(CATEGORIES),
            "brand": rng.choice(BRANDS),
            "price": round(rng.uniform(5, 300), 2),
        }
    elif kind == "add_to_cart":
        properties = {"sku": f"sku-{rng.randint(1, 5000)}", "quantity": 1, "price": 49.9}
    elif kind == "purchase":
        properties = {
            "order_id": f"order-{event_id}",
            "value": round(rng.uniform(20, 400), 2),
            "currency": "EUR",
            "articles": rng.randint(1, 5),
        }
    else:
        properties = {"landing_page": "/"}
    return {
        "event_id": event_id,
        "visitor_id": visitor,
        "type": kind,
        "timestamp": when.isoformat(),
        "properties": properties,
    }


def _track_request(events: list[dict[str, Any]]) -> pb.TrackRequest:
    # The client's own converter: the load tester sends exactly what DecisionClient.track
    # would, but keeps the message so it can re-serialize it with fresh ids.
    from client._events import track_request

    return track_request(events)


class TrackBatches:
    """Track requests with unique event ids: ``next()`` returns serialized bytes.

    ``prefix`` must be unique per client process and run (event ids are the server's
    idempotency keys: a repeated id would be stored once and counted as a duplicate).
    """

    def __init__(self, spec: WorkloadSpec, seed: int, prefix: str, templates: int = 64) -> None:
        rng = random.Random(seed)
        sampler = ZipfSampler(spec.visitors, spec.zipf_s)
        now = datetime.now(UTC)
        self._templates = []
        for t in range(templates):
            events = [
                _event(rng, visitor_id(sampler.sample(rng)), f"t{t}-{i}", now)
                for i in range(spec.track_batch)
            ]
            self._templates.append(_track_request(events))
        self._prefix = prefix
        self._counter = itertools.count()

    def next(self) -> bytes:
        """The next batch, every event id new."""
        n = next(self._counter)
        request = self._templates[n % len(self._templates)]
        for i, event in enumerate(request.events):
            event.event_id = f"{self._prefix}-{n}-{i}"
            if event.HasField("purchase"):
                event.purchase.order_id = f"{self._prefix}-order-{n}-{i}"
        return request.SerializeToString()


def seed_batches(visitors: int, batch_events: int = 500, seed: int = 1) -> Iterator[bytes]:
    """Serialized Track batches that give every visitor 1..``visitors`` a profile.

    Each visitor gets a session start, page and product views and, for every third
    visitor, a purchase, so profile-based segments have something to match. Event ids
    are deterministic (``loadtest-seed-<visitor>-<n>``): seeding a store twice stores nothing new.
    """
    rng = random.Random(seed)
    start = datetime.now(UTC) - timedelta(days=1)
    pending: list[dict[str, Any]] = []
    for rank in range(1, visitors + 1):
        visitor = visitor_id(rank)
        kinds: list[tuple[str, dict[str, Any]]] = [
            ("session_start", {"landing_page": "/"}),
            ("page_view", {"page_type": "category", "category": rng.choice(CATEGORIES)}),
            (
                "product_view",
                {
                    "sku": f"sku-{rng.randint(1, 5000)}",
                    "category": rng.choice(CATEGORIES),
                    "brand": rng.choice(BRANDS),
                    "price": 59.9,
                },
            ),
        ]
        if rank % 3 == 0:
            kinds.append(
                (
                    "purchase",
                    {
                        "order_id": f"{VISITOR_PREFIX}seed-order-{rank}",
                        "value": round(rng.uniform(20, 900), 2),
                        "currency": "EUR",
                        "articles": rng.randint(1, 6),
                    },
                )
            )
        for n, (kind, properties) in enumerate(kinds):
            pending.append(
                {
                    "event_id": f"{VISITOR_PREFIX}seed-{rank}-{n}",
                    "visitor_id": visitor,
                    "type": kind,
                    "timestamp": (start + timedelta(seconds=n)).isoformat(),
                    "properties": properties,
                }
            )
        if len(pending) >= batch_events:
            yield _track_request(pending).SerializeToString()
            pending = []
    if pending:
        yield _track_request(pending).SerializeToString()


@dataclass(frozen=True, slots=True)
class Call:
    """One call to make: which method (its short name and path) and the request bytes."""

    name: str
    method: str
    payload: bytes


def call_source(spec: WorkloadSpec, seed: int, prefix: str) -> Callable[[], Call]:
    """A function returning the next call of the mix: Decide, or Track with probability
    ``spec.track_ratio`` (a seeded, deterministic sequence)."""
    decides = [Call("Decide", DECIDE_METHOD, payload) for payload in decide_requests(spec, seed)]
    cycle = itertools.cycle(decides)
    if spec.track_ratio <= 0:
        return cycle.__next__
    batches = TrackBatches(spec, seed + 1, prefix)
    rng = random.Random(seed + 2)
    ratio = spec.track_ratio

    def next_call() -> Call:
        if rng.random() < ratio:
            return Call("Track", TRACK_METHOD, batches.next())
        return next(cycle)

    return next_call
