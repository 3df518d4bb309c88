"""Webhooks: segment changes POSTed to the rules' webhook targets, signed, retried, logged.

Each webhook of the active rules gets a delivery thread of its own, so a slow or dead
receiver delays only its own deliveries: never Decide or Track (which never wait for
these threads), nor another webhook. A thread works from the durable logs only, so its
memory is bounded by one delivery (at most ``BATCH`` changes) whatever the backlog:

1. unfinished deliveries first (pending, retrying, or queued again with
   ``RedeliverWebhook``), oldest first: a delivery interrupted by a restart is sent
   again (at least once);
2. then the next changes of its segments after its cursor, at most ``BATCH``, become
   one delivery, created together with moving the cursor (``WebhookLog.create``);
3. a delivery is POSTed with up to ``attempts`` attempts: after attempt ``n`` fails
   (a connection error, the ``timeout``, any status but 2xx; redirects are not
   followed, so the allow-list cannot be sidestepped) it waits ``backoff * 2**(n-1)``
   seconds, at most ``MAX_BACKOFF``, and tries again; after the last it is *dead*
   (the dead-letter list: ``decide webhooks deliveries --status dead``), and the thread
   moves on. ``RedeliverWebhook`` queues a dead delivery again.

A delivery is *blocked*, not sent, when its URL's origin is not on the allow-list
(``DECIDE_WEBHOOK_ALLOW``) or no secret is configured for the webhook
(``DECIDE_WEBHOOK_SECRETS``): it is logged with the reason and can be sent again once
the configuration is fixed.

The request: ``POST`` with a JSON body ``{"webhook", "delivery_id", "attempt",
"sent_at", "changes": [{"seq", "visitor_id", "segment", "change", "at", "reason",
"merged_into"}]}`` and the headers ``X-Decide-Signature: sha256=<hex HMAC-SHA256 of
the body with the webhook's secret>``, ``X-Decide-Delivery`` (the same for every
attempt: receivers drop repeats by it), ``X-Decide-Webhook`` and ``X-Decide-Attempt``.
Changes are in ``seq`` order, which keeps each visitor's changes in order.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Protocol
from urllib.parse import urlsplit

from decision import Webhook
from decision.profile import format_timestamp
from server.activation.store import ChangeLog, Delivery, DeliveryStatus, SegmentChange, WebhookLog
from server.rules.snapshot import Snapshot

__all__ = [
    "BATCH",
    "MAX_BACKOFF",
    "SIGNATURE_HEADER",
    "WebhookSettings",
    "Webhooks",
    "origin",
    "payload",
    "sign",
]

logger = logging.getLogger("decide.server")

BATCH = 100
"""Changes per delivery at most."""

MAX_BACKOFF = 300.0
"""Longest wait between two attempts, in seconds."""

MAX_RESPONSE_BYTES = 64 * 1024
"""What is read of a receiver's answer (only its status matters)."""

SIGNATURE_HEADER = "X-Decide-Signature"
USER_AGENT = "decide-webhooks/1"

Clock = Callable[[], datetime]


class _Source(Protocol):
    @property
    def snapshot(self) -> Snapshot | None: ...


def sign(secret: str, body: bytes) -> str:
    """The signature header's value: ``sha256=`` and the hex HMAC-SHA256 of ``body``."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def origin(url: str) -> str:
    """``scheme://host:port`` of a URL, lower-cased, the port always written."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    port = parts.port or (443 if scheme == "https" else 80)
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    return f"{scheme}://{host}:{port}"


def payload(
    webhook: str,
    delivery_id: str,
    attempt: int,
    sent_at: datetime,
    changes: Sequence[SegmentChange],
) -> bytes:
    """The JSON body of one attempt."""
    return json.dumps(
        {
            "webhook": webhook,
            "delivery_id": delivery_id,
            "attempt": attempt,
            "sent_at": format_timestamp(sent_at),
            "changes": [
                {
                    "seq": c.seq,
                    "visitor_id": c.visitor_id,
                    "segment": c.segment,
                    "change": "entered" if c.entered else "left",
                    "at": format_timestamp(c.at),
                    "reason": c.reason,
                    "merged_into": c.merged_into,
                }
                for c in changes
            ],
        },
        separators=(",", ":"),
        ensure_ascii=False,
    ).encode("utf-8")


