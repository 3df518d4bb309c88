"""Graceful shutdown: in-flight calls finish within the grace period; SIGTERM exits 0."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from protos import decisioning_pb2 as pb

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
    def test_sigterm_exits_zero(self, tmp_path):
        """`python -m server` serves, and on SIGTERM turns NOT_SERVING and exits 0."""
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "DECIDE_DB_PATH": str(tmp_path / "proc.db"),
            "DECIDE_PORT": "0",
            "DECIDE_LOG_JSON": "1",
            "DECIDE_GRACE": "2",
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
            started = _wait_for_event(lines, "server_started", timeout=15)
            with grpc.insecure_channel(f"127.0.0.1:{started['port']}") as channel:
                status = (
                    health_pb2_grpc.HealthStub(channel)
                    .Check(health_pb2.HealthCheckRequest(), timeout=5)
                    .status
                )

            proc.send_signal(signal.SIGTERM)
            code = proc.wait(timeout=15)
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

        assert health_pb2.HealthCheckResponse.SERVING == status
        assert 0 == code
        assert "server_stopped" in events


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
