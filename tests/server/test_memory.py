"""glibc's mmap threshold is fixed for server processes (server/memory.py)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from server.memory import fix_mmap_threshold


class TestFixMmapThreshold:
    @pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")
    def test_sets_the_threshold_on_linux(self):
        """In a fresh process, mallopt accepts the fixed threshold."""
        code = textwrap.dedent(
            """
            import os
            os.environ.pop("MALLOC_MMAP_THRESHOLD_", None)
            from server.memory import fix_mmap_threshold
            print(fix_mmap_threshold())
            """
        )
        result = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
        )

        assert "True" == result.stdout.strip()

    def test_an_operators_choice_wins(self):
        """With glibc's own MALLOC_MMAP_THRESHOLD_ set, nothing is changed."""
        assert fix_mmap_threshold({"MALLOC_MMAP_THRESHOLD_": "65536"}) is False

    def test_other_platforms_are_left_alone(self, monkeypatch: pytest.MonkeyPatch):
        """Off Linux it does nothing."""
        monkeypatch.setattr(sys, "platform", "darwin")

        assert fix_mmap_threshold({}) is False
