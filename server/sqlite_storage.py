"""The SQLite storage: rules, profiles and exposures in one file (or two), on one machine.

What ``server.app`` used to open itself, behind the ``server.storage.Storage`` seam: the
rules store on ``config.db_path``; the profile store, exposures and the analytics
tables on ``config.profile_db_path`` or else the same file; a file that exists is
integrity-checked before it is opened (bounded: ``server.sqlite.check_integrity``), so
a damaged one is refused at start. Several processes may share the files
(``--processes``); each sees the others' publishes through ``PRAGMA data_version``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from server.analytics.exposures import ExposureRecorder
from server.config import ServerConfig
from server.profiles.sqlite import SQLiteProfileStore
from server.profiles.store import ProfileStore
from server.rules.sqlite import SQLiteRulesStore
from server.rules.sqlite_watcher import SQLiteRulesWatcher
from server.rules.store import RulesStore, RulesWatcher
from server.sqlite import check_file

__all__ = ["SQLiteStorage"]


class SQLiteStorage:
    """A ``Storage`` on SQLite files (see the module docstring)."""

    backend = "SQLite"

    def __init__(
        self,
        config: ServerConfig,
        *,
        metrics: Any = None,
        rules: RulesStore | None = None,
        profiles: ProfileStore | None = None,
    ) -> None:
        self._owned: list[Any] = []
        try:
            if rules is None:
                if Path(config.db_path).exists():
                    check_file(config.db_path, "rules store")
                rules = SQLiteRulesStore(config.db_path)
                self._owned.append(rules)
            rules_path = Path(getattr(rules, "path", config.db_path))
            self.rules_path = rules_path
            self.profile_path = Path(config.profile_db_path or rules_path)
            self.exposures: ExposureRecorder | None = None
            if profiles is None:
                if config.profile_db_path and Path(config.profile_db_path).exists():
                    check_file(config.profile_db_path, "profile store")
                profiles = SQLiteProfileStore(
                    self.profile_path,
                    cache_size=config.profile_cache_size,
                    cache_ttl=config.profile_cache_ttl,
                )
                self._owned.append(profiles)
                self.exposures = ExposureRecorder(
                    self.profile_path, metrics=metrics, durable=config.exposures_durable
                )
                self._owned.insert(0, self.exposures)  # closed first: it writes to profiles
        except BaseException:
            self.close()
            raise
        self.rules: RulesStore = rules
        self.profiles: ProfileStore = profiles

    @property
    def location(self) -> str:
        return str(self.rules_path)

    @property
    def scan_file(self) -> Path:
        return self.profile_path

    def watch_rules(self) -> RulesWatcher:
        return SQLiteRulesWatcher(self.rules_path)

    def check(self, *, full: bool = False) -> list[str]:
        files = [("rules store", self.rules_path)]
        if self.profile_path != self.rules_path:
            files.append(("profile store", self.profile_path))
        for store, path in files:
            check_file(path, store, full=full)
        return [f"{store} {path}: ok" for store, path in files]

    def close(self) -> None:
        owned, self._owned = self._owned, []
        for thing in owned:
            thing.close()
