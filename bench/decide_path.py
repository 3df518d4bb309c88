"""What one Decide costs in the server's own Python, step by step, without the transport.

    .venv/bin/python bench/decide_path.py [--rounds 15] [--calls 5000] [--profile]

The server's Decide handler (the edge around ``DecisionServicer.Decide``, as
``server.api.handlers`` registers it) is called in a loop on one event loop with a
stand-in for grpc.aio's context, on ``synthetic.make_document(200, 100)`` with 2,000
stored profiles visited in a Zipf order and a storefront context, as ``bench/load.py``
sends them. Then each step is timed on its own over the same requests: parsing the
request bytes, checking it, building the filter document, the engine, decision ids,
counting the decisions, recording exposures, encoding the response. Figures are the
minimum over rounds of the mean per call (the least disturbed by other jobs on a shared
machine), in microseconds. ``--profile`` prints cProfile's view of the whole handler.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import pstats
import random
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import synthetic

import decision
from protos import decisioning_pb2 as pb
from server.analytics.exposures import ExposureRecorder
from server.api.convert import new_decision_ids
from server.api.decision_service import DecisionServicer
from server.api.handlers import register, service_descriptor
from server.api.interceptors import Credentials, Edge
from server.api.responses import ResponseEncoder
from server.executors import Pool
from server.metrics import Metrics
from server.profiles.cache import ProfileMemos
from server.profiles.sqlite import SQLiteProfileStore
from server.rules.snapshot import build_snapshot

PLACEMENTS = ["home_hero", "product_recommendations", "popup"]


class _Context:
    """What the Decide path uses of grpc.aio's ServicerContext."""

    def invocation_metadata(self) -> tuple[()]:
        return ()

    def set_code(self, code: Any) -> None:
        raise AssertionError(f"the call failed: {code}")

    set_details = set_trailing_metadata = set_code


class _Server:
    """Collects the handlers ``register`` would add to a grpc.aio server."""

    def __init__(self) -> None:
        self.handlers: dict[str, Any] = {}

    def add_generic_rpc_handlers(self, generic: Any) -> None:
        for handler in generic:
            self.handlers.update(handler._method_handlers)


def _requests(count: int, seed: int = 1) -> list[bytes]:
    rng = random.Random(seed)
    weights = [1 / (i + 1) ** 1.1 for i in range(2000)]
    visitors = rng.choices(range(2000), weights, k=count)
    out = []
    for v in visitors:
        request = pb.DecideRequest(visitor_id=f"v{v}", placements=PLACEMENTS)
        request.context.update(
            {"device": rng.choice(synthetic.DEVICES), "country": "DE", "page_type": "home"}
        )
        out.append(request.SerializeToString())
    return out


