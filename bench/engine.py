"""Engine benchmark: compiled filters against GrowthBook's evaluator, and decide() latency.

Runs in one process on one core and prints its figures; nothing here asserts timings.

    .venv/bin/python bench/engine.py [--profiles 10000] [--repeats 5] [--calls 20000]
                                     [--rounds 3] [--windowed-only]

Needs the bench extra for the peer library: ``pip install -e '.[bench]'``.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import synthetic

from decision import compile_filter, compile_ruleset, decide

TARGET_RATIO = 10.0
TARGET_DECIDE_US = 30.0
TARGET_LARGE_FACTOR = 1.5
TARGET_WINDOWED_FACTOR = 1.5


def _evals_per_second(fn: Any, profiles: list[Any], repeats: int) -> float:
    """Median evaluations per second of ``fn`` over all profiles, ``repeats`` rounds."""
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        for doc in profiles:
            fn(doc)
        rates.append(len(profiles) / (time.perf_counter() - start))
    return statistics.median(rates)


def bench_filters(profiles: list[dict[str, Any]], repeats: int) -> None:
    try:
        from growthbook.core import evalCondition
    except ImportError:
        evalCondition = None
        print("growthbook is not installed (pip install -e '.[bench]'): peer column skipped")
    filters = {**synthetic.PARCELLAB_FILTERS, **synthetic.EXTRA_FILTERS}
    print(f"\nFilter evaluations per second over {len(profiles):,} profiles (median of {repeats})")
    print(f"{'filter':30} {'decide':>12} {'growthbook':>12} {'ratio':>7}  matches")
    ours_total = peer_total = 0.0
    for name, spec in filters.items():
        predicate = compile_filter(spec)
        ours = _evals_per_second(predicate, profiles, repeats)
        matches = sum(predicate(p) for p in profiles)
        ours_total += 1 / ours
        line = f"{name:30} {ours:12,.0f}"
        if evalCondition is not None:
            peer = _evals_per_second(lambda d, s=spec: evalCondition(d, s), profiles, repeats)
            peer_matches = sum(evalCondition(p, spec) for p in profiles)
            peer_total += 1 / peer
            agree = "" if peer_matches == matches else f" (growthbook: {peer_matches})"
            line += f" {peer:12,.0f} {ours / peer:6.1f}x  {matches}{agree}"
        else:
            line += f" {'-':>12} {'-':>7}  {matches}"
        print(line)
    n = len(filters)
    summary = f"{'all filters (harmonic mean)':30} {n / ours_total:12,.0f}"
    if evalCondition is not None:
        ratio = peer_total / ours_total
        summary += f" {n / peer_total:12,.0f} {ratio:6.1f}x"
        verdict = "met" if ratio >= TARGET_RATIO else "MISSED"
        summary += f"\ntarget >= {TARGET_RATIO:.0f}x GrowthBook: {verdict}"
    print(summary)


def _decide_median_us(ruleset: Any, profiles: list[dict[str, Any]], calls: int) -> float:
    placements = ["home_hero", "product_recommendations", "popup"]
    samples = []
    now = synthetic.NOW
    gc.collect()
    for i in range(calls):
        profile = profiles[i % len(profiles)]
        context = profile["context"]
        start = time.perf_counter_ns()
        decide(ruleset, f"visitor-{i}", profile, placements, context, now)
        samples.append(time.perf_counter_ns() - start)
    return statistics.median(samples) / 1000


def bench_decide(profiles: list[dict[str, Any]], calls: int) -> None:
    print(f"\ndecide() with 3 placements, median of {calls:,} calls")
    base_doc = synthetic.make_document(200, 100)
    base = _decide_median_us(compile_ruleset(base_doc), profiles, calls)
    large_doc = synthetic.make_document(10_000, 100)
    start = time.perf_counter()
    large_ruleset = compile_ruleset(large_doc)
    compile_s = time.perf_counter() - start
    large = _decide_median_us(large_ruleset, profiles, calls)
    print(f"{'200 segments, 100 campaigns':34} {base:8.1f} us   target <= {TARGET_DECIDE_US:.0f} us: "
          f"{'met' if base <= TARGET_DECIDE_US else 'MISSED'}")
    print(f"{'10,000 segments, 100 campaigns':34} {large:8.1f} us   ratio {large / base:.2f}x, target "
          f"<= {TARGET_LARGE_FACTOR}x: {'met' if large <= TARGET_LARGE_FACTOR * base else 'MISSED'}")
    print(f"compiling the 10,000-segment ruleset took {compile_s:.2f} s")


def bench_windowed(profiles: int, calls: int, rounds: int) -> None:
    """decide() with 20 windowed-activity segments among 200 against the same document
    without them, on profiles carrying 90-day histories (engagement and kept activity)."""
    plain_doc = synthetic.make_document(200, 100)
    windowed_doc = synthetic.make_windowed_document(200, 20, 100)
    plain = compile_ruleset(plain_doc)
    windowed = compile_ruleset(windowed_doc)
    documents = synthetic.make_activity_profiles(profiles, windowed.activity)
    kept = [sum(len(v["t"]) for v in d.get("activity", {}).values()) for d in documents]
    print(
        f"\ndecide() with 3 placements, 20 windowed-activity segments among 200, "
        f"median of {calls:,} calls, {rounds} alternating rounds"
    )
    print(
        f"profiles: {len(documents):,} with 90-day histories, kept activity entries "
        f"median {statistics.median(kept):.0f}, max {max(kept)}"
    )
    # Alternate the two so that a busy neighbour on the shared machine hits both alike.
    without, with_ = [], []
    for _ in range(rounds):
        without.append(_decide_median_us(plain, documents, calls))
        with_.append(_decide_median_us(windowed, documents, calls))
    base, ours = statistics.median(without), statistics.median(with_)
    ratio = ours / base
    verdict = "met" if ratio <= TARGET_WINDOWED_FACTOR else "MISSED"
    print(f"{'without windowed segments':34} {base:8.1f} us   (rounds: {_fmt(without)})")
    print(f"{'with 20 windowed segments':34} {ours:8.1f} us   (rounds: {_fmt(with_)})")
    print(f"ratio {ratio:.2f}x, target <= {TARGET_WINDOWED_FACTOR}x: {verdict}")


def _fmt(values: list[float]) -> str:
    return ", ".join(f"{v:.1f}" for v in values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profiles", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--windowed-only", action="store_true",
                        help="only the windowed-activity comparison")
    parser.add_argument("--rounds", type=int, default=3,
                        help="alternating rounds of the windowed-activity comparison")
    args = parser.parse_args()
    print(f"Python {sys.version.split()[0]}, one process")
    if not args.windowed_only:
        profiles = synthetic.make_profiles(args.profiles)
        bench_filters(profiles, args.repeats)
        bench_decide(profiles, args.calls)
    bench_windowed(args.profiles, args.calls, args.rounds)


if __name__ == "__main__":
    main()
