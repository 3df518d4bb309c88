"""The profile fold in process: cost per event and memory per visitor, before and after
engagement and activity tracking.

What the store does per visitor and batch is what is timed: load the state from JSON,
``apply`` the batch's events, write the state and the rendered document back as JSON
(``server.profile_store`` does exactly that, around SQLite). Visitors have realistic
90-day histories (``synthetic.visitor_history``: median 32 events, a few heavy ones),
sent in time order, one event per visitor and batch (``bench/ingest.py``'s mix: a batch
of 100 events touches ~100 visitors) and 10. Times are CPU time of this process
(``time.process_time``): on the shared machine wall time moves with the neighbours'
load, CPU time much less. Variants:

- ``before``: ``decision/profile.py`` as of ``--baseline`` (a git revision: the fold
  before this work), loaded from git into its own module;
- ``no declaration``: today's fold as the server calls it today (``apply(state,
  event)``): sessions and engagement, nothing kept for activity clauses;
- ``default rules``: with the default document's declaration (the journey segments);
- ``20 windowed segments``: with the declaration of ``bench/engine.py``'s windowed
  ruleset (product views for 30 days, purchases for a year, sessions, ...).

Reported: CPU microseconds per event for ``apply`` alone and for the store's whole
step (JSON in and out, render), and the step's events per second as a ratio to
``before`` (the server does more per event than this step: ``bench/ingest.py``
measures the whole); then per visitor after the 90 days: the state's and the
document's JSON size and the state's size in memory (tracemalloc),
median / p90 / max; and the bound: a visitor with far more events than are kept (5 per
minute for 4 days, every declared type), the activity and engagement parts alone. No
timing is asserted.

    .venv/bin/python bench/fold.py [--visitors 2000] [--batches 1,10] [--rounds 3]
                                   [--baseline 4e55f81]
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import random
import statistics
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import synthetic  # noqa: E402

from decision import compile_ruleset, default_document  # noqa: E402
from decision import profile as fold  # noqa: E402

DEFAULT_BASELINE = "4e55f81"


def baseline_module(revision: str) -> ModuleType:
    """``decision/profile.py`` as of ``revision``, imported under another name."""
    source = subprocess.run(
        ["git", "show", f"{revision}:decision/profile.py"],
        cwd=ROOT, check=True, capture_output=True, text=True,
    ).stdout
    spec = importlib.util.spec_from_loader("_profile_before", loader=None)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    # Our own file at a revision we name, loaded beside today's to time both.
    exec(compile(source, f"{revision}:decision/profile.py", "exec"), module.__dict__)  # noqa: S102
    return module


Fold = tuple[Callable[[], dict[str, Any]], Callable[[dict[str, Any], Any], None], Callable[[dict[str, Any]], Any]]
"""(new_state, apply(state, event), render(state))."""


def variants(revision: str) -> dict[str, Fold]:
    before = baseline_module(revision)
    default_needs = compile_ruleset(default_document()).activity
    windowed_needs = compile_ruleset(synthetic.make_windowed_document(200, 20, 100)).activity
    return {
        "before": (before.new_state, before.apply, before.render),
        "no declaration": (fold.new_state, fold.apply, fold.render),
        "default rules": (
            fold.new_state, lambda s, e: fold.apply(s, e, default_needs), fold.render
        ),
        "20 windowed segments": (
            fold.new_state, lambda s, e: fold.apply(s, e, windowed_needs), fold.render
        ),
    }


def histories(visitors: int, seed: int = 11) -> list[list[Any]]:
    rng = random.Random(seed)
    logs = []
    for _ in range(visitors):
        log = synthetic.visitor_history(rng)
        log.sort(key=lambda e: (e.timestamp, e.event_id))
        logs.append(log)
    return logs


def time_apply(variant: Fold, logs: list[list[Any]]) -> float:
    """Microseconds per event for ``apply`` alone."""
    new_state, apply, _ = variant
    events = sum(len(log) for log in logs)
    gc.collect()
    start = time.process_time()
    for log in logs:
        state = new_state()
        for event in log:
            apply(state, event)
    return (time.process_time() - start) / events * 1e6


def time_store_step(variant: Fold, logs: list[list[Any]], batch: int) -> float:
    """Microseconds per event for the store's step: JSON in, apply a batch, JSON and the
    rendered document out."""
    new_state, apply, render = variant
    events = sum(len(log) for log in logs)
    gc.collect()
    start = time.process_time()
    for log in logs:
        stored = orjson.dumps(new_state())
        for first in range(0, len(log), batch):
            state = orjson.loads(stored)
            for event in log[first : first + batch]:
                apply(state, event)
            stored = orjson.dumps(state)
            orjson.dumps(render(state))
    return (time.process_time() - start) / events * 1e6


def sizes(variant: Fold, logs: list[list[Any]]) -> dict[str, list[int]]:
    """Per visitor after the whole history: JSON bytes of state and document, and the
    state's bytes in memory as parsed from JSON (what a store holds per visitor)."""
    new_state, apply, render = variant
    found: dict[str, list[int]] = {"state JSON": [], "document JSON": [], "state in memory": []}
    for log in logs:
        state = new_state()
        for event in log:
            apply(state, event)
        text = orjson.dumps(state)
        found["state JSON"].append(len(text))
        found["document JSON"].append(len(orjson.dumps(render(state))))
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        parsed = orjson.loads(text)
        found["state in memory"].append(tracemalloc.get_traced_memory()[0] - before)
        tracemalloc.stop()
        del parsed
    return found


