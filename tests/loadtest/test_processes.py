"""``decide serve --processes 2``: both processes serve one port, both hot-reload, and
SIGTERM stops them all with exit code 0."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest

from protos import decisioning_pb2 as pb
from protos import decisioning_pb2_grpc as pb_grpc
from server.api.rules_admin import PID_KEY

pytestmark = pytest.mark.slow

TOKEN = "processes-test-token"
METADATA = (("authorization", f"Bearer {TOKEN}"),)


def _wait_for_line(log: Path, event: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in log.read_text().splitlines():
            if line.startswith("{") and json.loads(line).get("event") == event:
                return json.loads(line)
        time.sleep(0.05)
    raise AssertionError(f"no {event} in:\n{log.read_text()}")


def _statuses(target: str, want_pids: int, predicate, timeout: float = 20) -> dict[str, int]:
    """Ask GetStatus over fresh connections until ``want_pids`` processes answered with
    a status matching ``predicate``; returns pid -> active version."""
    seen: dict[str, int] = {}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        options = [("grpc.use_local_subchannel_pool", 1)]
        with grpc.insecure_channel(target, options=options) as channel:
            stub = pb_grpc.RulesAdminStub(channel)
            status, call = stub.GetStatus.with_call(
                pb.GetStatusRequest(), metadata=METADATA, timeout=5
            )
        pid = dict(call.initial_metadata())[PID_KEY]
        if predicate(status):
            seen[pid] = status.active_version
        if len(seen) >= want_pids:
            return seen
    raise AssertionError(f"only {seen} answered as wanted")


class TestServeProcesses:
    def test_two_processes_share_the_port_reload_and_stop_on_sigterm(self, tmp_path: Path):
        """Two pids answer on one port, both serve a newly published version, and one
        SIGTERM to the parent stops both children; everyone exits 0."""
        log = tmp_path / "serve.log"
        db = tmp_path / "rules.db"
        command = [sys.executable, "-m", "cli", "serve", "--processes", "2"]
        command += ["--port", "0", "--db", str(db), "--demo", "--admin-token", TOKEN]
        command += ["--log-json"]
        env = {**os.environ, "DECIDE_POLL_INTERVAL": "0.05", "DECIDE_GRACE": "1"}
        with log.open("wb") as out:
            parent = subprocess.Popen(command, stdout=out, stderr=out, env=env)
        try:
            started = _wait_for_line(log, "processes_started")
            target = f"127.0.0.1:{started['port']}"
            before = _statuses(target, 2, lambda s: s.active_version > 0)

            with grpc.insecure_channel(target) as channel:
                stub = pb_grpc.RulesAdminStub(channel)
                current = stub.GetRules(pb.GetRulesRequest(), metadata=METADATA, timeout=5)
                published = stub.PublishRules(
                    pb.PublishRulesRequest(document_json=current.document_json, comment="again"),
                    metadata=METADATA,
                    timeout=5,
                )
            new_version = published.version.version
            after = _statuses(target, 2, lambda s: s.active_version == new_version)

            parent.send_signal(signal.SIGTERM)
            code = parent.wait(timeout=30)
        finally:
            if parent.poll() is None:
                parent.kill()
                parent.wait()

        assert {str(pid) for pid in started["pids"]} == set(before) == set(after)
        assert {new_version} == set(after.values())
        assert 0 == code
        assert 2 == log.read_text().count('"event": "server_stopped"')
        for pid in started["pids"]:
            assert not Path(f"/proc/{pid}").exists() or "Z" in _state(pid)

    def test_a_port_in_use_is_refused(self, tmp_path: Path):
        """--processes 2 on a port another server holds exits 1 instead of sharing it."""
        from server.app import create_server
        from server.config import ServerConfig

        config = ServerConfig(db_path=str(tmp_path / "a.db"), port=0, grace=0)
        server, port = create_server(config)
        try:
            command = [sys.executable, "-m", "cli", "serve", "--processes", "2"]
            command += ["--port", str(port), "--db", str(tmp_path / "b.db")]
            done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
        finally:
            server.stop(None).wait()

        assert 1 == done.returncode
        assert "cannot listen" in done.stderr


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"