class WebhookSettings:
    """What the server's configuration says about webhooks."""

    def __init__(
        self,
        *,
        allow: Sequence[str],
        secrets: Mapping[str, str],
        timeout: float,
        attempts: int,
        backoff: float,
    ) -> None:
        self.allow = frozenset(origin(o) for o in allow)
        self.secrets = dict(secrets)
        self.timeout = timeout
        self.attempts = attempts
        self.backoff = backoff

    def blocked(self, webhook: str, url: str) -> str | None:
        """Why deliveries to ``url`` may not be sent, or None."""
        if origin(url) not in self.allow:
            return f"{origin(url)} is not on the server's webhook allow-list (DECIDE_WEBHOOK_ALLOW)"
        if not self.secrets.get(webhook):
            return (
                f"no signing secret is configured for webhook {webhook!r} (DECIDE_WEBHOOK_SECRETS)"
            )
        return None

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt ``attempt`` (1-based)."""
        return float(min(self.backoff * 2 ** (attempt - 1), MAX_BACKOFF))


def post(url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> tuple[int, str]:
    """POST ``body``; ``(HTTP status, "")`` when answered, ``(0, reason)`` otherwise."""
    parts = urlsplit(url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    connection_class = (
        http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    )
    conn = connection_class(parts.hostname or "", parts.port, timeout=timeout)
    try:
        conn.request("POST", target, body=body, headers=dict(headers))
        response = conn.getresponse()
        response.read(MAX_RESPONSE_BYTES)
        return response.status, ""
    except (OSError, http.client.HTTPException) as exc:
        return 0, f"{type(exc).__name__}: {exc}"[:300]
    finally:
        conn.close()


class _Deliverer:
    """One webhook's delivery thread."""

    def __init__(self, owner: Webhooks, webhook: Webhook) -> None:
        self.owner = owner
        self.webhook = webhook
        self.wake = threading.Event()
        self.stopping = threading.Event()
        self.thread = threading.Thread(
            target=self._run, name=f"decide-webhook-{webhook.id}", daemon=True
        )

    def _run(self) -> None:
        while not self.stopping.is_set():
            try:
                busy = self.step()
            except Exception:  # the thread must survive a store fault; logged
                logger.exception(
                    "webhook %s: delivery failed",
                    self.webhook.id,
                    extra={"event": "webhook_error", "webhook": self.webhook.id},
                )
                busy = False
            if not busy:
                self.wake.wait(self.owner.poll_interval)
                self.wake.clear()

    def step(self) -> bool:
        """Send what is unfinished, else make the next delivery; whether there was work."""
        owner, webhook = self.owner, self.webhook
        unfinished = owner.log.unfinished(webhook.id)
        if unfinished:
            for delivery in unfinished:
                if self.stopping.is_set():
                    break
                self.deliver(delivery)
            return True
        cursor = owner.log.cursor(webhook.id, owner.changes.last_seq())
        batch = owner.changes.changes_after(cursor, webhook.segments, BATCH)
        if not batch:
            return False
        created = owner.log.create(
            webhook.id,
            webhook.url,
            webhook.segments,
            batch,
            expected_cursor=cursor,
            at=owner.clock(),
        )
        return created is not None

    def deliver(self, delivery: Delivery) -> None:
        """Send one delivery, with its retries (see the module docstring)."""
        owner = self.owner
        settings = owner.settings
        reason = settings.blocked(delivery.webhook, delivery.url)
        if reason is not None:
            owner.log.update(
                delivery.delivery_id,
                status=DeliveryStatus.BLOCKED,
                attempts=delivery.attempts,
                http_status=0,
                error=reason,
                at=owner.clock(),
            )
            return
        changes = [
            c
            for c in owner.changes.changes_after(
                delivery.first_seq - 1, delivery.segments, delivery.changes
            )
            if c.seq <= delivery.last_seq
        ]
        if not changes:  # every one was deleted (DeleteVisitor) or pruned since
            owner.log.update(
                delivery.delivery_id,
                status=DeliveryStatus.DELIVERED,
                attempts=delivery.attempts,
                http_status=0,
                error="nothing left to send: its changes were deleted",
                at=owner.clock(),
            )
            return
        secret = settings.secrets[delivery.webhook]
        attempt = delivery.attempts
        while not self.stopping.is_set():
            attempt += 1
            body = payload(delivery.webhook, delivery.delivery_id, attempt, owner.clock(), changes)
            headers = {
                "Content-Type": "application/json",
                "User-Agent": USER_AGENT,
                SIGNATURE_HEADER: sign(secret, body),
                "X-Decide-Delivery": delivery.delivery_id,
                "X-Decide-Webhook": delivery.webhook,
                "X-Decide-Attempt": str(attempt),
            }
            status, error = owner.post(delivery.url, body, headers, settings.timeout)
            if 200 <= status < 300:
                outcome = DeliveryStatus.DELIVERED
            elif attempt >= settings.attempts:
                outcome = DeliveryStatus.DEAD
            else:
                outcome = DeliveryStatus.RETRYING
            if status and not 200 <= status < 300:
                error = f"HTTP {status}"
            owner.log.update(
                delivery.delivery_id,
                status=outcome,
                attempts=attempt,
                http_status=status,
                error=error,
                at=owner.clock(),
            )
            if outcome != DeliveryStatus.RETRYING:
                if outcome == DeliveryStatus.DEAD:
                    logger.warning(
                        "webhook %s: delivery %s is dead after %d attempts (%s)",
                        delivery.webhook,
                        delivery.delivery_id,
                        attempt,
                        error,
                        extra={"event": "webhook_dead", "webhook": delivery.webhook},
                    )
                return
            if self.stopping.wait(settings.delay(attempt)):
                return  # stays "retrying": sent again after the restart


