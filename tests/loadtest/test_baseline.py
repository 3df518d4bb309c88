"""The no-logic baselines: both kinds answer like decide's transport would, with decide's
server options, in one process or several on one port."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from loadtest.baseline import KINDS, PID_METHOD, loop_name, server_options
from loadtest.targets import (
    ServerProcess,
    TargetError,
    serve_command,
    serve_flags,
    start_baseline,
)
from loadtest.workload import DECIDE_METHOD, WorkloadSpec, decide_requests
from protos import decisioning_pb2 as pb

pytestmark = pytest.mark.slow

RESPONSE = pb.DecideResponse(
    decisions=[pb.Decision(placement="home_hero", decision_id="d-1", variant_id="urgency")],
    ruleset_version=7,
).SerializeToString()


@pytest.fixture(name="kind", params=KINDS)
def _kind(request: pytest.FixtureRequest) -> str:
    """Each kind of baseline in turn."""
    kind: str = request.param
    return kind


@pytest.fixture
def baseline(tmp_path: Path, kind: str) -> Iterator[ServerProcess]:
    """A baseline of ``kind`` on 127.0.0.1:0, answering Decide with RESPONSE."""
    server = start_baseline(tmp_path, kind=kind, decide_response=RESPONSE)
    try:
        yield server
    finally:
        server.stop()


def _call(target: str, method: str, payload: bytes, fresh: bool = False) -> bytes:
    options = [("grpc.use_local_subchannel_pool", 1)] if fresh else []
    with grpc.insecure_channel(target, options=options) as channel:
        stub: Any = channel.unary_unary(method)
        answer: bytes = stub(payload, timeout=10)
    return answer


class TestAnswers:
    def test_decide_gets_the_captured_response(self, baseline: ServerProcess):
        """A real DecideRequest is answered with exactly the bytes it was given."""
        request = decide_requests(WorkloadSpec(visitors=10), seed=1, count=1)[0]

        assert RESPONSE == _call(baseline.target, DECIDE_METHOD, request)

    def test_the_request_is_parsed(self, baseline: ServerProcess, kind: str):
        """Bytes that are no DecideRequest fail, as they would on decide: the baseline
        pays for parsing the request (grpc.server says INTERNAL, grpc.aio UNKNOWN)."""
        expected = {"sync": grpc.StatusCode.INTERNAL, "aio": grpc.StatusCode.UNKNOWN}[kind]

        with pytest.raises(grpc.RpcError) as failed:
            _call(baseline.target, DECIDE_METHOD, b"\xff\xff\xff\xff\x0f\x01\x02")

        assert expected == failed.value.code()

    def test_it_says_which_kind_and_loop_it_is(self, baseline: ServerProcess, kind: str):
        """The started line names the kind, and for aio the loop ``--loop auto`` chose."""
        expected_loop = loop_name("auto") if kind == "aio" else None

        assert (kind, expected_loop) == (baseline.info["kind"], baseline.info["loop"])


class TestOptions:
    def test_decide_serves_with_the_baselines_options(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ):
        """decide's server is built with the options the baselines use, so a limit or
        option changed in one place and not the other fails here."""
        from server.app import create_server
        from server.config import ServerConfig

        seen: list[list[tuple[str, Any]]] = []
        for module, name in ((grpc, "server"), (grpc.aio, "server")):
            real = getattr(module, name)

            def capture(*args: Any, _real: Any = real, **kwargs: Any) -> Any:
                seen.append(list(kwargs.get("options") or []))
                return _real(*args, **kwargs)

            monkeypatch.setattr(module, name, capture)
        config = ServerConfig(db_path=str(tmp_path / "rules.db"), host="127.0.0.1", port=0)
        server, _port = create_server(config)
        server.stop(None)

        assert [sorted(server_options())] == [sorted(options) for options in seen]


class TestProcesses:
    def test_several_processes_share_one_port(self, tmp_path: Path, kind: str):
        """--processes 2: two child processes, both answering on the one port."""
        server = start_baseline(tmp_path, kind=kind, processes=2, decide_response=RESPONSE)
        try:
            pids = {str(pid) for pid in server.info["pids"]}  # type: ignore[attr-defined]
            answered: set[str] = set()
            for _ in range(200):  # the kernel spreads new connections over the processes
                answered.add(_call(server.target, PID_METHOD, b"", fresh=True).decode())
                if answered == pids:
                    break
            request = decide_requests(WorkloadSpec(visitors=10), seed=1, count=1)[0]
            decided = _call(server.target, DECIDE_METHOD, request)
        finally:
            code = server.stop()

        assert 2 == len(pids)
        assert pids == answered
        assert RESPONSE == decided
        assert 0 == code


class TestStartingDecide:
    def test_this_checkouts_serve_has_the_options_passed_to_it(self):
        """serve_flags reads this checkout's ``decide serve --help``: every option the load
        tester passes is there."""
        expected = {"--db", "--host", "--port", "--admin-token", "--log-json", "--demo"}

        command, flags = serve_flags()

        assert ("-m", "cli", "serve") == command
        assert expected | {"--processes"} <= flags

    def test_processes_is_always_passed_when_the_server_has_it(self, tmp_path: Path):
        """One process is asked for explicitly: the server's default may be one per core."""
        command = serve_command(
            tmp_path / "x.db", "t", demo=True, processes=1, flags=frozenset({"--processes"})
        )

        assert ["--processes", "1"] == command[command.index("--processes") :][:2]

    def test_an_older_server_without_processes_gets_no_such_option(self, tmp_path: Path):
        """A checkout whose serve lacks --processes (bench --before-pythonpath) is started
        without it, and asking it for two processes is refused."""
        old = frozenset({"--db", "--port"})
        command = serve_command(tmp_path / "x.db", "t", demo=False, processes=1, flags=old)

        assert "--processes" not in command
        with pytest.raises(TargetError, match="no --processes"):
            serve_command(tmp_path / "x.db", "t", demo=False, processes=2, flags=old)
