"""``decide loadtest`` against real servers: a short run, its report, and its refusals."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from cli import EXIT_OK, EXIT_USAGE, main
from loadtest.baseline import loop_name
from loadtest.recording import Interval, Recorder, merge, new_histogram
from loadtest.report import Report
from loadtest.runner import ProgressLine, RunSummary, run_load
from loadtest.targets import TargetError, check_loopback
from loadtest.worker import WorkerSpec
from loadtest.workload import DEFAULT_PLACEMENTS, WorkloadSpec

pytestmark = pytest.mark.slow

LATENCY_KEYS = {"p50", "p90", "p99", "p99.9", "mean", "max"}


@pytest.fixture
def server_target(tmp_path: Path) -> Iterator[str]:
    """A demo server with its SQLite store in tmp_path, on 127.0.0.1:0."""
    from server.app import create_server
    from server.config import ServerConfig

    config = ServerConfig(
        db_path=str(tmp_path / "rules.db"), host="127.0.0.1", port=0, demo=True, grace=0
    )
    server, port = create_server(config)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.stop(None).wait()


class TestRunAgainstAServer:
    def test_a_one_second_closed_loop_run_succeeds(self, server_target: str):
        """Every Decide of a one-second run succeeds and the summary adds up."""
        spec = WorkerSpec(
            target=server_target,
            workload=WorkloadSpec(visitors=100, placements=DEFAULT_PLACEMENTS),
            warmup=0.2,
            duration=1.0,
            concurrency=4,
            connections=2,
        )

        summary = run_load(spec)

        assert {} == summary.errors
        assert summary.calls > 20
        assert summary.calls == summary.methods["Decide"]["calls"]
        assert LATENCY_KEYS == set(summary.latency_ms)
        assert 0 < summary.latency_ms["p50"] <= summary.latency_ms["p99"]
        assert summary.latency_ms["p99"] <= summary.latency_ms["max"]

    def test_the_cli_seeds_profiles_mixes_track_and_prints_json(
        self, server_target: str, capsys: pytest.CaptureFixture[str]
    ):
        """``decide loadtest --allow-writes --json`` seeds profiles, sends Decide and Track
        calls, and prints a report whose calls all succeeded."""
        code = main(
            ["loadtest", "--target", server_target, "--duration", "1.3", "--warmup", "0"]
            + ["--visitors", "60", "--track-ratio", "0.2", "--concurrency", "4", "--json"]
            + ["--allow-writes"]
        )
        out, err = capsys.readouterr()
        report = json.loads(out)

        assert EXIT_OK == code
        assert {"settings", "result", "notes"} == set(report)
        assert {} == report["result"]["errors"]
        assert {"Decide", "Track"} == set(report["result"]["methods"])
        assert report["result"]["calls_per_second"] > 0
        assert LATENCY_KEYS == set(report["result"]["latency_ms"])
        assert "seeded 60 visitors" in err
        assert "calls/s" in err  # the progress line, drawn after the first second

    def test_the_open_loop_reaches_its_rate(self, server_target: str):
        """An open-loop run at 100 calls/s completes about 100 calls per second."""
        spec = WorkerSpec(
            target=server_target,
            workload=WorkloadSpec(visitors=50),
            warmup=0.0,
            duration=1.0,
            rate=100.0,
        )

        summary = run_load(spec)

        assert {} == summary.errors
        assert 90 <= summary.calls <= 101
        assert 0 == summary.unsent


class TestStartedServerAndBaseline:
    def test_without_target_it_starts_a_server_and_compares_with_the_baselines(
        self, capsys: pytest.CaptureFixture[str]
    ):
        """No --target: a demo server is started and stopped, and written to; --baseline
        adds both no-logic servers' figures, decide's ratios to each and to the faster,
        and the servers' CPU per call."""
        code = main(
            ["loadtest", "--duration", "1", "--warmup", "0.2", "--visitors", "50"]
            + ["--track-ratio", "0", "--concurrency", "4", "--baseline", "--json", "--quiet"]
        )
        report = json.loads(capsys.readouterr().out)
        baselines = report["baselines"]
        faster = max(baselines, key=lambda kind: baselines[kind]["calls_per_second"])

        assert EXIT_OK == code
        assert loop_name("auto") == report["settings"]["aio_loop"]
        assert report["settings"]["writes"] is True
        assert {"sync", "aio"} == set(baselines) == set(report["ratios_by_baseline"])
        assert faster == report["ratios_against"]
        assert report["ratios_by_baseline"][faster] == report["ratios"]
        assert {} == report["result"]["errors"]
        assert [{}, {}] == [baseline["errors"] for baseline in baselines.values()]
        assert report["ratios"]["calls_per_second"] > 0
        assert {"calls_per_second", "p50", "p99", "p99.9"} <= set(report["ratios"])
        assert report["result"]["server"]["cpu_us_per_call"] > 0
        assert all(b["server"]["cpu_us_per_call"] > 0 for b in baselines.values())
        assert [] == report["notes"]

    def test_a_started_multi_process_server_is_compared_with_as_many_baseline_processes(
        self, capsys: pytest.CaptureFixture[str]
    ):
        """--server-processes 2 starts decide and each baseline with two processes."""
        code = main(
            ["loadtest", "--duration", "1", "--warmup", "0", "--visitors", "20", "--no-seed"]
            + ["--track-ratio", "0", "--concurrency", "2", "--server-processes", "2"]
            + ["--baseline", "--json", "--quiet"]
        )
        report = json.loads(capsys.readouterr().out)

        assert EXIT_OK == code
        assert 2 == report["settings"]["baseline_processes"]
        assert {} == report["result"]["errors"]


