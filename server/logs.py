"""Logging set-up: one line per event, as plain text or as JSON lines.

Modules log through ``logging`` with an ``event`` name and fields in ``extra``; this
module only decides how lines look. Requests are not logged one by one at INFO:
metrics count them.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TextIO

# Attributes every LogRecord has; anything else on a record came from ``extra``.
_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object: ts, level, logger, msg, extra fields, exc."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(
    level: str = "INFO", json_lines: bool = False, stream: TextIO | None = None
) -> None:
    """Send the ``decide`` loggers (and grpc's) to ``stream`` (default stderr)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if json_lines else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)


class FaultLog:
    """Logs a recurring background fault (a checkpoint or a write that keeps failing)
    when it starts, then at most once per ``interval`` seconds with how often it
    recurred, and once when it clears: a full disk is one warning a minute, not five
    a second."""

    def __init__(
        self,
        logger: logging.Logger,
        what: str,
        event: str,
        *,
        interval: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._logger = logger
        self._what = what
        self._event = event
        self._interval = interval
        self._clock = clock
        self._since: float | None = None
        self._last = 0.0
        self._repeats = 0

    @property
    def failing(self) -> bool:
        """Whether the last attempt failed."""
        return self._since is not None

    def failed(self, exc: BaseException) -> None:
        now = self._clock()
        if self._since is None:
            self._since = self._last = now
            self._repeats = 0
            self._logger.warning(
                "%s failed: %s", self._what, exc, extra={"event": self._event, "error": str(exc)}
            )
            return
        self._repeats += 1
        if now - self._last >= self._interval:
            self._logger.warning(
                "%s still failing (%d more times in %.0f s): %s",
                self._what,
                self._repeats,
                now - self._last,
                exc,
                extra={"event": self._event, "error": str(exc), "repeats": self._repeats},
            )
            self._last = now
            self._repeats = 0

    def ok(self) -> None:
        if self._since is not None:
            self._logger.info(
                "%s works again after %.0f s",
                self._what,
                self._clock() - self._since,
                extra={"event": f"{self._event}_recovered"},
            )
            self._since = None
