"""The demo report renders in a real headless Chromium (Debian's ``chromium`` package)."""

from __future__ import annotations

import importlib.util
import struct
import sys
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "render_report.py"
WIDTH, HEIGHT = 1280, 2400
MIN_BYTES = 40_000
"""A blank page of this size is about 8 KB as PNG; the demo report is over 300 KB."""


def _load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("render_report", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("render_report", module)
    spec.loader.exec_module(module)
    return module


render_report = _load_script()
CHROMIUM = render_report.find_chromium()


def _png_size(data: bytes) -> tuple[int, int]:
    """Width and height from the PNG signature and IHDR chunk."""
    assert b"\x89PNG\r\n\x1a\n" == data[:8]
    assert b"IHDR" == data[12:16]
    width, height = struct.unpack(">II", data[16:24])
    return width, height


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
class TestBrowser:
    def test_demo_report_screenshot(self, tmp_path: Path):
        """Chromium, offline, turns the demo report into a full-size, non-blank PNG."""
        html_path, png_path = tmp_path / "report.html", tmp_path / "report.png"
        html_path.write_text(render_report.demo_html(), encoding="utf-8")

        render_report.screenshot(html_path, png_path, width=WIDTH, height=HEIGHT, chromium=CHROMIUM)
        data = png_path.read_bytes()

        assert (WIDTH, HEIGHT) == _png_size(data)
        assert len(data) > MIN_BYTES
