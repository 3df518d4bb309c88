"""``decide loadtest``: closed- and open-loop load with HDR latency, against a baseline.

    decide loadtest [--target ADDR] [--concurrency N | --rate R] [--duration S] [--baseline]

``workload`` draws the calls (Zipf visitors, Decide contexts, Track batches),
``worker`` drives them from one process, ``runner`` spreads a run over processes and
merges the histograms, ``targets`` starts and stops servers, ``baseline`` is the
no-logic server the figures are compared with, ``report`` prints the result and
``h2load`` prepares a run of the C load generator h2load.
"""

from __future__ import annotations

from loadtest.report import Report
from loadtest.runner import RunSummary, run_load
from loadtest.worker import WorkerSpec
from loadtest.workload import WorkloadSpec, ZipfSampler

__all__ = ["Report", "RunSummary", "WorkerSpec", "WorkloadSpec", "ZipfSampler", "run_load"]
