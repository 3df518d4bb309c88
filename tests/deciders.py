"""Deciders as separate processes for tests: ``decide serve`` on 127.0.0.1, a port of its
own choosing (0), stopped (or killed) by the test that started it.

No pytest here; ``tests/server/test_deciders.py`` uses it. Each decider logs JSON lines
to stderr; ``start`` waits for its ``server_started`` line, which names the port.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

ROOT = Path(__file__).resolve().parents[1]
ADMIN_TOKEN = "deciders-admin-token"
DECIDE = Path(sys.executable).with_name("decide")

T = TypeVar("T")


class Decider:
    """One ``decide serve --store STORE --port 0 --processes 1`` process."""

    def __init__(self, store: str, workdir: Path, env: Mapping[str, str] | None = None) -> None:
        self.store = store
        self.workdir = workdir
        self.env = dict(env or {})
        self.proc: subprocess.Popen[str] | None = None
        self.port = 0
        self.lines: queue.Queue[str] = queue.Queue()
        self.log: list[str] = []

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> Decider:
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "DECIDE_LOG_JSON": "1",
            "DECIDE_GRACE": "1",
            **self.env,
        }
        self.proc = subprocess.Popen(
            [str(DECIDE), "serve", "--store", self.store, "--host", "127.0.0.1", "--port", "0",
             "--processes", "1", "--admin-token", ADMIN_TOKEN],
            cwd=self.workdir, env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL,
            text=True,
        )
        stderr = self.proc.stderr
        assert stderr is not None
        threading.Thread(target=lambda: [self.lines.put(line) for line in stderr],
                         daemon=True).start()
        self.port = int(self.wait_for_event("server_started", timeout)["port"])
        return self

    def wait_for_event(self, event: str, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.1)
            except queue.Empty:
                if self.proc is not None and self.proc.poll() is not None and self.lines.empty():
                    break
                continue
            self.log.append(line)
            if line.startswith("{"):
                record = json.loads(line)
                if record.get("event") == event:
                    return dict(record)
        raise AssertionError(f"no {event} event within {timeout}s; stderr: {''.join(self.log)}")

    def client(self, **kwargs: Any) -> Any:
        from client import DecisionClient

        return DecisionClient(self.target, admin_token=ADMIN_TOKEN, **kwargs)

    def kill(self) -> None:
        """SIGKILL: no shutdown, nothing flushed (a crash)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(30)

    def stop(self) -> int:
        """SIGTERM and wait; the exit code (killed if it does not stop in 30 s)."""
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        with contextlib.suppress(Exception):
            if self.proc.stderr is not None:
                self.proc.stderr.close()
        return int(self.proc.returncode or 0)


def eventually(probe: Callable[[], T], accept: Callable[[T], bool], timeout: float = 15.0) -> T:
    """``probe()`` again and again until ``accept`` its result, or ``timeout`` seconds:
    then the last result (the test's assertion shows it)."""
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if accept(result) or time.monotonic() > deadline:
            return result
        time.sleep(0.05)
