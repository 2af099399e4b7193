"""The second demo account of the Piggy (Leat) simulator ("Second loyalty"): other contacts and automations than
:mod:`.demo` (same attribute definitions and subscription types), so that a test sees which account answered.
Same functions as :mod:`.demo`; pass the module as ``PiggySimulator(demo_data=...)``."""

from __future__ import annotations

from typing import Any

from service.sandbox.piggy.demo import (
    DEMO_WEBHOOK_SECRET,
    SUBSCRIPTION_FUNCTIONAL_UUID,
    SUBSCRIPTION_NEWSLETTER_UUID,
    SUBSCRIPTION_PROMOTIONS_UUID,
    attributes,
    subscription_types,
)

__all__ = ["DEMO_WEBHOOK_SECRET", "attributes", "automations", "contacts", "demo_contacts", "subscription_types"]

CONTACT_PATRICK_UUID = "7a15e3c4-15d7-4e2a-9b3c-5d2933c8bb01"
CONTACT_PATRICK_EMAIL = "patrick@second-loyalty.example"
CONTACT_SANDY_UUID = "7a15e3c4-15d7-4e2a-9b3c-5d2933c8bb02"
CONTACT_SANDY_EMAIL = "sandy@second-loyalty.example"

#: event ``contact_updated`` and active
AUTOMATION_STAMP_UUID = "8e2d3b4a-1c5f-4a68-9b72-2c8f5e3d2b01"
AUTOMATION_STAMP_NAME = "Stamp card reminder"
#: event ``contact_updated``, inactive
AUTOMATION_ANNIVERSARY_UUID = "8e2d3b4a-1c5f-4a68-9b72-2c8f5e3d2b02"
AUTOMATION_ANNIVERSARY_NAME = "Membership anniversary"


def automations() -> list[dict[str, Any]]:
    return [
        {"uuid": AUTOMATION_STAMP_UUID, "event": "contact_updated", "name": AUTOMATION_STAMP_NAME,
         "status": "active", "created_at": "2024-02-01T08:00:00+00:00", "updated_at": "2024-02-01T08:00:00+00:00"},
        {"uuid": AUTOMATION_ANNIVERSARY_UUID, "event": "contact_updated", "name": AUTOMATION_ANNIVERSARY_NAME,
         "status": "inactive", "created_at": "2024-03-01T08:00:00+00:00", "updated_at": "2024-03-01T08:00:00+00:00"},
    ]


def contacts() -> list[dict[str, Any]]:
    return [
        {"id": 31, "uuid": CONTACT_PATRICK_UUID, "email": CONTACT_PATRICK_EMAIL,
         "current_values": {"email": CONTACT_PATRICK_EMAIL, "firstname": "Patrick", "lastname": "Star", "vip": True},
         "subscriptions": {SUBSCRIPTION_FUNCTIONAL_UUID: True, SUBSCRIPTION_NEWSLETTER_UUID: True,
                           SUBSCRIPTION_PROMOTIONS_UUID: False}},
        {"id": 32, "uuid": CONTACT_SANDY_UUID, "email": CONTACT_SANDY_EMAIL,
         "current_values": {"email": CONTACT_SANDY_EMAIL, "firstname": "Sandy", "lastname": "Cheeks",
                            "interests": ["tea"]},
         "subscriptions": {SUBSCRIPTION_FUNCTIONAL_UUID: True, SUBSCRIPTION_NEWSLETTER_UUID: False,
                           SUBSCRIPTION_PROMOTIONS_UUID: True}},
    ]


def demo_contacts() -> list[dict[str, str]]:
    return [{"email": c["email"], "externalId": c["uuid"],
             "name": f"{c['current_values']['firstname']} {c['current_values']['lastname']}"} for c in contacts()]
