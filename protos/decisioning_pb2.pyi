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

class DecideRequest(_message.Message):
    __slots__ = ("visitor_id", "placements", "context", "explain", "profile_overrides")
    VISITOR_ID_FIELD_NUMBER: _ClassVar[int]
    PLACEMENTS_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    EXPLAIN_FIELD_NUMBER: _ClassVar[int]
    PROFILE_OVERRIDES_FIELD_NUMBER: _ClassVar[int]
    visitor_id: str
    placements: _containers.RepeatedScalarFieldContainer[str]
    context: _struct_pb2.Struct
    explain: bool
    profile_overrides: _struct_pb2.Struct
    def __init__(self, visitor_id: _Optional[str] = ..., placements: _Optional[_Iterable[str]] = ..., context: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., explain: _Optional[bool] = ..., profile_overrides: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

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
    __slots__ = ("active_version", "content_hash", "loaded_at", "store_version", "last_reload_error", "last_reload_error_at", "reload_count", "reload_error_count", "server_version")
    ACTIVE_VERSION_FIELD_NUMBER: _ClassVar[int]
    CONTENT_HASH_FIELD_NUMBER: _ClassVar[int]
    LOADED_AT_FIELD_NUMBER: _ClassVar[int]
    STORE_VERSION_FIELD_NUMBER: _ClassVar[int]
    LAST_RELOAD_ERROR_FIELD_NUMBER: _ClassVar[int]
    LAST_RELOAD_ERROR_AT_FIELD_NUMBER: _ClassVar[int]
    RELOAD_COUNT_FIELD_NUMBER: _ClassVar[int]
    RELOAD_ERROR_COUNT_FIELD_NUMBER: _ClassVar[int]
    SERVER_VERSION_FIELD_NUMBER: _ClassVar[int]
    active_version: int
    content_hash: str
    loaded_at: _timestamp_pb2.Timestamp
    store_version: int
    last_reload_error: str
    last_reload_error_at: _timestamp_pb2.Timestamp
    reload_count: int
    reload_error_count: int
    server_version: str
    def __init__(self, active_version: _Optional[int] = ..., content_hash: _Optional[str] = ..., loaded_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., store_version: _Optional[int] = ..., last_reload_error: _Optional[str] = ..., last_reload_error_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., reload_count: _Optional[int] = ..., reload_error_count: _Optional[int] = ..., server_version: _Optional[str] = ...) -> None: ...