class Webhooks:
    """The delivery threads of the active rules' webhooks (``sync`` keeps them in step)."""

    def __init__(
        self,
        log: WebhookLog,
        changes: ChangeLog,
        source: _Source,
        settings: WebhookSettings,
        clock: Clock,
        *,
        poll_interval: float = 0.2,
        post: Callable[[str, bytes, Mapping[str, str], float], tuple[int, str]] = post,
    ) -> None:
        self.log = log
        self.changes = changes
        self.settings = settings
        self.clock = clock
        self.poll_interval = poll_interval
        self.post = post
        self._source = source
        self._running: dict[str, _Deliverer] = {}
        self._lock = threading.Lock()

    def sync(self) -> None:
        """Start a thread per webhook of the active rules; stop those of removed ones
        (a changed URL or segment list restarts its thread)."""
        snapshot = self._source.snapshot
        wanted = dict(snapshot.ruleset.webhooks) if snapshot is not None else {}
        with self._lock:
            for webhook_id, deliverer in list(self._running.items()):
                if wanted.get(webhook_id) != deliverer.webhook:
                    deliverer.stopping.set()
                    deliverer.wake.set()
                    del self._running[webhook_id]
            for webhook_id, webhook in wanted.items():
                if webhook_id not in self._running:
                    deliverer = _Deliverer(self, webhook)
                    self._running[webhook_id] = deliverer
                    deliverer.thread.start()

    def wake(self) -> None:
        """New changes: let every thread look now."""
        with self._lock:
            for deliverer in self._running.values():
                deliverer.wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop every thread (a POST in flight ends at its timeout)."""
        with self._lock:
            stopping = list(self._running.values())
            self._running.clear()
        for deliverer in stopping:
            deliverer.stopping.set()
            deliverer.wake.set()
        for deliverer in stopping:
            deliverer.thread.join(timeout)
