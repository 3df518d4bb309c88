"""RulesWatcher on every backend: a publish through one storage reaches another's
reloader, whoever made it."""

from __future__ import annotations

import threading
import time

from server.rules.reloader import Reloader


def _wait_for(condition, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


class TestPoll:
    def test_first_poll_returns_the_active_rules(self, storage):
        """A new watcher's first poll is whatever is active."""
        watcher = storage.watch_rules()
        try:
            version, document = watcher.poll()
        finally:
            watcher.close()

        assert (1, storage.rules.get()[1]) == (version, document)

    def test_nothing_changes_without_a_publish(self, storage):
        """After the first poll, polls return None until something is published."""
        watcher = storage.watch_rules()
        try:
            watcher.poll()

            assert (None, None) == (watcher.poll(), watcher.poll())
        finally:
            watcher.close()

    def test_a_publish_through_another_storage_is_seen(self, backend, storage, make_rules):
        """Another decider's (or process's) publish shows in this storage's watcher."""
        watcher = storage.watch_rules()
        try:
            watcher.poll()
            info = backend.open().rules.publish(make_rules("elsewhere"))

            version, document = watcher.poll()
        finally:
            watcher.close()

        assert (info.version, make_rules("elsewhere")) == (version, document)


class TestReloader:
    def test_reloader_serves_another_storages_publish(self, backend, storage, make_rules):
        """A running reloader picks up a publish made through another storage."""
        reloader = Reloader(storage.watch_rules(), poll_interval=0.05)
        reloader.poll_once()
        reloader.start()
        try:
            info = backend.open().rules.publish(make_rules("pushed"))

            assert _wait_for(lambda: reloader.snapshot.version == info.version)
        finally:
            reloader.stop()

        assert "pushed" in reloader.snapshot.document

    def test_stopped_reloader_closes_its_watcher_and_stops_promptly(self, storage):
        """stop() ends the poller and the watcher's threads within its timeout."""
        reloader = Reloader(storage.watch_rules(), poll_interval=30)
        reloader.start()

        reloader.stop(timeout=10)

        alive = [t.name for t in threading.enumerate() if t.name.startswith("decide-r")]
        assert [] == alive
