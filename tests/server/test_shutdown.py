"""Graceful shutdown: in-flight calls finish within the grace period; SIGTERM exits 0."""

from __future__ import annotations

import json
import os
import queue
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from protos import decisioning_pb2 as pb
from protos import decisioning_pb2_grpc as pb_grpc

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


def _decide_in_thread(running, visitor: str) -> tuple[threading.Thread, dict]:
    outcome: dict = {}

    def call() -> None:
        try:
            outcome["response"] = running.decisions.Decide(
                pb.DecideRequest(visitor_id=visitor, placements=["slot_0"]), timeout=10
            )
        except grpc.RpcError as error:
            outcome["error"] = error.code()

    thread = threading.Thread(target=call, daemon=True)
    thread.start()
    return thread, outcome


class TestGracefulStop:
    def test_in_flight_call_finishes_within_grace(self, start_server, store, gate, gated_profiles):
        """A call in flight when stop() begins completes normally; new calls are refused."""
        server = start_server(profiles=gated_profiles)
        thread, outcome = _decide_in_thread(server, "slow-1")
        assert gate.entered.wait(5)

        stopped = server.server.stop(5)
        time.sleep(0.1)
        still_running = not stopped.is_set()
        with pytest.raises(grpc.RpcError) as refused:
            server.decide(visitor="fast")
        gate.release()
        thread.join(5)

        assert still_running
        assert grpc.StatusCode.UNAVAILABLE == refused.value.code()
        assert 1 == outcome["response"].ruleset_version
        assert stopped.wait(5)
        assert not server.server.reloader._thread.is_alive()

    def test_calls_past_the_grace_period_are_cancelled(
        self, start_server, store, gate, gated_profiles
    ):
        """A call still running when the grace period ends is cut off; stop completes."""
        server = start_server(profiles=gated_profiles)
        thread, outcome = _decide_in_thread(server, "slow-2")
        assert gate.entered.wait(5)
        started = time.monotonic()

        assert server.server.stop(0.3).wait(5)
        elapsed = time.monotonic() - started
        thread.join(5)

        assert elapsed < 2.0
        assert "error" in outcome


class TestProcess:
    @pytest.mark.parametrize("processes", ["1", "2"])
    def test_sigterm_drains_flushes_and_exits_zero(self, tmp_path, processes):
        """`python -m server` with one or two processes serves; on SIGTERM every process
        turns NOT_SERVING, writes the exposures still buffered, and the exit code is 0."""
        db = tmp_path / "proc.db"
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "DECIDE_DB_PATH": str(db),
            "DECIDE_PORT": "0",
            "DECIDE_DEMO": "1",
            "DECIDE_LOG_JSON": "1",
            "DECIDE_GRACE": "2",
            "DECIDE_PROCESSES": processes,
        }
        proc = subprocess.Popen(
            [sys.executable, "-m", "server"],
            cwd=tmp_path,
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
        lines: queue.Queue[str] = queue.Queue()
        reader = threading.Thread(
            target=lambda: [lines.put(line) for line in proc.stderr], daemon=True
        )
        reader.start()
        try:
            started = [_wait_for_event(lines, "server_started", timeout=20)]
            started += [
                _wait_for_event(lines, "server_started", timeout=20)
                for _ in range(int(processes) - 1)
            ]
            target = f"127.0.0.1:{started[0]['port']}"
            served = 0
            # Separate channels: separate connections, spread over the processes.
            for i in range(8):
                with grpc.insecure_channel(
                    target, options=[("grpc.use_local_subchannel_pool", 1)]
                ) as channel:
                    status = (
                        health_pb2_grpc.HealthStub(channel)
                        .Check(health_pb2.HealthCheckRequest(), timeout=5)
                        .status
                    )
                    response = pb_grpc.DecisionServiceStub(channel).Decide(
                        pb.DecideRequest(visitor_id=f"v-{i}", placements=["home_hero"]), timeout=5
                    )
                    served += sum(1 for d in response.decisions if d.campaign_id)

            proc.send_signal(signal.SIGTERM)
            code = proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            reader.join(5)
            proc.stderr.close()
        events = []
        while not lines.empty():
            line = lines.get()
            if line.startswith("{"):
                events.append(json.loads(line)["event"] if "event" in line else None)
        with sqlite3.connect(db) as conn:
            (stored,) = conn.execute("SELECT count(*) FROM exposures").fetchone()

        assert health_pb2.HealthCheckResponse.SERVING == status
        assert 0 == code
        assert int(processes) == events.count("server_stopped")
        assert served == stored
        assert served > 0


def _wait_for_event(lines: queue.Queue, event: str, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=0.1)
        except queue.Empty:
            continue
        seen.append(line)
        if line.startswith("{"):
            record = json.loads(line)
            if record.get("event") == event:
                return record
    raise AssertionError(f"no {event} event within {timeout}s; stderr: {''.join(seen)}")
