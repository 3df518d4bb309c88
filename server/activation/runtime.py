"""Activation inside a running server: its stores, caches, worker and servicer, built once.

``server.app`` opens an ``Activation`` next to the profile store it owns, attaches it to
the reloader and the exposure recorder once they exist, and stops it in this order on
shutdown: ``stop_worker`` (no more detection or deliveries) before the exposure
recorder writes what it buffered (its listener still records assignments), ``close``
after that and before the profile store closes.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from server.activation.assignments import IdentityAwareProfiles, IdentityCache
from server.activation.feed import ChangeFeed
from server.activation.recording import ExposureListener
from server.activation.sqlite import SQLiteActivation
from server.activation.webhooks import WebhookSettings
from server.activation.worker import ActivationWorker, build_worker
from server.config import ConfigError, ServerConfig
from server.profiles.store import ProfileStore

__all__ = ["Activation", "read_secrets"]


def read_secrets(config: ServerConfig) -> dict[str, str]:
    """Webhook secrets: ``webhook_secrets_file`` (``id=secret`` lines, ``#`` comments),
    then ``webhook_secrets`` over it. ``ConfigError`` when the file cannot be read."""
    secrets: dict[str, str] = {}
    if config.webhook_secrets_file:
        try:
            text = Path(config.webhook_secrets_file).read_text("utf-8")
        except OSError as exc:
            raise ConfigError("webhook_secrets_file", f"cannot read it: {exc.strerror}") from exc
        for number, line in enumerate(text.splitlines(), 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            key, sep, value = line.partition("=")
            if not sep or not key.strip() or not value.strip():
                raise ConfigError("webhook_secrets_file", f"line {number}: expected ID=SECRET")
            secrets[key.strip()] = value.strip()
    secrets.update(dict(config.webhook_secrets))
    return secrets


class Activation:
    """One server's activation parts (see the module docstring)."""

    def __init__(
        self,
        config: ServerConfig,
        profile_path: str | Path,
        profiles: ProfileStore,
        clock: Callable[[], datetime],
    ) -> None:
        self.config = config
        self.profile_path = Path(profile_path)
        self.profiles = profiles
        self.clock = clock
        self.settings = WebhookSettings(
            allow=config.webhook_allow,
            secrets=read_secrets(config),
            timeout=config.webhook_timeout,
            attempts=config.webhook_attempts,
            backoff=config.webhook_backoff,
        )
        self.stores = SQLiteActivation(profile_path)
        self.identities = IdentityCache(
            self.stores.assignments,
            maxsize=config.profile_cache_size,
            ttl=config.profile_cache_ttl,
        )
        self.feed = ChangeFeed()
        self.exposures: Any = None
        self.listener: ExposureListener | None = None
        self.worker: ActivationWorker | None = None

    def attach(self, source: Any, exposures: Any) -> None:
        """Connect to the reloader (``source``) and the exposure recorder, and start the
        worker."""
        self.exposures = exposures
        if exposures is not None:
            self.listener = ExposureListener(self.stores.assignments, self.profiles, source)
            exposures.listener = self.listener
        self.worker = build_worker(
            self.stores,
            source,
            self.clock,
            settings=self.settings,
            poll_interval=self.config.poll_interval,
            sweep_interval=self.config.segment_sweep_interval,
            retention_days=self.config.change_retention_days,
            feed=self.feed,
        )
        self.worker.start()

    def tracking_profiles(self) -> IdentityAwareProfiles:
        """The profile store Track and the profile administration write through."""
        return IdentityAwareProfiles(self.profiles, self.exposures, self.identities)

    def stop_worker(self) -> None:
        if self.worker is not None:
            self.worker.stop()

    def close(self) -> None:
        self.stop_worker()
        self.stores.close()
