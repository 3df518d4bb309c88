"""Hot reload: notice committed rules changes and swap in a new snapshot, off the request path.

A poller thread asks the store's ``RulesWatcher`` every ``poll_interval`` whether the
active rules changed, and at once when the watcher wakes it (PostgreSQL's
notifications). SQLite's watcher reads ``PRAGMA data_version``, which changes whenever
any connection commits (``server.rules.sqlite_watcher``); PostgreSQL's listens for the
publish notification and polls the active version as the fallback
(``server.rules.postgres``). On a change it compiles the active document and assigns
``self.snapshot``: one reference swap, which request handlers read without a lock.

A document that does not compile (it can only get there by a route other than the
store API) is logged once, counted, reported by ``status`` and otherwise ignored: the
last good snapshot keeps serving. So is a store that cannot be read (a database that
is down): the snapshot keeps serving, and the next poll tries again.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from decision import Ruleset
from server.errors import InvalidRulesError, StoreError
from server.rules.snapshot import Snapshot, build_snapshot
from server.rules.store import RulesWatcher

logger = logging.getLogger("decide.reloader")

Clock = Callable[[], datetime]


@dataclass(frozen=True, slots=True)
class ReloadStatus:
    """What the reloader last saw. Replaced as a whole, so readers get a consistent view."""

    store_version: int = 0
    last_error: str = ""
    last_error_at: datetime | None = None
    reload_count: int = 0
    error_count: int = 0


def _utcnow() -> datetime:
    return datetime.now(UTC)


class Reloader:
    """Keeps ``snapshot`` in step with the store's active version."""

    def __init__(
        self,
        watcher: RulesWatcher,
        *,
        poll_interval: float = 0.2,
        clock: Clock = _utcnow,
        on_load: Callable[[Snapshot], None] | None = None,
        on_error: Callable[[int, str], None] | None = None,
    ) -> None:
        self.watcher = watcher
        self.poll_interval = poll_interval
        self.snapshot: Snapshot | None = None
        self.status = ReloadStatus()
        self._clock = clock
        self._on_load = on_load
        self._on_error = on_error
        self._failed: tuple[int, str] | None = None
        self._poll_lock = threading.Lock()
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def poll_once(self) -> bool:
        """Check the store once; returns True when a new snapshot was swapped in."""
        with self._poll_lock:
            if self._stopping.is_set():
                return False  # stopped: do not reopen the connection stop() closed
            try:
                return self._poll()
            except StoreError as exc:
                # The watcher starts over with a fresh connection next time.
                message = f"cannot read the store: {exc}"
                if message != self.status.last_error:  # log once, not every poll
                    self._record_error(self.status.store_version, message)
                return False

    def _poll(self) -> bool:
        row = self.watcher.poll()
        if row is None:
            return False
        version, document = row
        if version != self.status.store_version:
            self.status = replace(self.status, store_version=version)
        current = self.snapshot
        if current is not None and current.version == version and current.document == document:
            return False
        if self._failed == (version, document):
            return False  # already reported; wait for the next change
        try:
            snapshot = build_snapshot(version, document, self._clock())
        except InvalidRulesError as exc:
            self._failed = (version, document)
            self._record_error(version, f"version {version}: {exc}")
            return False
        except Exception as exc:  # a bug in the engine must not stop the poller
            self._failed = (version, document)
            logger.exception(
                "compiling rules version %d failed", version, extra={"event": "reload_failed"}
            )
            self._record_error(version, f"version {version}: unexpected error: {exc!r}")
            return False
        self._install(snapshot)
        return True

    def _install(self, snapshot: Snapshot) -> None:
        version = snapshot.version
        self._failed = None
        self.snapshot = snapshot
        if version > self.status.store_version:
            self.status = replace(self.status, store_version=version)
        self.status = replace(self.status, last_error="", reload_count=self.status.reload_count + 1)
        logger.info(
            "loaded rules version %d (%s)",
            version,
            snapshot.content_hash,
            extra={"event": "rules_loaded", "version": version, "hash": snapshot.content_hash},
        )
        if self._on_load is not None:
            self._on_load(snapshot)

    def adopt(self, version: int, document: str, ruleset: Ruleset) -> bool:
        """Serve a version this process has just published, compiled by the publish
        (read-your-writes without compiling the document a second time). A newer
        snapshot already loaded is kept. Returns True when the snapshot was swapped."""
        with self._poll_lock:
            current = self.snapshot
            if current is not None and current.version >= version:
                return False
            self._install(build_snapshot(version, document, self._clock(), ruleset))
            return True

    def _record_error(self, version: int, message: str) -> None:
        self.status = replace(
            self.status,
            last_error=message,
            last_error_at=self._clock(),
            error_count=self.status.error_count + 1,
        )
        serving = self.snapshot.version if self.snapshot else 0
        logger.error(
            "rules reload failed; still serving version %d: %s",
            serving,
            message,
            extra={"event": "reload_failed", "version": version, "serving_version": serving},
        )
        if self._on_error is not None:
            self._on_error(version, message)

    # -- thread ---------------------------------------------------------------------

    def start(self) -> None:
        """Start the poller thread (a daemon: it never keeps the process alive) and the
        watcher's notifications."""
        if self._thread is not None:
            raise RuntimeError("the reloader is already started")
        self._thread = threading.Thread(target=self._run, name="decide-reloader", daemon=True)
        self._thread.start()
        self.watcher.start(self._wake.set)

    def _run(self) -> None:
        # Event.wait, not time.sleep: stop() and the watcher's notifications wake it at once.
        while True:
            self._wake.wait(self.poll_interval)
            self._wake.clear()
            if self._stopping.is_set():
                break
            try:
                self.poll_once()
            except Exception:
                logger.exception("rules poll failed", extra={"event": "poll_failed"})

    def stop(self, timeout: float | None = 5.0) -> None:
        """Stop the poller thread and close the watcher. Idempotent."""
        self._stopping.set()
        self._wake.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        with self._poll_lock:
            self.watcher.close()
