"""``bench/faults.py --quick`` as CI runs it: kill -9, SIGTERM, a full disk and a damaged
file against real ``decide serve`` processes, with acknowledged against stored counts."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def _run(*args: str) -> tuple[int, dict[str, str], str]:
    """Run the fault script; its exit code, each scenario's summary line by name, and
    everything it printed."""
    done = subprocess.run(
        [sys.executable, "bench/faults.py", "--quick", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    summaries = {
        line.split()[0]: line
        for line in done.stdout.splitlines()[1:]
        if line and not line.startswith(" ") and not line.startswith(("failed:", "every "))
    }
    return done.returncode, summaries, done.stdout + done.stderr


def _lost(line: str) -> int:
    """The first "lost N" count of a summary line."""
    found = re.search(r"lost (\d[\d,]*)", line)
    assert found is not None, line
    return int(found[1].replace(",", ""))


class TestQuickRun:
    def test_every_scenario_meets_its_expectation(self):
        """Exit 0, every scenario reports, and the lossless ones lose nothing."""
        code, summaries, output = _run()

        assert 0 == code, output
        assert [
            "kill-track",
            "kill-decide",
            "kill-decide-durable",
            "sigterm-decide",
            "disk-full",
            "corrupt-file",
        ] == list(summaries)
        lossless = ("kill-track", "kill-decide-durable", "sigterm-decide", "disk-full")
        assert dict.fromkeys(lossless, 0) == {name: _lost(summaries[name]) for name in lossless}
        assert "exit code 0" in summaries["sigterm-decide"]
        assert "decide serve: exit 1; decide store check: exit 1" in summaries["corrupt-file"]
        assert "is damaged" in output

    def test_disk_full_through_the_page_limit(self):
        """A full disk through max_page_count (no tmpfs): named, nothing lost, recovered."""
        code, summaries, output = _run("--only", "disk-full", "--disk", "page-limit")

        assert 0 == code, output
        assert 0 == _lost(summaries["disk-full"])
        assert "after space returned: OK (page-limit)" in summaries["disk-full"]
        assert "cannot be written: the disk is full" in output
