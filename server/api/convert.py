"""Conversions between proto messages and plain values shared by the servicers: times,
rules versions, decision ids."""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime

from google.protobuf import timestamp_pb2

from protos import decisioning_pb2 as pb
from server.rules.store import VersionInfo

__all__ = ["moment", "new_decision_id", "timestamp", "utcnow", "version_message"]


def utcnow() -> datetime:
    """The current time, as an aware UTC datetime."""
    return datetime.now(UTC)


def timestamp(value: datetime | None) -> timestamp_pb2.Timestamp | None:
    """A proto Timestamp of an aware datetime (None stays None: the field stays unset)."""
    if value is None:
        return None
    message = timestamp_pb2.Timestamp()
    message.FromDatetime(value)
    return message


def moment(stamp: timestamp_pb2.Timestamp) -> datetime:
    """The aware UTC datetime of a proto Timestamp."""
    return stamp.ToDatetime(tzinfo=UTC)


def version_message(info: VersionInfo) -> pb.RulesVersion:
    """The proto form of a stored version's metadata."""
    return pb.RulesVersion(
        version=info.version,
        content_hash=info.content_hash,
        created_at=timestamp(info.created_at),
        comment=info.comment,
        author=info.author,
        restored_from=info.restored_from,
        active=info.active,
    )


_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
# Two characters (10 bits) per lookup: 13 lookups encode the 130 bits of 26 characters.
_PAIRS = tuple(a + b for a in _CROCKFORD for b in _CROCKFORD)
_PAIR_SHIFTS = tuple(range(120, -1, -10))


def new_decision_id() -> str:
    """A ULID: 26 Crockford base-32 characters, 48 bits of milliseconds then 80 random
    bits, so ids sort by creation time and never collide in practice.

    The random bits come from ``random`` (seeded from the OS at start and again in a
    forked child), not ``os.urandom``: ids must be unique, not secret, and a system call
    per id costs more than the rest of the id.
    """
    value = (time.time_ns() // 1_000_000) << 80 | random.getrandbits(80)
    return "".join([_PAIRS[(value >> shift) & 1023] for shift in _PAIR_SHIFTS])
