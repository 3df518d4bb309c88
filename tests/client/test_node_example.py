"""examples/node/decide.js runs against a real demo server (skipped without Node.js)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "node"


@pytest.fixture(scope="module")
def node_example() -> Path:
    """The example folder with its dependencies installed (``npm ci`` when missing)."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node and npm are needed for the Node.js example")
    if not (EXAMPLE / "node_modules" / "@grpc" / "grpc-js").is_dir():
        try:
            done = subprocess.run(
                ["npm", "ci", "--no-audit", "--no-fund"],
                cwd=EXAMPLE,
                capture_output=True,
                text=True,
                timeout=300,
                check=False,
            )
        except subprocess.TimeoutExpired:
            pytest.skip("npm ci timed out (is the npm registry reachable?)")
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            pytest.skip(f"npm ci failed (is the npm registry reachable?): {last}")
    return EXAMPLE


@pytest.mark.slow
class TestNodeExample:
    def test_decide_js_prints_the_demo_decisions(self, node_example, demo_server):
        """node decide.js HOST:PORT prints one decision per placement, naming the campaign."""
        env = {**os.environ, "DECIDE_API_KEY": demo_server.api_key}

        done = subprocess.run(
            ["node", "decide.js", demo_server.target],
            cwd=node_example,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

        assert 0 == done.returncode, done.stderr
        assert "home_hero: REASON_CAMPAIGN campaign=welcome_offer" in done.stdout
        assert "product_recommendations: REASON_FALLBACK" in done.stdout
        assert '"title":"Bestsellers"' in done.stdout

    def test_unreachable_server_exits_non_zero(self, node_example, dead_target):
        """Against a dead address the example reports UNAVAILABLE and exits 1."""
        done = subprocess.run(
            ["node", "decide.js", dead_target],
            cwd=node_example,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

        assert 1 == done.returncode
        assert "UNAVAILABLE" in done.stderr
