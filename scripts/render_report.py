"""Render the demo insights report to HTML and screenshot it in headless Chromium.

    python scripts/render_report.py [--out report.html] [--png docs/report.png]
                                    [--segments-png docs/report-segments.png]
                                    [--width 1280] [--height 2400] [--seed N]

The report comes from ``insights.demo`` (fixed seeds: the same HTML every run). The
screenshot needs Debian's ``chromium`` (``apt-get install chromium``); without it only
the HTML is written. Chromium runs with networking features off and a throwaway
profile, so it is also a check that the report needs nothing from the network.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from insights.demo import DEFAULT_SEED, PERIOD_END, demo_campaign_reports, demo_segment_report
from insights.report import render_html

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def demo_html(seed: int = DEFAULT_SEED) -> str:
    """The demo report as one HTML document."""
    return render_html(
        demo_campaign_reports(seed),
        demo_segment_report(seed),
        title="decide insights: demo storefront",
        generated_at=PERIOD_END,
    )


def segments_html(seed: int = DEFAULT_SEED) -> str:
    """The demo report's segment section on its own (for a second screenshot)."""
    return render_html(
        [],
        demo_segment_report(seed),
        title="decide insights: demo segments",
        generated_at=PERIOD_END,
    )


def find_chromium() -> str | None:
    """Path of a Chromium (or Chrome) executable on PATH, if any."""
    return next((path for name in CHROMIUM_NAMES if (path := shutil.which(name))), None)


def screenshot(
    html_path: Path,
    png_path: Path,
    *,
    width: int = 1280,
    height: int = 2400,
    chromium: str | None = None,
    timeout: float = 90.0,
) -> None:
    """Open ``html_path`` in headless Chromium and save a ``width`` x ``height`` PNG."""
    executable = chromium or find_chromium()
    if executable is None:
        raise FileNotFoundError("no chromium on PATH (apt-get install chromium)")
    with tempfile.TemporaryDirectory(prefix="decide-chromium-") as profile:
        command = [
            executable,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--force-color-profile=srgb",
            f"--user-data-dir={profile}",
            f"--screenshot={png_path.resolve()}",
            f"--window-size={width},{height}",
            html_path.resolve().as_uri(),
        ]
        subprocess.run(command, check=True, capture_output=True, timeout=timeout)
    if not png_path.exists():
        raise RuntimeError(f"chromium exited without writing {png_path}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("report.html"), help="HTML file to write")
    parser.add_argument("--png", type=Path, default=None, help="screenshot to write (PNG)")
    parser.add_argument(
        "--segments-png", type=Path, default=None, help="screenshot of the segments alone (PNG)"
    )
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=2400)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    args = parser.parse_args(argv)

    args.out.write_text(demo_html(args.seed), encoding="utf-8")
    print(f"wrote {args.out}")
    shots = [(args.out, args.png)]
    if args.segments_png is not None:
        segments_page = args.out.with_name(args.out.stem + "-segments.html")
        segments_page.write_text(segments_html(args.seed), encoding="utf-8")
        shots.append((segments_page, args.segments_png))
    for page, png in shots:
        if png is None:
            continue
        if find_chromium() is None:
            print("no chromium on PATH: skipped the screenshots (apt-get install chromium)")
            return 1
        screenshot(page, png, width=args.width, height=args.height if page == args.out else 1400)
        print(f"wrote {png} ({png.stat().st_size:,} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
