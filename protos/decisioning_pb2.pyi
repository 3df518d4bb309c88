import datetime

from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Reason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    REASON_UNSPECIFIED: _ClassVar[Reason]
    REASON_CAMPAIGN: _ClassVar[Reason]
    REASON_FALLBACK: _ClassVar[Reason]
    REASON_HOLDOUT: _ClassVar[Reason]
    REASON_UNKNOWN_PLACEMENT: _ClassVar[Reason]

class Outcome(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    OUTCOME_UNSPECIFIED: _ClassVar[Outcome]
    OUTCOME_SELECTED: _ClassVar[Outcome]
    OUTCOME_PAUSED: _ClassVar[Outcome]
    OUTCOME_NOT_STARTED: _ClassVar[Outcome]
    OUTCOME_ENDED: _ClassVar[Outcome]
    OUTCOME_AUDIENCE_NOT_MATCHED: _ClassVar[Outcome]
    OUTCOME_EXCLUDED: _ClassVar[Outcome]
    OUTCOME_FILTER_NOT_MATCHED: _ClassVar[Outcome]
    OUTCOME_GROUP_SLOT_TAKEN: _ClassVar[Outcome]
    OUTCOME_TRAFFIC_ALLOCATION: _ClassVar[Outcome]
    OUTCOME_HOLDOUT: _ClassVar[Outcome]
    OUTCOME_LOST_ON_PRIORITY: _ClassVar[Outcome]

class EventType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EVENT_TYPE_UNSPECIFIED: _ClassVar[EventType]
    EVENT_TYPE_SESSION_START: _ClassVar[EventType]
    EVENT_TYPE_PAGE_VIEW: _ClassVar[EventType]
    EVENT_TYPE_PRODUCT_VIEW: _ClassVar[EventType]
    EVENT_TYPE_ADD_TO_CART: _ClassVar[EventType]
    EVENT_TYPE_REMOVE_FROM_CART: _ClassVar[EventType]
    EVENT_TYPE_PURCHASE: _ClassVar[EventType]
    EVENT_TYPE_RETURN: _ClassVar[EventType]
    EVENT_TYPE_CAMPAIGN_IMPRESSION: _ClassVar[EventType]
    EVENT_TYPE_CAMPAIGN_CLICK: _ClassVar[EventType]
    EVENT_TYPE_CAMPAIGN_CONVERSION: _ClassVar[EventType]
    EVENT_TYPE_IDENTIFY: _ClassVar[EventType]
    EVENT_TYPE_CUSTOM: _ClassVar[EventType]

class ReportStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    REPORT_STATUS_UNSPECIFIED: _ClassVar[ReportStatus]
    REPORT_STATUS_OK: _ClassVar[ReportStatus]
    REPORT_STATUS_NOT_ENOUGH_DATA: _ClassVar[ReportStatus]

class ChangeKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CHANGE_KIND_UNSPECIFIED: _ClassVar[ChangeKind]
    CHANGE_KIND_ENTERED: _ClassVar[ChangeKind]
    CHANGE_KIND_LEFT: _ClassVar[ChangeKind]
REASON_UNSPECIFIED: Reason
REASON_CAMPAIGN: Reason
REASON_FALLBACK: Reason
REASON_HOLDOUT: Reason
REASON_UNKNOWN_PLACEMENT: Reason
OUTCOME_UNSPECIFIED: Outcome
OUTCOME_SELECTED: Outcome
OUTCOME_PAUSED: Outcome
OUTCOME_NOT_STARTED: Outcome
OUTCOME_ENDED: Outcome
OUTCOME_AUDIENCE_NOT_MATCHED: Outcome
OUTCOME_EXCLUDED: Outcome
OUTCOME_FILTER_NOT_MATCHED: Outcome
OUTCOME_GROUP_SLOT_TAKEN: Outcome
OUTCOME_TRAFFIC_ALLOCATION: Outcome
OUTCOME_HOLDOUT: Outcome
OUTCOME_LOST_ON_PRIORITY: Outcome
EVENT_TYPE_UNSPECIFIED: EventType
EVENT_TYPE_SESSION_START: EventType
EVENT_TYPE_PAGE_VIEW: EventType
EVENT_TYPE_PRODUCT_VIEW: EventType
EVENT_TYPE_ADD_TO_CART: EventType
EVENT_TYPE_REMOVE_FROM_CART: EventType
EVENT_TYPE_PURCHASE: EventType
EVENT_TYPE_RETURN: EventType
EVENT_TYPE_CAMPAIGN_IMPRESSION: EventType
EVENT_TYPE_CAMPAIGN_CLICK: EventType
EVENT_TYPE_CAMPAIGN_CONVERSION: EventType
EVENT_TYPE_IDENTIFY: EventType
EVENT_TYPE_CUSTOM: EventType
REPORT_STATUS_UNSPECIFIED: ReportStatus
REPORT_STATUS_OK: ReportStatus
REPORT_STATUS_NOT_ENOUGH_DATA: ReportStatus
CHANGE_KIND_UNSPECIFIED: ChangeKind
CHANGE_KIND_ENTERED: ChangeKind
CHANGE_KIND_LEFT: ChangeKind

class DecideRequest(_message.Message):
    __slots__ = ("visitor_id", "placements", "context", "explain", "profile_overrides", "preview", "now")
    VISITOR_ID_FIELD_NUMBER: _ClassVar[int]
    PLACEMENTS_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    EXPLAIN_FIELD_NUMBER: _ClassVar[int]
    PROFILE_OVERRIDES_FIELD_NUMBER: _ClassVar[int]
    PREVIEW_FIELD_NUMBER: _ClassVar[int]
    NOW_FIELD_NUMBER: _ClassVar[int]
    visitor_id: str
    placements: _containers.RepeatedScalarFieldContainer[str]
    context: _struct_pb2.Struct
    explain: bool
    profile_overrides: _struct_pb2.Struct
    preview: bool
    now: _timestamp_pb2.Timestamp
    def __init__(self, visitor_id: _Optional[str] = ..., placements: _Optional[_Iterable[str]] = ..., context: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., explain: _Optional[bool] = ..., profile_overrides: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., preview: _Optional[bool] = ..., now: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class DecideResponse(_message.Message):
    __slots__ = ("decisions", "ruleset_version", "ruleset_hash")
    DECISIONS_FIELD_NUMBER: _ClassVar[int]
    RULESET_VERSION_FIELD_NUMBER: _ClassVar[int]
    RULESET_HASH_FIELD_NUMBER: _ClassVar[int]
    decisions: _containers.RepeatedCompositeFieldContainer[Decision]
    ruleset_version: int
    ruleset_hash: str
    def __init__(self, decisions: _Optional[_Iterable[_Union[Decision, _Mapping]]] = ..., ruleset_version: _Optional[int] = ..., ruleset_hash: _Optional[str] = ...) -> None: ...

class Decision(_message.Message):
    __slots__ = ("placement", "decision_id", "reason", "campaign_id", "variant_id", "control", "content_json", "matched_segments", "explanation")
    PLACEMENT_FIELD_NUMBER: _ClassVar[int]
    DECISION_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    CAMPAIGN_ID_FIELD_NUMBER: _ClassVar[int]
    VARIANT_ID_FIELD_NUMBER: _ClassVar[int]
    CONTROL_FIELD_NUMBER: _ClassVar[int]
    CONTENT_JSON_FIELD_NUMBER: _ClassVar[int]
    MATCHED_SEGMENTS_FIELD_NUMBER: _ClassVar[int]
    EXPLANATION_FIELD_NUMBER: _ClassVar[int]
    placement: str
    decision_id: str
    reason: Reason
    campaign_id: str
    variant_id: str
    control: bool
    content_json: str
    matched_segments: _containers.RepeatedScalarFieldContainer[str]
    explanation: Explanation
    def __init__(self, placement: _Optional[str] = ..., decision_id: _Optional[str] = ..., reason: _Optional[_Union[Reason, str]] = ..., campaign_id: _Optional[str] = ..., variant_id: _Optional[str] = ..., control: _Optional[bool] = ..., content_json: _Optional[str] = ..., matched_segments: _Optional[_Iterable[str]] = ..., explanation: _Optional[_Union[Explanation, _Mapping]] = ...) -> None: ...

class Explanation(_message.Message):
    __slots__ = ("candidates",)
    CANDIDATES_FIELD_NUMBER: _ClassVar[int]
    candidates: _containers.RepeatedCompositeFieldContainer[CandidateTrace]
    def __init__(self, candidates: _Optional[_Iterable[_Union[CandidateTrace, _Mapping]]] = ...) -> None: ...

class CandidateTrace(_message.Message):
    __slots__ = ("campaign_id", "outcome", "detail", "bucket")
    CAMPAIGN_ID_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    campaign_id: str
    outcome: Outcome
    detail: str
    bucket: int
    def __init__(self, campaign_id: _Optional[str] = ..., outcome: _Optional[_Union[Outcome, str]] = ..., detail: _Optional[str] = ..., bucket: _Optional[int] = ...) -> None: ...

class GetVisitorSegmentsRequest(_message.Message):
    __slots__ = ("visitor_id", "context", "profile_overrides")
    VISITOR_ID_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    PROFILE_OVERRIDES_FIELD_NUMBER: _ClassVar[int]
    visitor_id: str
    context: _struct_pb2.Struct
    profile_overrides: _struct_pb2.Struct
    def __init__(self, visitor_id: _Optional[str] = ..., context: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., profile_overrides: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class GetVisitorSegmentsResponse(_message.Message):
    __slots__ = ("segment_ids", "ruleset_version", "ruleset_hash")
    SEGMENT_IDS_FIELD_NUMBER: _ClassVar[int]
    RULESET_VERSION_FIELD_NUMBER: _ClassVar[int]
    RULESET_HASH_FIELD_NUMBER: _ClassVar[int]
    segment_ids: _containers.RepeatedScalarFieldContainer[str]
    ruleset_version: int
    ruleset_hash: str
    def __init__(self, segment_ids: _Optional[_Iterable[str]] = ..., ruleset_version: _Optional[int] = ..., ruleset_hash: _Optional[str] = ...) -> None: ...

class RuleProblem(_message.Message):
    __slots__ = ("path", "message")
    PATH_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    path: str
    message: str
    def __init__(self, path: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class ValidateRulesRequest(_message.Message):
    __slots__ = ("document_json",)
    DOCUMENT_JSON_FIELD_NUMBER: _ClassVar[int]
    document_json: str
    def __init__(self, document_json: _Optional[str] = ...) -> None: ...

class ValidateRulesResponse(_message.Message):
    __slots__ = ("valid", "problems", "content_hash")
    VALID_FIELD_NUMBER: _ClassVar[int]
    PROBLEMS_FIELD_NUMBER: _ClassVar[int]
    CONTENT_HASH_FIELD_NUMBER: _ClassVar[int]
    valid: bool
    problems: _containers.RepeatedCompositeFieldContainer[RuleProblem]
    content_hash: str
    def __init__(self, valid: _Optional[bool] = ..., problems: _Optional[_Iterable[_Union[RuleProblem, _Mapping]]] = ..., content_hash: _Optional[str] = ...) -> None: ...

class PublishRulesRequest(_message.Message):
    __slots__ = ("document_json", "expected_version", "comment")
    DOCUMENT_JSON_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_VERSION_FIELD_NUMBER: _ClassVar[int]
    COMMENT_FIELD_NUMBER: _ClassVar[int]
    document_json: str
    expected_version: int
    comment: str
    def __init__(self, document_json: _Optional[str] = ..., expected_version: _Optional[int] = ..., comment: _Optional[str] = ...) -> None: ...

class PublishRulesResponse(_message.Message):
    __slots__ = ("version",)
    VERSION_FIELD_NUMBER: _ClassVar[int]
    version: RulesVersion
    def __init__(self, version: _Optional[_Union[RulesVersion, _Mapping]] = ...) -> None: ...

class RulesVersion(_message.Message):
    __slots__ = ("version", "content_hash", "created_at", "comment", "author", "restored_from", "active")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    CONTENT_HASH_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    COMMENT_FIELD_NUMBER: _ClassVar[int]
    AUTHOR_FIELD_NUMBER: _ClassVar[int]
    RESTORED_FROM_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_FIELD_NUMBER: _ClassVar[int]
    version: int
    content_hash: str
    created_at: _timestamp_pb2.Timestamp
    comment: str
    author: str
    restored_from: int
    active: bool
    def __init__(self, version: _Optional[int] = ..., content_hash: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., comment: _Optional[str] = ..., author: _Optional[str] = ..., restored_from: _Optional[int] = ..., active: _Optional[bool] = ...) -> None: ...

class GetRulesRequest(_message.Message):
    __slots__ = ("version",)
    VERSION_FIELD_NUMBER: _ClassVar[int]
    version: int
    def __init__(self, version: _Optional[int] = ...) -> None: ...

class GetRulesResponse(_message.Message):
    __slots__ = ("version", "document_json")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_JSON_FIELD_NUMBER: _ClassVar[int]
    version: RulesVersion
    document_json: str
    def __init__(self, version: _Optional[_Union[RulesVersion, _Mapping]] = ..., document_json: _Optional[str] = ...) -> None: ...

class ListVersionsRequest(_message.Message):
    __slots__ = ("limit",)
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    limit: int
    def __init__(self, limit: _Optional[int] = ...) -> None: ...

class ListVersionsResponse(_message.Message):
    __slots__ = ("versions", "active_version")
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_VERSION_FIELD_NUMBER: _ClassVar[int]
    versions: _containers.RepeatedCompositeFieldContainer[RulesVersion]
    active_version: int
    def __init__(self, versions: _Optional[_Iterable[_Union[RulesVersion, _Mapping]]] = ..., active_version: _Optional[int] = ...) -> None: ...

class RollbackRequest(_message.Message):
    __slots__ = ("version", "comment", "expected_version")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    COMMENT_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_VERSION_FIELD_NUMBER: _ClassVar[int]
    version: int
    comment: str
    expected_version: int
    def __init__(self, version: _Optional[int] = ..., comment: _Optional[str] = ..., expected_version: _Optional[int] = ...) -> None: ...

class RollbackResponse(_message.Message):
    __slots__ = ("version",)
    VERSION_FIELD_NUMBER: _ClassVar[int]
    version: RulesVersion
    def __init__(self, version: _Optional[_Union[RulesVersion, _Mapping]] = ...) -> None: ...

class GetStatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetStatusResponse(_message.Message):
    __slots__ = ("active_version", "content_hash", "loaded_at", "store_version", "last_reload_error", "last_reload_error_at", "reload_count", "reload_error_count", "server_version", "activity_backfill")
    ACTIVE_VERSION_FIELD_NUMBER: _ClassVar[int]
    CONTENT_HASH_FIELD_NUMBER: _ClassVar[int]
    LOADED_AT_FIELD_NUMBER: _ClassVar[int]
    STORE_VERSION_FIELD_NUMBER: _ClassVar[int]
    LAST_RELOAD_ERROR_FIELD_NUMBER: _ClassVar[int]
    LAST_RELOAD_ERROR_AT_FIELD_NUMBER: _ClassVar[int]
    RELOAD_COUNT_FIELD_NUMBER: _ClassVar[int]
    RELOAD_ERROR_COUNT_FIELD_NUMBER: _ClassVar[int]
    SERVER_VERSION_FIELD_NUMBER: _ClassVar[int]
    ACTIVITY_BACKFILL_FIELD_NUMBER: _ClassVar[int]
    active_version: int
    content_hash: str
    loaded_at: _timestamp_pb2.Timestamp
    store_version: int
    last_reload_error: str
    last_reload_error_at: _timestamp_pb2.Timestamp
    reload_count: int
    reload_error_count: int
    server_version: str
    activity_backfill: ActivityBackfill
    def __init__(self, active_version: _Optional[int] = ..., content_hash: _Optional[str] = ..., loaded_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., store_version: _Optional[int] = ..., last_reload_error: _Optional[str] = ..., last_reload_error_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., reload_count: _Optional[int] = ..., reload_error_count: _Optional[int] = ..., server_version: _Optional[str] = ..., activity_backfill: _Optional[_Union[ActivityBackfill, _Mapping]] = ...) -> None: ...

class ActivityBackfill(_message.Message):
    __slots__ = ("complete", "pending", "backfilled", "last_error")
    COMPLETE_FIELD_NUMBER: _ClassVar[int]
    PENDING_FIELD_NUMBER: _ClassVar[int]
    BACKFILLED_FIELD_NUMBER: _ClassVar[int]
    LAST_ERROR_FIELD_NUMBER: _ClassVar[int]
    complete: bool
    pending: int
    backfilled: int
    last_error: str
    def __init__(self, complete: _Optional[bool] = ..., pending: _Optional[int] = ..., backfilled: _Optional[int] = ..., last_error: _Optional[str] = ...) -> None: ...

class Event(_message.Message):
    __slots__ = ("event_id", "visitor_id", "type", "timestamp", "session_start", "page_view", "product_view", "cart", "purchase", "order_return", "campaign", "identify", "custom")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    VISITOR_ID_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    SESSION_START_FIELD_NUMBER: _ClassVar[int]
    PAGE_VIEW_FIELD_NUMBER: _ClassVar[int]
    PRODUCT_VIEW_FIELD_NUMBER: _ClassVar[int]
    CART_FIELD_NUMBER: _ClassVar[int]
    PURCHASE_FIELD_NUMBER: _ClassVar[int]
    ORDER_RETURN_FIELD_NUMBER: _ClassVar[int]
    CAMPAIGN_FIELD_NUMBER: _ClassVar[int]
    IDENTIFY_FIELD_NUMBER: _ClassVar[int]
    CUSTOM_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    visitor_id: str
    type: EventType
    timestamp: _timestamp_pb2.Timestamp
    session_start: SessionStart
    page_view: PageView
    product_view: ProductView
    cart: CartChange
    purchase: Purchase
    order_return: OrderReturn
    campaign: CampaignInteraction
    identify: Identify
    custom: Custom
    def __init__(self, event_id: _Optional[str] = ..., visitor_id: _Optional[str] = ..., type: _Optional[_Union[EventType, str]] = ..., timestamp: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., session_start: _Optional[_Union[SessionStart, _Mapping]] = ..., page_view: _Optional[_Union[PageView, _Mapping]] = ..., product_view: _Optional[_Union[ProductView, _Mapping]] = ..., cart: _Optional[_Union[CartChange, _Mapping]] = ..., purchase: _Optional[_Union[Purchase, _Mapping]] = ..., order_return: _Optional[_Union[OrderReturn, _Mapping]] = ..., campaign: _Optional[_Union[CampaignInteraction, _Mapping]] = ..., identify: _Optional[_Union[Identify, _Mapping]] = ..., custom: _Optional[_Union[Custom, _Mapping]] = ...) -> None: ...

class SessionStart(_message.Message):
    __slots__ = ("referrer", "landing_page", "utm_source", "utm_medium", "utm_campaign")
    REFERRER_FIELD_NUMBER: _ClassVar[int]
    LANDING_PAGE_FIELD_NUMBER: _ClassVar[int]
    UTM_SOURCE_FIELD_NUMBER: _ClassVar[int]
    UTM_MEDIUM_FIELD_NUMBER: _ClassVar[int]
    UTM_CAMPAIGN_FIELD_NUMBER: _ClassVar[int]
    referrer: str
    landing_page: str
    utm_source: str
    utm_medium: str
    utm_campaign: str
    def __init__(self, referrer: _Optional[str] = ..., landing_page: _Optional[str] = ..., utm_source: _Optional[str] = ..., utm_medium: _Optional[str] = ..., utm_campaign: _Optional[str] = ...) -> None: ...

class PageView(_message.Message):
    __slots__ = ("url", "title", "referrer", "page_type", "category")
    URL_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    REFERRER_FIELD_NUMBER: _ClassVar[int]
    PAGE_TYPE_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    url: str
    title: str
    referrer: str
    page_type: str
    category: str
    def __init__(self, url: _Optional[str] = ..., title: _Optional[str] = ..., referrer: _Optional[str] = ..., page_type: _Optional[str] = ..., category: _Optional[str] = ...) -> None: ...

class ProductView(_message.Message):
    __slots__ = ("sku", "category", "brand", "price", "on_sale")
    SKU_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    BRAND_FIELD_NUMBER: _ClassVar[int]
    PRICE_FIELD_NUMBER: _ClassVar[int]
    ON_SALE_FIELD_NUMBER: _ClassVar[int]
    sku: str
    category: str
    brand: str
    price: float
    on_sale: bool
    def __init__(self, sku: _Optional[str] = ..., category: _Optional[str] = ..., brand: _Optional[str] = ..., price: _Optional[float] = ..., on_sale: _Optional[bool] = ...) -> None: ...

class CartChange(_message.Message):
    __slots__ = ("sku", "quantity", "price")
    SKU_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    PRICE_FIELD_NUMBER: _ClassVar[int]
    sku: str
    quantity: int
    price: float
    def __init__(self, sku: _Optional[str] = ..., quantity: _Optional[int] = ..., price: _Optional[float] = ...) -> None: ...

class Purchase(_message.Message):
    __slots__ = ("order_id", "value", "currency", "articles")
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    ARTICLES_FIELD_NUMBER: _ClassVar[int]
    order_id: str
    value: float
    currency: str
    articles: int
    def __init__(self, order_id: _Optional[str] = ..., value: _Optional[float] = ..., currency: _Optional[str] = ..., articles: _Optional[int] = ...) -> None: ...

class OrderReturn(_message.Message):
    __slots__ = ("order_id", "articles")
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    ARTICLES_FIELD_NUMBER: _ClassVar[int]
    order_id: str
    articles: int
    def __init__(self, order_id: _Optional[str] = ..., articles: _Optional[int] = ...) -> None: ...

class CampaignInteraction(_message.Message):
    __slots__ = ("decision_id", "campaign", "variant", "value")
    DECISION_ID_FIELD_NUMBER: _ClassVar[int]
    CAMPAIGN_FIELD_NUMBER: _ClassVar[int]
    VARIANT_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    decision_id: str
    campaign: str
    variant: str
    value: float
    def __init__(self, decision_id: _Optional[str] = ..., campaign: _Optional[str] = ..., variant: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...

class Identify(_message.Message):
    __slots__ = ("customer_id",)
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    def __init__(self, customer_id: _Optional[str] = ...) -> None: ...

class Custom(_message.Message):
    __slots__ = ("name", "properties")
    NAME_FIELD_NUMBER: _ClassVar[int]
    PROPERTIES_FIELD_NUMBER: _ClassVar[int]
    name: str
    properties: _struct_pb2.Struct
    def __init__(self, name: _Optional[str] = ..., properties: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class TrackRequest(_message.Message):
    __slots__ = ("events",)
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[Event]
    def __init__(self, events: _Optional[_Iterable[_Union[Event, _Mapping]]] = ...) -> None: ...

class TrackResponse(_message.Message):
    __slots__ = ("accepted", "duplicates")
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    DUPLICATES_FIELD_NUMBER: _ClassVar[int]
    accepted: int
    duplicates: int
    def __init__(self, accepted: _Optional[int] = ..., duplicates: _Optional[int] = ...) -> None: ...

class GetProfileRequest(_message.Message):
    __slots__ = ("visitor_id",)
    VISITOR_ID_FIELD_NUMBER: _ClassVar[int]
    visitor_id: str
    def __init__(self, visitor_id: _Optional[str] = ...) -> None: ...

class GetProfileResponse(_message.Message):
    __slots__ = ("found", "profile_json")
    FOUND_FIELD_NUMBER: _ClassVar[int]
    PROFILE_JSON_FIELD_NUMBER: _ClassVar[int]
    found: bool
    profile_json: str
    def __init__(self, found: _Optional[bool] = ..., profile_json: _Optional[str] = ...) -> None: ...

class SetAttributesRequest(_message.Message):
    __slots__ = ("visitor_id", "attributes")
    VISITOR_ID_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    visitor_id: str
    attributes: _struct_pb2.Struct
    def __init__(self, visitor_id: _Optional[str] = ..., attributes: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class SetAttributesResponse(_message.Message):
    __slots__ = ("profile_json",)
    PROFILE_JSON_FIELD_NUMBER: _ClassVar[int]
    profile_json: str
    def __init__(self, profile_json: _Optional[str] = ...) -> None: ...

class DeleteVisitorRequest(_message.Message):
    __slots__ = ("visitor_id",)
    VISITOR_ID_FIELD_NUMBER: _ClassVar[int]
    visitor_id: str
    def __init__(self, visitor_id: _Optional[str] = ...) -> None: ...

class DeleteVisitorResponse(_message.Message):
    __slots__ = ("deleted",)
    DELETED_FIELD_NUMBER: _ClassVar[int]
    deleted: int
    def __init__(self, deleted: _Optional[int] = ...) -> None: ...

class ExportVisitorRequest(_message.Message):
    __slots__ = ("visitor_id",)
    VISITOR_ID_FIELD_NUMBER: _ClassVar[int]
    visitor_id: str
    def __init__(self, visitor_id: _Optional[str] = ...) -> None: ...

class ExportVisitorResponse(_message.Message):
    __slots__ = ("export_json",)
    EXPORT_JSON_FIELD_NUMBER: _ClassVar[int]
    export_json: str
    def __init__(self, export_json: _Optional[str] = ...) -> None: ...

class Period(_message.Message):
    __slots__ = ("start", "end")
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    start: _timestamp_pb2.Timestamp
    end: _timestamp_pb2.Timestamp
    def __init__(self, start: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Interval(_message.Message):
    __slots__ = ("low", "high")
    LOW_FIELD_NUMBER: _ClassVar[int]
    HIGH_FIELD_NUMBER: _ClassVar[int]
    low: float
    high: float
    def __init__(self, low: _Optional[float] = ..., high: _Optional[float] = ...) -> None: ...

class CampaignReportRequest(_message.Message):
    __slots__ = ("campaign", "period", "by_segment", "baseline", "min_sample", "channel")
    CAMPAIGN_FIELD_NUMBER: _ClassVar[int]
    PERIOD_FIELD_NUMBER: _ClassVar[int]
    BY_SEGMENT_FIELD_NUMBER: _ClassVar[int]
    BASELINE_FIELD_NUMBER: _ClassVar[int]
    MIN_SAMPLE_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    campaign: str
    period: Period
    by_segment: bool
    baseline: str
    min_sample: int
    channel: str
    def __init__(self, campaign: _Optional[str] = ..., period: _Optional[_Union[Period, _Mapping]] = ..., by_segment: _Optional[bool] = ..., baseline: _Optional[str] = ..., min_sample: _Optional[int] = ..., channel: _Optional[str] = ...) -> None: ...

class VariantReport(_message.Message):
    __slots__ = ("variant_id", "control", "weight", "exposed", "clicks", "conversions", "revenue", "ctr", "conversion_rate", "conversion_ci", "revenue_per_visitor", "lift", "lift_ci", "p_value", "prob_beat_control", "enough_data")
    VARIANT_ID_FIELD_NUMBER: _ClassVar[int]
    CONTROL_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    EXPOSED_FIELD_NUMBER: _ClassVar[int]
    CLICKS_FIELD_NUMBER: _ClassVar[int]
    CONVERSIONS_FIELD_NUMBER: _ClassVar[int]
    REVENUE_FIELD_NUMBER: _ClassVar[int]
    CTR_FIELD_NUMBER: _ClassVar[int]
    CONVERSION_RATE_FIELD_NUMBER: _ClassVar[int]
    CONVERSION_CI_FIELD_NUMBER: _ClassVar[int]
    REVENUE_PER_VISITOR_FIELD_NUMBER: _ClassVar[int]
    LIFT_FIELD_NUMBER: _ClassVar[int]
    LIFT_CI_FIELD_NUMBER: _ClassVar[int]
    P_VALUE_FIELD_NUMBER: _ClassVar[int]
    PROB_BEAT_CONTROL_FIELD_NUMBER: _ClassVar[int]
    ENOUGH_DATA_FIELD_NUMBER: _ClassVar[int]
    variant_id: str
    control: bool
    weight: int
    exposed: int
    clicks: int
    conversions: int
    revenue: float
    ctr: float
    conversion_rate: float
    conversion_ci: Interval
    revenue_per_visitor: float
    lift: float
    lift_ci: Interval
    p_value: float
    prob_beat_control: float
    enough_data: bool
    def __init__(self, variant_id: _Optional[str] = ..., control: _Optional[bool] = ..., weight: _Optional[int] = ..., exposed: _Optional[int] = ..., clicks: _Optional[int] = ..., conversions: _Optional[int] = ..., revenue: _Optional[float] = ..., ctr: _Optional[float] = ..., conversion_rate: _Optional[float] = ..., conversion_ci: _Optional[_Union[Interval, _Mapping]] = ..., revenue_per_visitor: _Optional[float] = ..., lift: _Optional[float] = ..., lift_ci: _Optional[_Union[Interval, _Mapping]] = ..., p_value: _Optional[float] = ..., prob_beat_control: _Optional[float] = ..., enough_data: _Optional[bool] = ...) -> None: ...

class SampleRatioCheck(_message.Message):
    __slots__ = ("variant_ids", "expected_shares", "observed", "chi2", "p_value", "mismatch", "expected_weights")
    VARIANT_IDS_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_SHARES_FIELD_NUMBER: _ClassVar[int]
    OBSERVED_FIELD_NUMBER: _ClassVar[int]
    CHI2_FIELD_NUMBER: _ClassVar[int]
    P_VALUE_FIELD_NUMBER: _ClassVar[int]
    MISMATCH_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_WEIGHTS_FIELD_NUMBER: _ClassVar[int]
    variant_ids: _containers.RepeatedScalarFieldContainer[str]
    expected_shares: _containers.RepeatedScalarFieldContainer[float]
    observed: _containers.RepeatedScalarFieldContainer[int]
    chi2: float
    p_value: float
    mismatch: bool
    expected_weights: str
    def __init__(self, variant_ids: _Optional[_Iterable[str]] = ..., expected_shares: _Optional[_Iterable[float]] = ..., observed: _Optional[_Iterable[int]] = ..., chi2: _Optional[float] = ..., p_value: _Optional[float] = ..., mismatch: _Optional[bool] = ..., expected_weights: _Optional[str] = ...) -> None: ...

class SegmentBreakdown(_message.Message):
    __slots__ = ("segment_id", "variants")
    SEGMENT_ID_FIELD_NUMBER: _ClassVar[int]
    VARIANTS_FIELD_NUMBER: _ClassVar[int]
    segment_id: str
    variants: _containers.RepeatedCompositeFieldContainer[VariantReport]
    def __init__(self, segment_id: _Optional[str] = ..., variants: _Optional[_Iterable[_Union[VariantReport, _Mapping]]] = ...) -> None: ...

class CampaignReportResponse(_message.Message):
    __slots__ = ("campaign", "period", "status", "min_sample", "variants", "srm", "by_segment", "segmented", "attribution_window_days", "ruleset_version")
    CAMPAIGN_FIELD_NUMBER: _ClassVar[int]
    PERIOD_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    MIN_SAMPLE_FIELD_NUMBER: _ClassVar[int]
    VARIANTS_FIELD_NUMBER: _ClassVar[int]
    SRM_FIELD_NUMBER: _ClassVar[int]
    BY_SEGMENT_FIELD_NUMBER: _ClassVar[int]
    SEGMENTED_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTION_WINDOW_DAYS_FIELD_NUMBER: _ClassVar[int]
    RULESET_VERSION_FIELD_NUMBER: _ClassVar[int]
    campaign: str
    period: Period
    status: ReportStatus
    min_sample: int
    variants: _containers.RepeatedCompositeFieldContainer[VariantReport]
    srm: SampleRatioCheck
    by_segment: _containers.RepeatedCompositeFieldContainer[SegmentBreakdown]
    segmented: bool
    attribution_window_days: float
    ruleset_version: int
    def __init__(self, campaign: _Optional[str] = ..., period: _Optional[_Union[Period, _Mapping]] = ..., status: _Optional[_Union[ReportStatus, str]] = ..., min_sample: _Optional[int] = ..., variants: _Optional[_Iterable[_Union[VariantReport, _Mapping]]] = ..., srm: _Optional[_Union[SampleRatioCheck, _Mapping]] = ..., by_segment: _Optional[_Iterable[_Union[SegmentBreakdown, _Mapping]]] = ..., segmented: _Optional[bool] = ..., attribution_window_days: _Optional[float] = ..., ruleset_version: _Optional[int] = ...) -> None: ...

class SegmentReportRequest(_message.Message):
    __slots__ = ("segments", "period")
    SEGMENTS_FIELD_NUMBER: _ClassVar[int]
    PERIOD_FIELD_NUMBER: _ClassVar[int]
    segments: _containers.RepeatedScalarFieldContainer[str]
    period: Period
    def __init__(self, segments: _Optional[_Iterable[str]] = ..., period: _Optional[_Union[Period, _Mapping]] = ...) -> None: ...

class DailySize(_message.Message):
    __slots__ = ("day", "size")
    DAY_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    day: str
    size: int
    def __init__(self, day: _Optional[str] = ..., size: _Optional[int] = ...) -> None: ...

class SegmentStats(_message.Message):
    __slots__ = ("segment_id", "size_now", "sizes_over_time", "exposures", "conversion_rate", "revenue_per_visitor", "engagement")
    SEGMENT_ID_FIELD_NUMBER: _ClassVar[int]
    SIZE_NOW_FIELD_NUMBER: _ClassVar[int]
    SIZES_OVER_TIME_FIELD_NUMBER: _ClassVar[int]
    EXPOSURES_FIELD_NUMBER: _ClassVar[int]
    CONVERSION_RATE_FIELD_NUMBER: _ClassVar[int]
    REVENUE_PER_VISITOR_FIELD_NUMBER: _ClassVar[int]
    ENGAGEMENT_FIELD_NUMBER: _ClassVar[int]
    segment_id: str
    size_now: int
    sizes_over_time: _containers.RepeatedCompositeFieldContainer[DailySize]
    exposures: int
    conversion_rate: float
    revenue_per_visitor: float
    engagement: SegmentEngagement
    def __init__(self, segment_id: _Optional[str] = ..., size_now: _Optional[int] = ..., sizes_over_time: _Optional[_Iterable[_Union[DailySize, _Mapping]]] = ..., exposures: _Optional[int] = ..., conversion_rate: _Optional[float] = ..., revenue_per_visitor: _Optional[float] = ..., engagement: _Optional[_Union[SegmentEngagement, _Mapping]] = ...) -> None: ...

class SegmentEngagement(_message.Message):
    __slots__ = ("members", "sessions", "page_views", "time_on_site", "sessions_per_member", "pages_per_session", "time_on_site_per_member")
    MEMBERS_FIELD_NUMBER: _ClassVar[int]
    SESSIONS_FIELD_NUMBER: _ClassVar[int]
    PAGE_VIEWS_FIELD_NUMBER: _ClassVar[int]
    TIME_ON_SITE_FIELD_NUMBER: _ClassVar[int]
    SESSIONS_PER_MEMBER_FIELD_NUMBER: _ClassVar[int]
    PAGES_PER_SESSION_FIELD_NUMBER: _ClassVar[int]
    TIME_ON_SITE_PER_MEMBER_FIELD_NUMBER: _ClassVar[int]
    members: int
    sessions: int
    page_views: int
    time_on_site: float
    sessions_per_member: float
    pages_per_session: float
    time_on_site_per_member: float
    def __init__(self, members: _Optional[int] = ..., sessions: _Optional[int] = ..., page_views: _Optional[int] = ..., time_on_site: _Optional[float] = ..., sessions_per_member: _Optional[float] = ..., pages_per_session: _Optional[float] = ..., time_on_site_per_member: _Optional[float] = ...) -> None: ...

class OverlapRow(_message.Message):
    __slots__ = ("visitors",)
    VISITORS_FIELD_NUMBER: _ClassVar[int]
    visitors: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, visitors: _Optional[_Iterable[int]] = ...) -> None: ...

class Journey(_message.Message):
    __slots__ = ("from_segment", "to_segment", "visitors")
    FROM_SEGMENT_FIELD_NUMBER: _ClassVar[int]
    TO_SEGMENT_FIELD_NUMBER: _ClassVar[int]
    VISITORS_FIELD_NUMBER: _ClassVar[int]
    from_segment: str
    to_segment: str
    visitors: int
    def __init__(self, from_segment: _Optional[str] = ..., to_segment: _Optional[str] = ..., visitors: _Optional[int] = ...) -> None: ...

class SegmentReportResponse(_message.Message):
    __slots__ = ("period", "segments", "overlap", "journeys", "profiles", "ruleset_version")
    PERIOD_FIELD_NUMBER: _ClassVar[int]
    SEGMENTS_FIELD_NUMBER: _ClassVar[int]
    OVERLAP_FIELD_NUMBER: _ClassVar[int]
    JOURNEYS_FIELD_NUMBER: _ClassVar[int]
    PROFILES_FIELD_NUMBER: _ClassVar[int]
    RULESET_VERSION_FIELD_NUMBER: _ClassVar[int]
    period: Period
    segments: _containers.RepeatedCompositeFieldContainer[SegmentStats]
    overlap: _containers.RepeatedCompositeFieldContainer[OverlapRow]
    journeys: _containers.RepeatedCompositeFieldContainer[Journey]
    profiles: int
    ruleset_version: int
    def __init__(self, period: _Optional[_Union[Period, _Mapping]] = ..., segments: _Optional[_Iterable[_Union[SegmentStats, _Mapping]]] = ..., overlap: _Optional[_Iterable[_Union[OverlapRow, _Mapping]]] = ..., journeys: _Optional[_Iterable[_Union[Journey, _Mapping]]] = ..., profiles: _Optional[int] = ..., ruleset_version: _Optional[int] = ...) -> None: ...

class EstimateSegmentRequest(_message.Message):
    __slots__ = ("filter_json", "sample_size")
    FILTER_JSON_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_SIZE_FIELD_NUMBER: _ClassVar[int]
    filter_json: str
    sample_size: int
    def __init__(self, filter_json: _Optional[str] = ..., sample_size: _Optional[int] = ...) -> None: ...

class SegmentOverlap(_message.Message):
    __slots__ = ("segment_id", "segment_size", "both", "jaccard")
    SEGMENT_ID_FIELD_NUMBER: _ClassVar[int]
    SEGMENT_SIZE_FIELD_NUMBER: _ClassVar[int]
    BOTH_FIELD_NUMBER: _ClassVar[int]
    JACCARD_FIELD_NUMBER: _ClassVar[int]
    segment_id: str
    segment_size: int
    both: int
    jaccard: float
    def __init__(self, segment_id: _Optional[str] = ..., segment_size: _Optional[int] = ..., both: _Optional[int] = ..., jaccard: _Optional[float] = ...) -> None: ...

class EstimateSegmentResponse(_message.Message):
    __slots__ = ("matching", "profiles", "sample_ids", "overlaps", "ruleset_version", "segment_sizes_at")
    MATCHING_FIELD_NUMBER: _ClassVar[int]
    PROFILES_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_IDS_FIELD_NUMBER: _ClassVar[int]
    OVERLAPS_FIELD_NUMBER: _ClassVar[int]
    RULESET_VERSION_FIELD_NUMBER: _ClassVar[int]
    SEGMENT_SIZES_AT_FIELD_NUMBER: _ClassVar[int]
    matching: int
    profiles: int
    sample_ids: _containers.RepeatedScalarFieldContainer[str]
    overlaps: _containers.RepeatedCompositeFieldContainer[SegmentOverlap]
    ruleset_version: int
    segment_sizes_at: _timestamp_pb2.Timestamp
    def __init__(self, matching: _Optional[int] = ..., profiles: _Optional[int] = ..., sample_ids: _Optional[_Iterable[str]] = ..., overlaps: _Optional[_Iterable[_Union[SegmentOverlap, _Mapping]]] = ..., ruleset_version: _Optional[int] = ..., segment_sizes_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ExportSegmentRequest(_message.Message):
    __slots__ = ("segment", "page_size")
    SEGMENT_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    segment: str
    page_size: int
    def __init__(self, segment: _Optional[str] = ..., page_size: _Optional[int] = ...) -> None: ...

class ExportSegmentResponse(_message.Message):
    __slots__ = ("visitor_ids",)
    VISITOR_IDS_FIELD_NUMBER: _ClassVar[int]
    visitor_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, visitor_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class VisitorIds(_message.Message):
    __slots__ = ("ids",)
    IDS_FIELD_NUMBER: _ClassVar[int]
    ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, ids: _Optional[_Iterable[str]] = ...) -> None: ...

class DecideBatchRequest(_message.Message):
    __slots__ = ("placements", "segment", "visitor_ids", "context", "now", "record", "channel", "send_id", "start_after", "page_size")
    PLACEMENTS_FIELD_NUMBER: _ClassVar[int]
    SEGMENT_FIELD_NUMBER: _ClassVar[int]
    VISITOR_IDS_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    NOW_FIELD_NUMBER: _ClassVar[int]
    RECORD_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    SEND_ID_FIELD_NUMBER: _ClassVar[int]
    START_AFTER_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    placements: _containers.RepeatedScalarFieldContainer[str]
    segment: str
    visitor_ids: VisitorIds
    context: _struct_pb2.Struct
    now: _timestamp_pb2.Timestamp
    record: bool
    channel: str
    send_id: str
    start_after: str
    page_size: int
    def __init__(self, placements: _Optional[_Iterable[str]] = ..., segment: _Optional[str] = ..., visitor_ids: _Optional[_Union[VisitorIds, _Mapping]] = ..., context: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., now: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., record: _Optional[bool] = ..., channel: _Optional[str] = ..., send_id: _Optional[str] = ..., start_after: _Optional[str] = ..., page_size: _Optional[int] = ...) -> None: ...

class PlacementFields(_message.Message):
    __slots__ = ("placement", "content_fields")
    PLACEMENT_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELDS_FIELD_NUMBER: _ClassVar[int]
    placement: str
    content_fields: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, placement: _Optional[str] = ..., content_fields: _Optional[_Iterable[str]] = ...) -> None: ...

class BatchHeader(_message.Message):
    __slots__ = ("ruleset_version", "ruleset_hash", "now", "recorded", "channel", "send_id", "fields")
    RULESET_VERSION_FIELD_NUMBER: _ClassVar[int]
    RULESET_HASH_FIELD_NUMBER: _ClassVar[int]
    NOW_FIELD_NUMBER: _ClassVar[int]
    RECORDED_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    SEND_ID_FIELD_NUMBER: _ClassVar[int]
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    ruleset_version: int
    ruleset_hash: str
    now: _timestamp_pb2.Timestamp
    recorded: bool
    channel: str
    send_id: str
    fields: _containers.RepeatedCompositeFieldContainer[PlacementFields]
    def __init__(self, ruleset_version: _Optional[int] = ..., ruleset_hash: _Optional[str] = ..., now: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., recorded: _Optional[bool] = ..., channel: _Optional[str] = ..., send_id: _Optional[str] = ..., fields: _Optional[_Iterable[_Union[PlacementFields, _Mapping]]] = ...) -> None: ...

class BatchRow(_message.Message):
    __slots__ = ("visitor_id", "canonical_id", "known", "decisions")
    VISITOR_ID_FIELD_NUMBER: _ClassVar[int]
    CANONICAL_ID_FIELD_NUMBER: _ClassVar[int]
    KNOWN_FIELD_NUMBER: _ClassVar[int]
    DECISIONS_FIELD_NUMBER: _ClassVar[int]
    visitor_id: str
    canonical_id: str
    known: bool
    decisions: _containers.RepeatedCompositeFieldContainer[Decision]
    def __init__(self, visitor_id: _Optional[str] = ..., canonical_id: _Optional[str] = ..., known: _Optional[bool] = ..., decisions: _Optional[_Iterable[_Union[Decision, _Mapping]]] = ...) -> None: ...

class BatchSummary(_message.Message):
    __slots__ = ("visitors", "exposures", "complete", "next_start_after")
    VISITORS_FIELD_NUMBER: _ClassVar[int]
    EXPOSURES_FIELD_NUMBER: _ClassVar[int]
    COMPLETE_FIELD_NUMBER: _ClassVar[int]
    NEXT_START_AFTER_FIELD_NUMBER: _ClassVar[int]
    visitors: int
    exposures: int
    complete: bool
    next_start_after: str
    def __init__(self, visitors: _Optional[int] = ..., exposures: _Optional[int] = ..., complete: _Optional[bool] = ..., next_start_after: _Optional[str] = ...) -> None: ...

class DecideBatchResponse(_message.Message):
    __slots__ = ("header", "rows", "summary")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    header: BatchHeader
    rows: _containers.RepeatedCompositeFieldContainer[BatchRow]
    summary: BatchSummary
    def __init__(self, header: _Optional[_Union[BatchHeader, _Mapping]] = ..., rows: _Optional[_Iterable[_Union[BatchRow, _Mapping]]] = ..., summary: _Optional[_Union[BatchSummary, _Mapping]] = ...) -> None: ...

class WatchSegmentChangesRequest(_message.Message):
    __slots__ = ("segments", "resume_token", "from_start")
    SEGMENTS_FIELD_NUMBER: _ClassVar[int]
    RESUME_TOKEN_FIELD_NUMBER: _ClassVar[int]
    FROM_START_FIELD_NUMBER: _ClassVar[int]
    segments: _containers.RepeatedScalarFieldContainer[str]
    resume_token: str
    from_start: bool
    def __init__(self, segments: _Optional[_Iterable[str]] = ..., resume_token: _Optional[str] = ..., from_start: _Optional[bool] = ...) -> None: ...

class SegmentChange(_message.Message):
    __slots__ = ("seq", "visitor_id", "segment", "kind", "at", "reason", "merged_into")
    SEQ_FIELD_NUMBER: _ClassVar[int]
    VISITOR_ID_FIELD_NUMBER: _ClassVar[int]
    SEGMENT_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    MERGED_INTO_FIELD_NUMBER: _ClassVar[int]
    seq: int
    visitor_id: str
    segment: str
    kind: ChangeKind
    at: _timestamp_pb2.Timestamp
    reason: str
    merged_into: str
    def __init__(self, seq: _Optional[int] = ..., visitor_id: _Optional[str] = ..., segment: _Optional[str] = ..., kind: _Optional[_Union[ChangeKind, str]] = ..., at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., reason: _Optional[str] = ..., merged_into: _Optional[str] = ...) -> None: ...

class SegmentChanges(_message.Message):
    __slots__ = ("changes", "resume_token")
    CHANGES_FIELD_NUMBER: _ClassVar[int]
    RESUME_TOKEN_FIELD_NUMBER: _ClassVar[int]
    changes: _containers.RepeatedCompositeFieldContainer[SegmentChange]
    resume_token: str
    def __init__(self, changes: _Optional[_Iterable[_Union[SegmentChange, _Mapping]]] = ..., resume_token: _Optional[str] = ...) -> None: ...

class ListWebhookDeliveriesRequest(_message.Message):
    __slots__ = ("webhook", "status", "limit")
    WEBHOOK_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    webhook: str
    status: str
    limit: int
    def __init__(self, webhook: _Optional[str] = ..., status: _Optional[str] = ..., limit: _Optional[int] = ...) -> None: ...

class WebhookDelivery(_message.Message):
    __slots__ = ("delivery_id", "webhook", "url", "first_seq", "last_seq", "changes", "attempts", "status", "http_status", "error", "created_at", "updated_at")
    DELIVERY_ID_FIELD_NUMBER: _ClassVar[int]
    WEBHOOK_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    FIRST_SEQ_FIELD_NUMBER: _ClassVar[int]
    LAST_SEQ_FIELD_NUMBER: _ClassVar[int]
    CHANGES_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    HTTP_STATUS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    delivery_id: str
    webhook: str
    url: str
    first_seq: int
    last_seq: int
    changes: int
    attempts: int
    status: str
    http_status: int
    error: str
    created_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    def __init__(self, delivery_id: _Optional[str] = ..., webhook: _Optional[str] = ..., url: _Optional[str] = ..., first_seq: _Optional[int] = ..., last_seq: _Optional[int] = ..., changes: _Optional[int] = ..., attempts: _Optional[int] = ..., status: _Optional[str] = ..., http_status: _Optional[int] = ..., error: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListWebhookDeliveriesResponse(_message.Message):
    __slots__ = ("deliveries",)
    DELIVERIES_FIELD_NUMBER: _ClassVar[int]
    deliveries: _containers.RepeatedCompositeFieldContainer[WebhookDelivery]
    def __init__(self, deliveries: _Optional[_Iterable[_Union[WebhookDelivery, _Mapping]]] = ...) -> None: ...

class RedeliverWebhookRequest(_message.Message):
    __slots__ = ("delivery_id",)
    DELIVERY_ID_FIELD_NUMBER: _ClassVar[int]
    delivery_id: str
    def __init__(self, delivery_id: _Optional[str] = ...) -> None: ...

class RedeliverWebhookResponse(_message.Message):
    __slots__ = ("delivery",)
    DELIVERY_FIELD_NUMBER: _ClassVar[int]
    delivery: WebhookDelivery
    def __init__(self, delivery: _Optional[_Union[WebhookDelivery, _Mapping]] = ...) -> None: ...
