"""What the CLI says when TLS is on one side only, and how it stops when its reader
goes away (``decide ... | head``)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from cli import EXIT_BROKEN_PIPE, EXIT_UNAVAILABLE
from client import DecisionClient

DECIDE = [sys.executable, "-m", "cli"]


def _run_with_closed_stdout(*args: str) -> tuple[int, str]:
    """Run ``decide ARGS`` with a standard output whose reader is already gone; its exit
    code and standard error."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # every write the command makes fails with EPIPE
    try:
        done = subprocess.run(
            [*DECIDE, *args],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            env={k: v for k, v in os.environ.items() if not k.startswith("DECIDE_")},
            cwd=Path(__file__).resolve().parents[2],
        )
    finally:
        os.close(write_end)
    return done.returncode, done.stderr


@pytest.mark.slow
class TestTlsHints:
    def test_plaintext_cli_at_a_tls_server_suggests_tls_ca(
        self, decide: Callable[..., Any], tls_server: tuple[str, bytes]
    ):
        """Without --tls-ca against a TLS server: exit 3, and the line says to pass it."""
        target, _ = tls_server

        run = decide("query", "--target", target, "--visitor", "v", "--placement", "home_hero")

        assert EXIT_UNAVAILABLE == run.code
        (line,) = run.err.splitlines()
        assert "Socket closed; the server hung up while connecting: if it serves TLS" in line
        assert "pass --tls-ca FILE" in line

    def test_tls_cli_at_a_plaintext_server_says_to_leave_it_out(
        self, decide: Callable[..., Any], demo_server: Any, other_certificate: Path
    ):
        """With --tls-ca against a plaintext server: the line says it does not speak TLS."""
        run = decide(
            "status", "--target", demo_server.target, "--admin-token", demo_server.admin_token,
            "--tls-ca", other_certificate,
        )  # fmt: skip

        assert EXIT_UNAVAILABLE == run.code
        assert run.err.rstrip().endswith("the server does not speak TLS: leave out --tls-ca")

    def test_untrusted_certificate_is_named(
        self, decide: Callable[..., Any], tls_server: tuple[str, bytes], other_certificate: Path
    ):
        """With the wrong --tls-ca: the line says the server's certificate is not trusted."""
        target, _ = tls_server

        run = decide("status", "--target", target, "--tls-ca", other_certificate)

        assert EXIT_UNAVAILABLE == run.code
        assert "the server's certificate is not trusted" in run.err

    def test_a_closed_port_gets_no_tls_hint(self, decide: Callable[..., Any], dead_target: str):
        """Nothing listening is not a TLS problem: no hint about --tls-ca."""
        run = decide("query", "--target", dead_target, "--visitor", "v", "--placement", "p")

        assert EXIT_UNAVAILABLE == run.code
        assert "--tls-ca" not in run.err


@pytest.mark.slow
class TestClosedOutput:
    def test_local_command_stops_quietly(self):
        """`decide rules schema | head`: exit 141 and nothing on stderr, no traceback."""
        code, err = _run_with_closed_stdout("rules", "schema")

        assert (EXIT_BROKEN_PIPE, "") == (code, err)

    def test_streamed_export_stops_quietly(self, demo_server: Any):
        """`decide insights export SEGMENT | head` against a server: exit 141, stderr empty."""
        with DecisionClient(demo_server.target, api_key=demo_server.api_key) as client:
            client.track(
                [
                    {"event_id": f"e{i}", "visitor_id": f"pipe-{i}", "type": "session_start",
                     "timestamp": datetime.now(UTC).isoformat()}
                    for i in range(50)
                ]
            )  # fmt: skip

        code, err = _run_with_closed_stdout(
            "insights", "export", "everyone", "--target", demo_server.target,
            "--admin-token", demo_server.admin_token,
        )  # fmt: skip

        assert (EXIT_BROKEN_PIPE, "") == (code, err)