class TestRefusals:
    @pytest.mark.parametrize(
        "target", ["127.0.0.1:1", "127.8.9.10:50051", "localhost:50051", "[::1]:50051"]
    )
    def test_loopback_targets_are_accepted(self, target: str):
        """Loopback addresses and localhost pass the check."""
        check_loopback(target)

    @pytest.mark.parametrize("target", ["10.0.0.5:50051", "example.com:443", "[2001:db8::1]:1"])
    def test_other_targets_are_refused(self, target: str):
        """Anything else raises, naming --allow-remote."""
        with pytest.raises(TargetError, match="--allow-remote"):
            check_loopback(target)

    def test_the_cli_refuses_a_remote_target_before_sending_anything(
        self, capsys: pytest.CaptureFixture[str]
    ):
        """A non-loopback --target exits 2 with one line saying why."""
        code = main(["loadtest", "--target", "192.0.2.1:50051", "--duration", "1"])

        assert EXIT_USAGE == code
        assert "not a loopback address" in capsys.readouterr().err

    def test_runs_are_bounded(self, capsys: pytest.CaptureFixture[str]):
        """A run longer than an hour is refused: every run stops by itself."""
        code = main(["loadtest", "--duration", "3600", "--warmup", "1"])

        assert EXIT_USAGE == code
        assert "at most 3600" in capsys.readouterr().err


class TestRecording:
    def test_histograms_from_several_processes_merge_by_adding_counts(self):
        """Merging encoded histograms keeps every recorded call."""
        first, second = Recorder(), Recorder()
        for recorder, values in ((first, [100, 200]), (second, [300, 40_000])):
            recorder.phase = "measure"
            for value in values:
                recorder.record("Decide", value, None)
        merged = merge(
            [
                first.result(1.0, 0.0).histograms["Decide"],
                second.result(1.0, 0.0).histograms["Decide"],
            ]
        )

        assert 4 == merged.get_total_count()
        assert 40_000 == pytest.approx(merged.get_max_value(), rel=0.001)

    def test_warmup_calls_are_not_measured(self):
        """Calls finished during the warm-up reach the progress line, not the result."""
        recorder = Recorder()
        recorder.record("Decide", 100, None)
        recorder.record("Decide", 100, "UNAVAILABLE")

        assert {} == recorder.result(1.0, 0.0).calls
        assert 2 == recorder.take_interval(1).calls

    def test_the_progress_line_waits_for_every_process(self):
        """A second is drawn once each process reported it."""
        lines: list[str] = []

        class Stream:
            def write(self, text: str) -> None:
                lines.append(text)

            def flush(self) -> None:
                pass

        progress = ProgressLine("decide", processes=2, stream=Stream())  # type: ignore[arg-type]
        empty = new_histogram().encode()
        progress.add(Interval(1, "measure", 10, 0, empty))
        drawn_after_one = len(lines)
        progress.add(Interval(1, "measure", 15, 1, empty))

        assert 0 == drawn_after_one
        assert 1 == len(lines)
        assert "25 calls/s" in lines[0] and "errors 1" in lines[0]


def _summary(calls_per_second: float, p99: float) -> RunSummary:
    latency = {"p50": p99 / 3, "p90": p99 / 2, "p99": p99, "p99.9": p99, "mean": 1.0, "max": p99}
    return RunSummary("t", 1.0, int(calls_per_second), calls_per_second, latency, {}, {}, 50.0)


class TestReport:
    def test_ratios_are_against_the_faster_baseline(self):
        """With two baselines the ratios are decide's to the one with more calls/s, and
        both baselines' figures and ratios are kept."""
        report = Report(
            {"concurrency": 16, "processes": 1, "duration": 1, "warmup": 0},
            _summary(1000, 20.0),
            {"sync": _summary(4000, 8.0), "aio": _summary(5000, 5.0)},
        )
        data = report.as_dict()

        assert "aio" == report.faster_baseline == data["ratios_against"]
        assert 0.2 == data["ratios"]["calls_per_second"]
        assert 4.0 == data["ratios"]["p99"]
        assert 0.25 == data["ratios_by_baseline"]["sync"]["calls_per_second"]
        assert {"sync", "aio"} == set(data["baselines"])

    def test_the_text_has_a_column_per_baseline_and_names_the_faster(self):
        """The table shows decide, sync, aio and the ratio, and says what it is against."""
        settings = {
            "concurrency": 16, "processes": 1, "duration": 1, "warmup": 0, "writes": True,
            "placements_per_call": (3, 3), "visitors": 10, "zipf": 1.1, "baseline_processes": 2,
        }  # fmt: skip
        text = Report(
            settings,
            _summary(1000, 20.0),
            {"sync": _summary(4000, 8.0), "aio": _summary(2000, 5.0)},
        ).to_text()

        assert "baselines: sync, aio (2 processes each); ratios against sync" in text
        assert "calls/s" in text and "0.25x" in text
