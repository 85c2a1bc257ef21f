from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from typing import ClassVar as _ClassVar

DESCRIPTOR: _descriptor.FileDescriptor

class ClientStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CLIENT_STATUS_UNSPECIFIED: _ClassVar[ClientStatus]
    CLIENT_STATUS_NEW_LEAD: _ClassVar[ClientStatus]
    CLIENT_STATUS_QUALIFIED: _ClassVar[ClientStatus]
    CLIENT_STATUS_WARMED: _ClassVar[ClientStatus]
    CLIENT_STATUS_PROPOSAL_SENT: _ClassVar[ClientStatus]
    CLIENT_STATUS_NEGOTIATION: _ClassVar[ClientStatus]
    CLIENT_STATUS_SOLD: _ClassVar[ClientStatus]
    CLIENT_STATUS_SERVICE: _ClassVar[ClientStatus]
    CLIENT_STATUS_CLOSED: _ClassVar[ClientStatus]

class StatusChangedBy(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    STATUS_CHANGED_BY_UNSPECIFIED: _ClassVar[StatusChangedBy]
    STATUS_CHANGED_BY_AI: _ClassVar[StatusChangedBy]
    STATUS_CHANGED_BY_HUMAN: _ClassVar[StatusChangedBy]
    STATUS_CHANGED_BY_SYSTEM: _ClassVar[StatusChangedBy]
CLIENT_STATUS_UNSPECIFIED: ClientStatus
CLIENT_STATUS_NEW_LEAD: ClientStatus
CLIENT_STATUS_QUALIFIED: ClientStatus
CLIENT_STATUS_WARMED: ClientStatus
CLIENT_STATUS_PROPOSAL_SENT: ClientStatus
CLIENT_STATUS_NEGOTIATION: ClientStatus
CLIENT_STATUS_SOLD: ClientStatus
CLIENT_STATUS_SERVICE: ClientStatus
CLIENT_STATUS_CLOSED: ClientStatus
STATUS_CHANGED_BY_UNSPECIFIED: StatusChangedBy
STATUS_CHANGED_BY_AI: StatusChangedBy
STATUS_CHANGED_BY_HUMAN: StatusChangedBy
STATUS_CHANGED_BY_SYSTEM: StatusChangedBy