def _best(function: Callable[[], None], calls: int, rounds: int) -> float:
    """The minimum over ``rounds`` of the mean microseconds per call."""
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        function()
        best = min(best, (time.perf_counter() - start) / calls * 1e6)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument(
        "--rules",
        choices=("synthetic", "demo"),
        default="synthetic",
        help="synthetic.make_document(200, 100) or the demo rules (decide serve --demo)",
    )
    args = parser.parse_args()

    document = (
        synthetic.make_document(200, 100) if args.rules == "synthetic" else decision.demo_document()
    )
    snapshot = build_snapshot(1, json.dumps(document), synthetic.NOW)
    folder = Path(tempfile.mkdtemp(prefix="decide-path-"))
    store = SQLiteProfileStore(folder / "p.db")
    profiles = {f"v{i}": p for i, p in enumerate(synthetic.make_profiles(2000))}

    class Profiles:
        def peek(self, visitor_id: str) -> Any:
            return profiles.get(visitor_id)

        get = peek

    class Source:
        pass

    source = Source()
    source.snapshot = snapshot  # type: ignore[attr-defined]
    metrics = Metrics()
    recorder = ExposureRecorder(folder / "p.db", metrics=metrics)
    servicer = DecisionServicer(
        source,
        Profiles(),
        reads=Pool("reads", threads=1, queue=1),
        clock=lambda: synthetic.NOW,
        metrics=metrics,
        exposures=recorder,
        credentials=Credentials(None, ()),
    )
    edge = Edge(Credentials(None, ()), metrics=metrics, max_in_flight={"*": 1000})
    fake = _Server()
    register(fake, servicer, service_descriptor("DecisionService"), edge)  # type: ignore[arg-type]
    handler = fake.handlers["/decisioning.v1.DecisionService/Decide"]
    behavior, parse = handler.unary_unary, handler.request_deserializer
    serialize = handler.response_serializer
    raw = _requests(args.calls)
    messages = [parse(r) for r in raw]
    context = _Context()
    loop = asyncio.new_event_loop()

    async def whole() -> None:
        for body in raw:
            serialize(await behavior(parse(body), context))

    def run_whole() -> None:
        loop.run_until_complete(whole())

    run_whole()  # warm: memos, encoder shapes, specialization
    steps: dict[str, Callable[[], None]] = {"whole handler": run_whole}

    def parse_only() -> None:
        for body in raw:
            parse(body)

    def check_only() -> None:
        for m in messages:
            servicer._request(m, list(m.placements), snapshot.ruleset.placements)

    contexts = [
        servicer._request(m, list(m.placements), snapshot.ruleset.placements)[0] for m in messages
    ]
    memos = ProfileMemos()

    def document_only() -> None:
        for m, c in zip(messages, contexts, strict=True):
            stored = profiles.get(m.visitor_id)
            memos.get(m.visitor_id, stored, snapshot.ruleset)
            _ = {**stored, "context": c} if stored else {"context": c}

    def engine_only() -> None:
        for m, c in zip(messages, contexts, strict=True):
            stored = profiles.get(m.visitor_id)
            memo = memos.get(m.visitor_id, stored, snapshot.ruleset)
            document = {**stored, "context": c} if stored else {"context": c}
            decision.decide_trusted(
                snapshot.ruleset, m.visitor_id, document, PLACEMENTS, synthetic.NOW, False, memo
            )

    decided = [
        decision.decide_trusted(
            snapshot.ruleset,
            m.visitor_id,
            {**(profiles.get(m.visitor_id) or {}), "context": c},
            PLACEMENTS,
            synthetic.NOW,
        )
        for m, c in zip(messages, contexts, strict=True)
    ]
    ids = [new_decision_ids(len(d)) for d in decided]

    def ids_only() -> None:
        for d in decided:
            new_decision_ids(len(d))

    def metrics_only() -> None:
        for d in decided:
            metrics.observe_decisions(d)

    def exposures_only() -> None:
        for m, d, i in zip(messages, decided, ids, strict=True):
            recorder.record(
                [
                    (
                        x,
                        m.visitor_id,
                        e.campaign_id,
                        e.variant_id or "holdout",
                        e.matched_segments,
                        e.placement,
                        synthetic.NOW,
                    )
                    for e, x in zip(d, i, strict=True)
                    if e.campaign_id is not None
                ]
            )

    encoder = ResponseEncoder()

    def encode_only() -> None:
        for d, i in zip(decided, ids, strict=True):
            encoder.encode(d, i, snapshot)

    def message_only() -> None:
        for d, i in zip(decided, ids, strict=True):
            encoder.message(d, i, snapshot, explain=False).SerializeToString()

    steps.update(
        {
            "parse request bytes": parse_only,
            "check request, context to dict": check_only,
            "profile, memo, filter document": document_only,
            "engine (document included)": engine_only,
            "decision ids": ids_only,
            "count decisions (metrics)": metrics_only,
            "record exposures (queue)": exposures_only,
            "encode response (pre-encoded parts)": encode_only,
            "build and serialize a message instead": message_only,
        }
    )
    print(
        f"Python {sys.version.split()[0]}, load average {os.getloadavg()[0]:.2f}; "
        f"{args.calls:,d} calls x {args.rounds} rounds, minimum of the round means"
    )
    for name, step in steps.items():
        print(f"  {name:<40} {_best(step, args.calls, args.rounds):8.2f} us/call")
        recorder.flush()
    if args.profile:
        profiler = cProfile.Profile()
        profiler.runcall(run_whole)
        pstats.Stats(profiler).sort_stats("tottime").print_stats(20)
    recorder.close()
    store.close()
    loop.close()


if __name__ == "__main__":
    main()
