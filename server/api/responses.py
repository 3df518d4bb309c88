"""Decide's response, assembled from parts encoded once per ruleset.

A ``Decision`` message is the same bytes for every visitor who gets the same
placement, reason, campaign, variant and matched segments, except for its
``decision_id``. Protobuf encodes a message as its fields in field-number order, so a
decision's encoding is ``head + decision_id + tail`` where ``head`` holds the message's
length prefix and field 1 (placement) and ``tail`` fields 3 to 8; both are computed
once per (snapshot, decision shape) and kept. A response is then a join of byte
strings, built in microseconds, with no message objects created; the bytes are the
ones protobuf's own serializer would write (``tests`` compare them).

Explained decisions (a trace per candidate) are rare and built as messages.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from decision import Decision, Outcome, Reason
from protos import decisioning_pb2 as pb
from server.rules.snapshot import Snapshot

__all__ = ["ResponseEncoder"]

MAX_SHAPES = 4096
"""Decision shapes kept per snapshot. A ruleset has few (placements x campaigns x
variants x matched-segment sets); unknown placement ids, which callers choose, are
never kept."""

_REASONS: dict[Reason, Any] = {r: pb.Reason.Value(f"REASON_{r.name}") for r in Reason}
_OUTCOMES: dict[Outcome, Any] = {o: pb.Outcome.Value(f"OUTCOME_{o.name}") for o in Outcome}
_ID_LENGTH = 26  # new_decision_id(): a ULID
_ID_TAG = b"\x12\x1a"  # field 2 (decision_id), length-delimited, 26 bytes


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        low = value & 0x7F
        value >>= 7
        if value:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


class _Parts:
    """The encoded parts of one snapshot: decision shapes and the response's trailer."""

    __slots__ = ("shapes", "snapshot", "trailer")

    def __init__(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot
        self.shapes: dict[tuple[Any, ...], tuple[bytes, bytes]] = {}
        trailer = pb.DecideResponse(
            ruleset_version=snapshot.version, ruleset_hash=snapshot.content_hash
        )
        self.trailer = trailer.SerializeToString()


class ResponseEncoder:
    """Builds DecideResponse bytes (``encode``) or messages (``message``)."""

    def __init__(self) -> None:
        self._parts: _Parts | None = None

    def _parts_for(self, snapshot: Snapshot) -> _Parts:
        parts = self._parts
        if parts is None or parts.snapshot is not snapshot:
            parts = self._parts = _Parts(snapshot)
        return parts

    def encode(
        self,
        decisions: Sequence[Decision],
        ids: Sequence[str],
        snapshot: Snapshot,
        *,
        segments: bool = True,
    ) -> bytes:
        """The serialized DecideResponse of ``decisions`` (no traces), with ``ids``;
        without their ``matched_segments`` unless ``segments``."""
        parts = self._parts_for(snapshot)
        shapes = parts.shapes
        chunks = []
        for d, decision_id in zip(decisions, ids, strict=True):
            matched = d.matched_segments if segments else ()
            key = (d.placement, d.reason, d.campaign_id, d.variant_id, matched)
            shape = shapes.get(key)
            if shape is None:
                shape = _shape(d, matched, snapshot)
                if d.reason is not Reason.UNKNOWN_PLACEMENT and len(shapes) < MAX_SHAPES:
                    shapes[key] = shape
            chunks.append(shape[0])
            chunks.append(decision_id.encode("ascii"))
            chunks.append(shape[1])
        chunks.append(parts.trailer)
        return b"".join(chunks)

    def message(
        self,
        decisions: Sequence[Decision],
        ids: Sequence[str],
        snapshot: Snapshot,
        *,
        explain: bool,
    ) -> pb.DecideResponse:
        """The DecideResponse message of ``decisions``, with their traces when ``explain``."""
        response = pb.DecideResponse(
            ruleset_version=snapshot.version, ruleset_hash=snapshot.content_hash
        )
        for d, decision_id in zip(decisions, ids, strict=True):
            message = response.decisions.add(
                placement=d.placement,
                decision_id=decision_id,
                reason=_REASONS[d.reason],
                campaign_id=d.campaign_id or "",
                variant_id=d.variant_id or "",
                control=d.control,
                content_json=snapshot.content_json(d.content),
                matched_segments=d.matched_segments,
            )
            if explain:
                message.explanation.SetInParent()
                for entry in d.trace or ():
                    message.explanation.candidates.add(
                        campaign_id=entry.campaign_id,
                        outcome=_OUTCOMES[entry.outcome],
                        detail=entry.detail,
                        bucket=entry.bucket,
                    )
        return response


def _shape(d: Decision, matched: tuple[str, ...], snapshot: Snapshot) -> tuple[bytes, bytes]:
    """``(head, tail)`` of a decision: its bytes are ``head + id + tail``."""
    placement = pb.Decision(placement=d.placement).SerializeToString()
    rest = pb.Decision(
        reason=_REASONS[d.reason],
        campaign_id=d.campaign_id or "",
        variant_id=d.variant_id or "",
        control=d.control,
        content_json=snapshot.content_json(d.content),
        matched_segments=matched,
    ).SerializeToString()
    length = len(placement) + len(_ID_TAG) + _ID_LENGTH + len(rest)
    return b"\x0a" + _varint(length) + placement + _ID_TAG, rest
