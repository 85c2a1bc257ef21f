import datetime

from google.api import annotations_pb2 as _annotations_pb2
from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.api import field_info_pb2 as _field_info_pb2
from google.protobuf import empty_pb2 as _empty_pb2
from google.protobuf import field_mask_pb2 as _field_mask_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from soulkg.agents.v1 import enums_pb2 as _enums_pb2
from soulkg.crm.v1 import enums_pb2 as _enums_pb2_1
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Client(_message.Message):
    __slots__ = ("id", "phone", "email", "first_name", "last_name", "status", "preferred_language", "cultural_context", "metadata", "assigned_partner_id", "prompt_variant_id", "create_time", "update_time", "etag")
    ID_FIELD_NUMBER: _ClassVar[int]
    PHONE_FIELD_NUMBER: _ClassVar[int]
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    FIRST_NAME_FIELD_NUMBER: _ClassVar[int]
    LAST_NAME_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    PREFERRED_LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    CULTURAL_CONTEXT_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    ASSIGNED_PARTNER_ID_FIELD_NUMBER: _ClassVar[int]
    PROMPT_VARIANT_ID_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    id: str
    phone: str
    email: str
    first_name: str
    last_name: str
    status: _enums_pb2_1.ClientStatus
    preferred_language: str
    cultural_context: _struct_pb2.Struct
    metadata: _struct_pb2.Struct
    assigned_partner_id: str
    prompt_variant_id: str
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    etag: str
    def __init__(self, id: _Optional[str] = ..., phone: _Optional[str] = ..., email: _Optional[str] = ..., first_name: _Optional[str] = ..., last_name: _Optional[str] = ..., status: _Optional[_Union[_enums_pb2_1.ClientStatus, str]] = ..., preferred_language: _Optional[str] = ..., cultural_context: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., metadata: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., assigned_partner_id: _Optional[str] = ..., prompt_variant_id: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., etag: _Optional[str] = ...) -> None: ...

class ClientStatusChange(_message.Message):
    __slots__ = ("id", "client_id", "old_status", "new_status", "changed_by", "changed_by_user_id", "changed_by_agent_type", "reason", "create_time")
    ID_FIELD_NUMBER: _ClassVar[int]
    CLIENT_ID_FIELD_NUMBER: _ClassVar[int]
    OLD_STATUS_FIELD_NUMBER: _ClassVar[int]
    NEW_STATUS_FIELD_NUMBER: _ClassVar[int]
    CHANGED_BY_FIELD_NUMBER: _ClassVar[int]
    CHANGED_BY_USER_ID_FIELD_NUMBER: _ClassVar[int]
    CHANGED_BY_AGENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    id: str
    client_id: str
    old_status: _enums_pb2_1.ClientStatus
    new_status: _enums_pb2_1.ClientStatus
    changed_by: _enums_pb2_1.StatusChangedBy
    changed_by_user_id: str
    changed_by_agent_type: _enums_pb2.AgentType
    reason: str
    create_time: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., client_id: _Optional[str] = ..., old_status: _Optional[_Union[_enums_pb2_1.ClientStatus, str]] = ..., new_status: _Optional[_Union[_enums_pb2_1.ClientStatus, str]] = ..., changed_by: _Optional[_Union[_enums_pb2_1.StatusChangedBy, str]] = ..., changed_by_user_id: _Optional[str] = ..., changed_by_agent_type: _Optional[_Union[_enums_pb2.AgentType, str]] = ..., reason: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CreateClientRequest(_message.Message):
    __slots__ = ("client", "request_id")
    CLIENT_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    client: Client
    request_id: str
    def __init__(self, client: _Optional[_Union[Client, _Mapping]] = ..., request_id: _Optional[str] = ...) -> None: ...

class GetClientRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class ListClientsRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "filter", "order_by")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    ORDER_BY_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    filter: str
    order_by: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., filter: _Optional[str] = ..., order_by: _Optional[str] = ...) -> None: ...

