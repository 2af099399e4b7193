"""The second demo account of the Spoki simulator ("Second studio"): other contacts, tags, lists and automations
than :mod:`.demo` (same custom fields), so that a test sees which account answered. Same functions as
:mod:`.demo`; pass the module as ``SpokiSimulator(demo_data=...)``."""

from __future__ import annotations

from typing import Any

from service.sandbox.spoki.demo import FIELD_CITY, FIELD_ORDER_ID, custom_fields

__all__ = ["ACCOUNT_PHONE", "automations", "contacts", "custom_fields", "demo_contacts", "lists", "tags"]

ACCOUNT_PHONE = "+390611122233"

CONTACT_SOFIA_ID = 1101
CONTACT_SOFIA_PHONE = "+393471112222"
CONTACT_SOFIA_EMAIL = "sofia.ricci@second-studio.example"
CONTACT_MARCO_ID = 1102
CONTACT_MARCO_PHONE = "+393473334444"
CONTACT_MARCO_EMAIL = "marco.conti@second-studio.example"

TAG_MEMBER_ID = 158801
TAG_TRIAL_ID = 158802
LIST_STUDENTS_ID = 21
LIST_STUDENTS_NAME = "Studenti"

#: active, API start step
AUTOMATION_LESSON_ID = 601
AUTOMATION_LESSON_NAME = "Lesson reminder"
AUTOMATION_LESSON_UUID = "9e1f6c9f-3d2b-4fac-8a4e-7b6c5d4e3f01"
AUTOMATION_LESSON_SECRET = "lesson-start-step-secret"


def tags() -> list[dict[str, Any]]:
    return [
        {"id": TAG_MEMBER_ID, "name": "Member", "color": "#16d46d", "order": 0},
        {"id": TAG_TRIAL_ID, "name": "Trial", "color": "#d49a16", "order": 1},
    ]


def lists() -> list[dict[str, Any]]:
    return [{"id": LIST_STUDENTS_ID, "name": LIST_STUDENTS_NAME, "color": None,
             "created_datetime": "2025-04-01T10:00:00Z"}]


def contacts() -> list[dict[str, Any]]:
    base = {"language": "it", "status": "Not Declared", "is_blocked": False, "created_datetime": "2025-04-01T10:00:00Z"}
    return [
        {**base, "id": CONTACT_SOFIA_ID, "phone": CONTACT_SOFIA_PHONE, "first_name": "Sofia", "last_name": "Ricci",
         "email": CONTACT_SOFIA_EMAIL, "status": "Subscribed", "custom": {FIELD_CITY: "Roma"},
         "tags": [TAG_MEMBER_ID], "lists": [LIST_STUDENTS_ID]},
        {**base, "id": CONTACT_MARCO_ID, "phone": CONTACT_MARCO_PHONE, "first_name": "Marco", "last_name": "Conti",
         "email": CONTACT_MARCO_EMAIL, "custom": {}, "tags": [TAG_TRIAL_ID], "lists": []},
    ]


def automations() -> list[dict[str, Any]]:
    ts = {"created_datetime": "2025-04-02T10:00:00Z", "updated_datetime": "2025-04-02T10:00:00Z",
          "is_favorite": False, "first_message_text": None}
    return [
        {**ts, "id": AUTOMATION_LESSON_ID, "name": AUTOMATION_LESSON_NAME, "is_active": True,
         "webhook_set": [{"uuid": AUTOMATION_LESSON_UUID, "secret": AUTOMATION_LESSON_SECRET, "is_active": True}],
         "steps": [{"step_type": "TemplateMessage", "template": 9101}], "fields_used": [FIELD_ORDER_ID]},
    ]


def demo_contacts() -> list[dict[str, str]]:
    return [{"email": c["email"], "externalId": str(c["id"]), "name": f"{c['first_name']} {c['last_name']}"}
            for c in contacts()]
