"""``AsyncDecisionClient``: the asyncio client (``grpc.aio``), one owned channel per instance."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Mapping, Sequence
from datetime import datetime
from types import TracebackType
from typing import Any, Self

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from client import _activation, _convert, _events, _insights
from client._config import (
    DEFAULT_ADMIN_TIMEOUT,
    DEFAULT_DECIDE_TIMEOUT,
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_TRACK_TIMEOUT,
    FAIL_CLOSED,
    ClientSettings,
    channel_options,
    resolve_timeout,
)
from client.errors import DecideError, map_rpc_error
from client.types import (
    JSON,
    DecideResult,
    RulesDocument,
    RulesVersion,
    SegmentEstimate,
    ServerStatus,
    TrackEvent,
    TrackResult,
    ValidationResult,
    VersionList,
    VisitorSegments,
)
from insights import CampaignReport, SegmentReport
from protos import decisioning_pb2 as pb
from protos import decisioning_pb2_grpc as pb_grpc

logger = logging.getLogger("client")


class AsyncDecisionClient:
    """asyncio client for DecisionService, RulesAdmin and health checks; the same API as
    ``DecisionClient`` with coroutine methods, used with ``async with``.

    The channel is created on construction; construct it inside a running event loop.

    ``target`` is ``"host:port"``. TLS is used when ``secure`` is true or
    ``root_certificates`` (PEM bytes) are given. ``api_key`` is sent with decision and
    event calls, ``admin_token`` with rules and profile calls. ``fallbacks`` maps placement ids to the content
    ``decide`` serves when the call fails (see ``decide``); without it, ``decide`` raises.

    Every call has a deadline (``decide_timeout`` for ``decide`` and
    ``visitor_segments``, ``track_timeout`` for ``track`` and a whole ``track_stream``,
    ``admin_timeout`` for the rest), overridable per call with
    ``timeout=``. gRPC retries UNAVAILABLE up to ``max_attempts`` times within that
    deadline. Close the client (or use it as a context manager) to free its channel.
    """

    def __init__(
        self,
        target: str,
        *,
        api_key: str | None = None,
        admin_token: str | None = None,
        root_certificates: bytes | None = None,
        secure: bool = False,
        fallbacks: Mapping[str, JSON] | None = None,
        decide_timeout: float = DEFAULT_DECIDE_TIMEOUT,
        admin_timeout: float = DEFAULT_ADMIN_TIMEOUT,
        track_timeout: float = DEFAULT_TRACK_TIMEOUT,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        options: Sequence[tuple[str, Any]] = (),
    ) -> None:
        self.settings = ClientSettings(
            target=target,
            api_key=api_key,
            admin_token=admin_token,
            root_certificates=root_certificates,
            secure=secure,
            fallbacks=dict(fallbacks) if fallbacks is not None else None,
            decide_timeout=decide_timeout,
            admin_timeout=admin_timeout,
            track_timeout=track_timeout,
            options=channel_options(max_attempts, options),
        )
        s = self.settings
        if s.use_tls:
            self._channel = grpc.aio.secure_channel(target, s.credentials(), options=s.options)
        else:
            self._channel = grpc.aio.insecure_channel(target, options=s.options)
        self._decisions = pb_grpc.DecisionServiceStub(self._channel)  # type: ignore[no-untyped-call]
        self._admin = pb_grpc.RulesAdminStub(self._channel)  # type: ignore[no-untyped-call]
        self._event_stub = pb_grpc.EventServiceStub(self._channel)  # type: ignore[no-untyped-call]
        self._profile_stub = pb_grpc.ProfileServiceStub(self._channel)  # type: ignore[no-untyped-call]
        self._insights = pb_grpc.InsightsServiceStub(self._channel)  # type: ignore[no-untyped-call]
        self._activation = pb_grpc.ActivationServiceStub(self._channel)  # type: ignore[no-untyped-call]
        self._health = health_pb2_grpc.HealthStub(self._channel)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the channel; calls made afterwards fail."""
        await self._channel.close()

    # -- decisions ----------------------------------------------------------------------

    async def decide(
        self,
        visitor_id: str,
        placements: Sequence[str],
        context: Mapping[str, JSON] | None = None,
        *,
        explain: bool = False,
        profile_overrides: Mapping[str, JSON] | None = None,
        preview: bool = False,
        now: datetime | None = None,
        timeout: float | None = None,
        fallbacks: Mapping[str, JSON] | None = None,
    ) -> DecideResult:
        """One decision per placement, in order.

        Fails open: when fallbacks are configured (here or at construction; per-call
        entries win) and the call fails for any reason but a caller bug, a warning is
        logged and every placement gets its fallback content (``None`` if it has none)
        with reason ``"CLIENT_FALLBACK"``. ``InvalidArgument``, ``Unauthenticated`` and
        ``PermissionDenied`` are always raised.

        With ``preview`` the server decides as usual but records no exposure: for
        previews and QA, so that experiment reports count only what visitors saw. A
        preview may also name ``now``, the moment to decide at (e.g. when a scheduled
        campaign starts); without ``preview`` the server refuses it.
        """
        request = _convert.decide_request(
            visitor_id, placements, context, explain, profile_overrides, preview, now
        )
        try:
            response = await self._call(
                self._decisions.Decide,
                request,
                resolve_timeout(timeout, self.settings.decide_timeout),
                self.settings.decision_metadata(),
            )
            return _convert.decide_result(response)
        except DecideError as e:
            chosen = self.settings.fallbacks_for(fallbacks)
            if chosen is None or isinstance(e, FAIL_CLOSED):
                raise
            logger.warning(
                "decide failed (%s), serving client fallbacks for %s: %s",
                e.code.name if e.code else type(e).__name__,
                ", ".join(request.placements),
                e.details,
            )
            return _convert.fallback_result(request.placements, chosen)

    async def visitor_segments(
        self,
        visitor_id: str,
        context: Mapping[str, JSON] | None = None,
        *,
        profile_overrides: Mapping[str, JSON] | None = None,
        timeout: float | None = None,
    ) -> VisitorSegments:
        """The segments the visitor is in now, given ``context``."""
        request = _convert.segments_request(visitor_id, context, profile_overrides)
        response = await self._call(
            self._decisions.GetVisitorSegments,
            request,
            resolve_timeout(timeout, self.settings.decide_timeout),
            self.settings.decision_metadata(),
        )
        return _convert.visitor_segments(response)

    # -- events and profiles ------------------------------------------------------------

    async def track(
        self,
        events: Iterable[Mapping[str, JSON] | TrackEvent],
        *,
        timeout: float | None = None,
    ) -> TrackResult:
        """Store one batch of events atomically (at most 1000); see ``TrackEvent`` for
        the event shape. Safe to retry: an event already stored counts as a duplicate.

        ``InvalidArgument`` names every bad event by ``events[I].field``; nothing of the
        batch is stored then.
        """
        request = _events.track_request(events)
        response = await self._call(
            self._event_stub.Track,
            request,
            resolve_timeout(timeout, self.settings.track_timeout),
            self.settings.decision_metadata(),
        )
        return _events.track_result(response)

    async def track_stream(
        self,
        batches: Iterable[Iterable[Mapping[str, JSON] | TrackEvent]]
        | AsyncIterable[Iterable[Mapping[str, JSON] | TrackEvent]],
        *,
        timeout: float | None = None,
    ) -> TrackResult:
        """Stream many batches over one call; each batch is stored atomically as it
        arrives, and the result totals them.

        A bad batch stops the stream: ``BatchRejected`` says which batch (``.batch``)
        and how much the earlier ones stored (``.accepted``, ``.duplicates``); they stay
        stored. The deadline (``track_timeout`` by default) covers the whole stream.
        """
        stream = _events.BatchStream(batches)
        try:
            response = await self._event_stub.TrackStream(
                stream.__aiter__(),
                timeout=resolve_timeout(timeout, self.settings.track_timeout),
                metadata=self.settings.decision_metadata(),
            )
        except grpc.RpcError as e:
            raise map_rpc_error(e) from e
        return stream.finish(response)

    async def get_profile(
        self, visitor_id: str, *, timeout: float | None = None
    ) -> dict[str, JSON] | None:
        """The visitor's stored profile document, or ``None`` when none is stored."""
        request = pb.GetProfileRequest(visitor_id=visitor_id)
        response = await self._profile_call("GetProfile", request, timeout)
        return _events.profile_result(response)

    async def set_attributes(
        self, visitor_id: str, attributes: Mapping[str, JSON], *, timeout: float | None = None
    ) -> dict[str, JSON]:
        """Set fields under the profile's ``attributes`` (``None`` removes one); returns
        the updated profile."""
        request = pb.SetAttributesRequest(
            visitor_id=visitor_id, attributes=_events.struct("attributes", attributes)
        )
        response = await self._profile_call("SetAttributes", request, timeout)
        profile: dict[str, JSON] = _events.parse_document(response.profile_json, "profile")
        return profile

    async def delete_visitor(self, visitor_id: str, *, timeout: float | None = None) -> int:
        """Forget the visitor: profile, events and identity links. Returns how many
        stored records were removed (0 for an unknown visitor)."""
        request = pb.DeleteVisitorRequest(visitor_id=visitor_id)
        response = await self._profile_call("DeleteVisitor", request, timeout)
        return int(response.deleted)

    async def export_visitor(
        self, visitor_id: str, *, timeout: float | None = None
    ) -> dict[str, JSON]:
        """Everything the server holds about the visitor, as one JSON document."""
        request = pb.ExportVisitorRequest(visitor_id=visitor_id)
        response = await self._profile_call("ExportVisitor", request, timeout)
        export: dict[str, JSON] = _events.parse_document(response.export_json, "export")
        return export

    # -- insights -----------------------------------------------------------------------

    async def campaign_report(
        self,
        campaign: str,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        by_segment: bool = False,
        baseline: str = "",
        min_sample: int = 0,
        channel: str = "",
        timeout: float | None = None,
    ) -> CampaignReport:
        """One campaign's arms over [start, end) (default: the 7 days before now) as an
        ``insights.CampaignReport``; ``NotFound`` for an unknown campaign. ``channel``
        (``"web"``, ``"email"``...) counts only the exposures recorded for it."""
        request = pb.CampaignReportRequest(
            campaign=campaign,
            period=_insights.period(start, end),
            by_segment=by_segment,
            baseline=baseline,
            min_sample=min_sample,
            channel=channel,
        )
        return _insights.campaign_report(
            await self._insights_call("CampaignReport", request, timeout)
        )

    async def segment_report(
        self,
        segments: Sequence[str],
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        timeout: float | None = None,
    ) -> SegmentReport:
        """Sizes, exposures, overlap and journeys of ``segments`` as an
        ``insights.SegmentReport``."""
        if isinstance(segments, str):
            raise TypeError("segments must be a sequence of segment ids, not a str")
        request = pb.SegmentReportRequest(
            segments=list(segments), period=_insights.period(start, end)
        )
        return _insights.segment_report(
            await self._insights_call("SegmentReport", request, timeout)
        )

    async def estimate_segment(
        self,
        filter: Mapping[str, JSON] | str,
        *,
        sample_size: int = 0,
        timeout: float | None = None,
    ) -> SegmentEstimate:
        """How many stored profiles ``filter`` (a mapping or JSON text) matches, a
        sample of them and the segments it overlaps most."""
        request = pb.EstimateSegmentRequest(
            filter_json=_convert.document_json(filter), sample_size=sample_size
        )
        return _insights.segment_estimate(
            await self._insights_call("EstimateSegment", request, timeout)
        )

    async def export_segment(
        self, segment: str, *, page_size: int = 0, timeout: float | None = None
    ) -> AsyncIterator[str]:
        """Every visitor id in ``segment``, streamed page by page; the deadline covers
        the whole export."""
        request = pb.ExportSegmentRequest(segment=segment, page_size=page_size)
        try:
            async for page in self._insights.ExportSegment(
                request,
                timeout=resolve_timeout(timeout, _insights.DEFAULT_INSIGHTS_TIMEOUT),
                metadata=self.settings.admin_metadata(),
            ):
                for visitor_id in page.visitor_ids:
                    yield visitor_id
        except grpc.RpcError as e:
            raise map_rpc_error(e) from e

    # -- activation ---------------------------------------------------------------------

    def decide_batch(
        self,
        placements: Sequence[str],
        *,
        segment: str | None = None,
        visitor_ids: Sequence[str] | None = None,
        context: Mapping[str, JSON] | None = None,
        now: datetime | None = None,
        record: bool = False,
        channel: str = "",
        send_id: str = "",
        start_after: str = "",
        page_size: int = 0,
        timeout: float | None = None,
    ) -> _activation.AsyncBatchCall:
        """Decide ``placements`` for every stored visitor of ``segment``, or for
        ``visitor_ids``, at ``now`` (default: the server's), as Decide would for each.
        A preview unless ``record`` (then ``channel`` is required and exposures are
        tagged with it and ``send_id``). Iterate the result for ``BatchRow`` values;
        its ``header`` and ``summary`` are set as they arrive (a segment batch that
        stopped at the server's cap says where to continue). Admin token."""
        request = _activation.batch_request(
            placements,
            segment=segment,
            visitor_ids=visitor_ids,
            context=context,
            now=now,
            record=record,
            channel=channel,
            send_id=send_id,
            start_after=start_after,
            page_size=page_size,
        )
        responses = self._activation.DecideBatch(
            request,
            timeout=resolve_timeout(timeout, _activation.DEFAULT_BATCH_TIMEOUT),
            metadata=self.settings.admin_metadata(),
        )
        return _activation.AsyncBatchCall(responses)

    async def watch_segment_changes(
        self,
        segments: Sequence[str] = (),
        *,
        resume_token: str = "",
        from_start: bool = False,
        timeout: float | None = None,
    ) -> AsyncIterator[_activation.SegmentChanges]:
        """Segment changes (entered, left) as they are recorded, after ``resume_token``
        (default: from now; ``from_start``: every change still kept), until the deadline
        (``timeout``; None: until the caller stops). Admin token."""
        request = _activation.watch_request(segments, resume_token, from_start)
        try:
            async for message in self._activation.WatchSegmentChanges(
                request, timeout=timeout, metadata=self.settings.admin_metadata()
            ):
                yield _activation.segment_changes(message)
        except grpc.RpcError as e:
            raise map_rpc_error(e) from e

    async def webhook_deliveries(
        self, webhook: str = "", *, status: str = "", limit: int = 0, timeout: float | None = None
    ) -> list[_activation.WebhookDelivery]:
        """The webhook delivery log, newest first (``status="dead"``: the dead letters)."""
        request = pb.ListWebhookDeliveriesRequest(webhook=webhook, status=status, limit=limit)
        response = await self._call(
            self._activation.ListWebhookDeliveries,
            request,
            resolve_timeout(timeout, self.settings.admin_timeout),
            self.settings.admin_metadata(),
        )
        return [_activation.delivery(d) for d in response.deliveries]

    async def redeliver_webhook(
        self, delivery_id: str, *, timeout: float | None = None
    ) -> _activation.WebhookDelivery:
        """Queue a dead or blocked delivery again."""
        request = pb.RedeliverWebhookRequest(delivery_id=delivery_id)
        response = await self._call(
            self._activation.RedeliverWebhook,
            request,
            resolve_timeout(timeout, self.settings.admin_timeout),
            self.settings.admin_metadata(),
        )
        return _activation.delivery(response.delivery)

    # -- rules administration -----------------------------------------------------------

    async def validate_rules(
        self, document: Mapping[str, JSON] | str | bytes, *, timeout: float | None = None
    ) -> ValidationResult:
        """Check a rules document (a mapping or JSON text) without storing it."""
        request = pb.ValidateRulesRequest(document_json=_convert.document_json(document))
        response = await self._admin_call("ValidateRules", request, timeout)
        return _convert.validation_result(response)

    async def publish_rules(
        self,
        document: Mapping[str, JSON] | str | bytes,
        *,
        expected_version: int | None = None,
        comment: str = "",
        timeout: float | None = None,
    ) -> RulesVersion:
        """Store ``document`` as a new active version.

        ``InvalidArgument`` (with ``.violations``) when the document is invalid;
        ``FailedPrecondition`` when ``expected_version`` is no longer the active version.
        """
        request = pb.PublishRulesRequest(
            document_json=_convert.document_json(document),
            expected_version=expected_version,
            comment=comment,
        )
        response = await self._admin_call("PublishRules", request, timeout)
        return _convert.rules_version(response.version)

    async def get_rules(
        self, version: int | None = None, *, timeout: float | None = None
    ) -> RulesDocument:
        """The document of ``version`` (default: the active one); ``NotFound`` if unknown."""
        request = pb.GetRulesRequest(version=version)
        response = await self._admin_call("GetRules", request, timeout)
        return _convert.rules_document(response)

    async def list_versions(self, limit: int = 50, *, timeout: float | None = None) -> VersionList:
        """Stored versions, newest first."""
        request = pb.ListVersionsRequest(limit=limit)
        response = await self._admin_call("ListVersions", request, timeout)
        return _convert.version_list(response)

    async def rollback(
        self,
        version: int,
        *,
        comment: str = "",
        expected_version: int | None = None,
        timeout: float | None = None,
    ) -> RulesVersion:
        """Make ``version``'s document active again, recorded as a new version."""
        request = pb.RollbackRequest(
            version=version, comment=comment, expected_version=expected_version
        )
        response = await self._admin_call("Rollback", request, timeout)
        return _convert.rules_version(response.version)

    async def status(self, *, timeout: float | None = None) -> ServerStatus:
        """What the server is serving, and its last reload problem."""
        response = await self._admin_call("GetStatus", pb.GetStatusRequest(), timeout)
        return _convert.server_status(response)

    async def health(self, service: str = "", *, timeout: float | None = None) -> str:
        """The standard health status: ``"SERVING"``, ``"NOT_SERVING"``, ``"UNKNOWN"``
        or ``"SERVICE_UNKNOWN"``. ``service=""`` is the server as a whole."""
        response = await self._call(
            self._health.Check,
            health_pb2.HealthCheckRequest(service=service),
            resolve_timeout(timeout, self.settings.admin_timeout),
            (),
        )
        return str(health_pb2.HealthCheckResponse.ServingStatus.Name(response.status))

    # -- plumbing -----------------------------------------------------------------------

    async def _admin_call(self, method: str, request: Any, timeout: float | None) -> Any:
        return await self._call(
            getattr(self._admin, method),
            request,
            resolve_timeout(timeout, self.settings.admin_timeout),
            self.settings.admin_metadata(),
        )

    async def _insights_call(self, method: str, request: Any, timeout: float | None) -> Any:
        return await self._call(
            getattr(self._insights, method),
            request,
            resolve_timeout(timeout, _insights.DEFAULT_INSIGHTS_TIMEOUT),
            self.settings.admin_metadata(),
        )

    async def _profile_call(self, method: str, request: Any, timeout: float | None) -> Any:
        return await self._call(
            getattr(self._profile_stub, method),
            request,
            resolve_timeout(timeout, self.settings.admin_timeout),
            self.settings.admin_metadata(),
        )

    @staticmethod
    async def _call(
        stub_method: Any, request: Any, timeout: float, metadata: tuple[tuple[str, str], ...]
    ) -> Any:
        try:
            return await stub_method(request, timeout=timeout, metadata=metadata)
        except grpc.RpcError as e:
            raise map_rpc_error(e) from e