class ListClientsResponse(_message.Message):
    __slots__ = ("clients", "next_page_token")
    CLIENTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    clients: _containers.RepeatedCompositeFieldContainer[Client]
    next_page_token: str
    def __init__(self, clients: _Optional[_Iterable[_Union[Client, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class UpdateClientRequest(_message.Message):
    __slots__ = ("client", "update_mask")
    CLIENT_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    client: Client
    update_mask: _field_mask_pb2.FieldMask
    def __init__(self, client: _Optional[_Union[Client, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ...) -> None: ...

class DeleteClientRequest(_message.Message):
    __slots__ = ("id", "etag")
    ID_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    id: str
    etag: str
    def __init__(self, id: _Optional[str] = ..., etag: _Optional[str] = ...) -> None: ...

class ChangeClientStatusRequest(_message.Message):
    __slots__ = ("id", "status", "reason", "changed_by", "agent_type")
    ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    CHANGED_BY_FIELD_NUMBER: _ClassVar[int]
    AGENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    id: str
    status: _enums_pb2_1.ClientStatus
    reason: str
    changed_by: _enums_pb2_1.StatusChangedBy
    agent_type: _enums_pb2.AgentType
    def __init__(self, id: _Optional[str] = ..., status: _Optional[_Union[_enums_pb2_1.ClientStatus, str]] = ..., reason: _Optional[str] = ..., changed_by: _Optional[_Union[_enums_pb2_1.StatusChangedBy, str]] = ..., agent_type: _Optional[_Union[_enums_pb2.AgentType, str]] = ...) -> None: ...

class ListClientStatusHistoryRequest(_message.Message):
    __slots__ = ("client_id", "page_size", "page_token")
    CLIENT_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    client_id: str
    page_size: int
    page_token: str
    def __init__(self, client_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListClientStatusHistoryResponse(_message.Message):
    __slots__ = ("changes", "next_page_token")
    CHANGES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    changes: _containers.RepeatedCompositeFieldContainer[ClientStatusChange]
    next_page_token: str
    def __init__(self, changes: _Optional[_Iterable[_Union[ClientStatusChange, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class ListClientStatusChangesRequest(_message.Message):
    __slots__ = ("client_ids", "statuses", "since", "page_size", "page_token")
    CLIENT_IDS_FIELD_NUMBER: _ClassVar[int]
    STATUSES_FIELD_NUMBER: _ClassVar[int]
    SINCE_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    client_ids: _containers.RepeatedScalarFieldContainer[str]
    statuses: _containers.RepeatedScalarFieldContainer[_enums_pb2_1.ClientStatus]
    since: _timestamp_pb2.Timestamp
    page_size: int
    page_token: str
    def __init__(self, client_ids: _Optional[_Iterable[str]] = ..., statuses: _Optional[_Iterable[_Union[_enums_pb2_1.ClientStatus, str]]] = ..., since: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListClientStatusChangesResponse(_message.Message):
    __slots__ = ("changes", "next_page_token")
    CHANGES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    changes: _containers.RepeatedCompositeFieldContainer[ClientStatusChange]
    next_page_token: str
    def __init__(self, changes: _Optional[_Iterable[_Union[ClientStatusChange, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class FindClientByPhoneRequest(_message.Message):
    __slots__ = ("phone",)
    PHONE_FIELD_NUMBER: _ClassVar[int]
    phone: str
    def __init__(self, phone: _Optional[str] = ...) -> None: ...

class GetOrCreateClientByPhoneRequest(_message.Message):
    __slots__ = ("phone", "first_name", "last_name", "preferred_language")
    PHONE_FIELD_NUMBER: _ClassVar[int]
    FIRST_NAME_FIELD_NUMBER: _ClassVar[int]
    LAST_NAME_FIELD_NUMBER: _ClassVar[int]
    PREFERRED_LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    phone: str
    first_name: str
    last_name: str
    preferred_language: str
    def __init__(self, phone: _Optional[str] = ..., first_name: _Optional[str] = ..., last_name: _Optional[str] = ..., preferred_language: _Optional[str] = ...) -> None: ...

class GetOrCreateClientByPhoneResponse(_message.Message):
    __slots__ = ("client", "created")
    CLIENT_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    client: Client
    created: bool
    def __init__(self, client: _Optional[_Union[Client, _Mapping]] = ..., created: _Optional[bool] = ...) -> None: ...
