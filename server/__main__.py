"""``python -m server``: run a server configured from DECIDE_* environment variables."""

from __future__ import annotations

import sys

from server.config import ConfigError, ServerConfig
from server.processes import serve


def main() -> int:
    """Read the configuration and serve until SIGTERM/SIGINT; returns the exit code."""
    try:
        config = ServerConfig.from_env()
    except ConfigError as exc:
        print(f"decide: configuration error: {exc}", file=sys.stderr)
        return 2
    return serve(config)


if __name__ == "__main__":
    sys.exit(main())