def worst_case(variant: Fold) -> dict[str, tuple[int, int]]:
    """JSON and in-memory bytes of the activity and engagement parts of a state that
    saw far more events of every declared type than are kept."""
    from datetime import timedelta

    from decision import Event

    new_state, apply, _ = variant
    state = new_state()
    kinds = [
        ("page_view", {"url": "/sale/shoes", "page_type": "sale", "category": "shoes"}),
        ("product_view", {"sku": "SKU-1234", "category": "shoes", "brand": "acme", "price": 49.0}),
        ("add_to_cart", {"sku": "SKU-1234", "quantity": 1, "price": 49.0}),
        ("purchase", {"order_id": "O", "value": 120.5, "currency": "EUR", "articles": 2}),
        ("session_start", {}),
    ]
    for minute in range(4 * 1440):
        moment = synthetic.NOW - timedelta(minutes=4 * 1440 - minute)
        for kind, properties in kinds:
            event_id = f"{minute}-{kind}"
            apply(state, Event(event_id, "v", kind, moment, {**properties, "order_id": event_id}
                               if kind == "purchase" else properties))
    found = {}
    for part in ("activity", "engagement"):
        text = orjson.dumps(state[part])
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        parsed = orjson.loads(text)
        found[part] = (len(text), tracemalloc.get_traced_memory()[0] - before)
        tracemalloc.stop()
        del parsed
    return found


def _quantiles(values: list[int]) -> str:
    ordered = sorted(values)
    p90 = ordered[int(0.9 * (len(ordered) - 1))]
    return f"{statistics.median(ordered):>8,.0f} {p90:>8,} {ordered[-1]:>9,}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--visitors", type=int, default=2000)
    parser.add_argument("--batches", default="1,10", help="events per visitor and batch")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--baseline", default=DEFAULT_BASELINE)
    args = parser.parse_args()
    logs = histories(args.visitors)
    counts = sorted(len(log) for log in logs)
    print(f"Python {sys.version.split()[0]}, one process; baseline {args.baseline}")
    print(
        f"{args.visitors:,} visitors with 90-day histories: {sum(counts):,} events, "
        f"median {statistics.median(counts):.0f} per visitor, max {counts[-1]}"
    )
    folds = variants(args.baseline)
    batches = [int(b) for b in args.batches.split(",")]
    applied: dict[str, list[float]] = {name: [] for name in folds}
    stepped: dict[tuple[str, int], list[float]] = {
        (name, batch): [] for name in folds for batch in batches
    }
    for _ in range(args.rounds):  # alternating, so a busy neighbour hits all alike
        for name, variant in folds.items():
            applied[name].append(time_apply(variant, logs))
            for batch in batches:
                stepped[name, batch].append(time_store_step(variant, logs, batch))
    print(f"\nCPU us per event, median of {args.rounds} rounds; store step = JSON in, apply, "
          "JSON and rendered document out")
    header = f"{'variant':24} {'apply':>7}"
    for batch in batches:
        header += f" {f'step, {batch}/batch':>15} {'ratio':>6}"
    print(header)
    for name in folds:
        line = f"{name:24} {statistics.median(applied[name]):7.2f}"
        for batch in batches:
            step = statistics.median(stepped[name, batch])
            before = statistics.median(stepped["before", batch])
            line += f" {step:15.2f} {before / step:5.2f}x"
        print(line)
    print("ratio: the step's events per CPU-second against before")
    print("\nper visitor after 90 days, bytes: median, p90, max")
    for name, variant in folds.items():
        for measure, values in sizes(variant, logs).items():
            print(f"{name:24} {measure:16} {_quantiles(values)}")
    print("\nthe bound: a visitor with 5 events a minute for 4 days, bytes")
    for name, variant in folds.items():
        if name != "before":
            for part, (text, memory) in worst_case(variant).items():
                print(f"{name:24} {part:11} JSON {text:>9,}   in memory {memory:>11,}")


if __name__ == "__main__":
    main()
