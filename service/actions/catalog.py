"""The connector's actions, grouped, as the capability list reports them (one source for GetCapabilities,
provider ``unsupported`` maps and the capability table, docs/capabilities.md)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Operation:
    operation_id: str
    category: str


_GROUPS = {
    "connection": ["TestConnection"],
    "contacts": ["ListContactFields", "GetContact", "UpsertContact", "SetContactField", "ClearContactField",
                 "AnonymizeContact"],
    "permissions": ["ListPermissions", "SetPermissions"],
    "automations": ["ListAutomations", "GetAutomationFieldsSchema", "StartAutomation", "StopAutomation",
                    "StopAutomationRuns"],
    "campaigns": ["ListCampaigns", "TriggerCampaign", "StopCampaign"],
    "tags": ["ListTags", "AddTag", "RemoveTag", "SetScore"],
    "audiences": ["ListAudiences", "CreateAudience", "AddToAudience", "RemoveFromAudience"],
    "triggers": ["OnContactAdded", "OnContactChanged", "OnContactBounced", "OnContactUnsubscribed",
                 "OnMailingInteraction", "ListMailings", "OnPlatformEvent", "ListPlatformEvents"],
}

OPERATIONS: tuple[Operation, ...] = tuple(Operation(op, cat) for cat, ops in _GROUPS.items() for op in ops)
OPERATION_IDS = frozenset(o.operation_id for o in OPERATIONS)
