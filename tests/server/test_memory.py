"""glibc's malloc is tuned for server processes (server/memory.py)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from server.memory import tune_malloc


class TestFixMmapThreshold:
    @pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")
    def test_tunes_malloc_on_linux(self):
        """In a fresh process, mallopt accepts both settings."""
        code = textwrap.dedent(
            """
            import os
            os.environ.pop("MALLOC_MMAP_THRESHOLD_", None)
            os.environ.pop("MALLOC_ARENA_MAX", None)
            from server.memory import tune_malloc
            print(tune_malloc())
            """
        )
        result = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
        )

        assert "True" == result.stdout.strip()

    def test_an_operators_choice_wins(self):
        """With glibc's own variables set, nothing is changed."""
        assert tune_malloc({"MALLOC_MMAP_THRESHOLD_": "65536", "MALLOC_ARENA_MAX": "4"}) is False

    def test_other_platforms_are_left_alone(self, monkeypatch: pytest.MonkeyPatch):
        """Off Linux it does nothing."""
        monkeypatch.setattr(sys, "platform", "darwin")

        assert tune_malloc({}) is False
