"""The seeded demo account of the Spoki simulator: every id tests and sandbox mode need, as constants."""

from __future__ import annotations

from typing import Any

DEMO_API_KEY = "spoki-demo-api-key"
#: the WhatsApp number of the demo account (the recipient of inbound messages)
ACCOUNT_PHONE = "+390212345678"

CONTACT_MARIO_ID = 1001
CONTACT_MARIO_PHONE = "+393331234567"
CONTACT_MARIO_EMAIL = "mario.rossi@example.it"
CONTACT_GIULIA_ID = 1002
CONTACT_GIULIA_PHONE = "+393339876543"
CONTACT_GIULIA_EMAIL = "giulia.bianchi@example.it"
#: two contacts share this e-mail address (Spoki does not make e-mail unique)
SHARED_EMAIL = "famiglia.verdi@example.it"
CONTACT_VERDI_A_ID = 1003
CONTACT_VERDI_B_ID = 1004

FIELD_ORDER_ID = 332000  # code ORDER_ID, TEXT
FIELD_BIRTHDAY = 332001  # code BIRTHDAY, DATE
FIELD_APPOINTMENT = 332002  # code APPOINTMENT_AT, DATETIME
FIELD_CITY = 332003  # code CITY, TEXT

TAG_VIP_ID = 157794
TAG_NEWSLETTER_ID = 157795
TAG_LEAD_ID = 157796

LIST_CUSTOMERS_ID = 12
LIST_CUSTOMERS_NAME = "Clienti"
LIST_PROSPECTS_ID = 13
LIST_PROSPECTS_NAME = "Prospects"

#: active, API start step, uses ORDER_ID
AUTOMATION_ORDER_ID = 501
AUTOMATION_ORDER_NAME = "Order confirmation"
AUTOMATION_ORDER_UUID = "7d0f5b8e-2c1a-4e9b-9f3d-6a5b4c3d2e01"
AUTOMATION_ORDER_SECRET = "order-start-step-secret"
#: active, API start step, AddTag VIP step
AUTOMATION_TAG_VIP_ID = 502
AUTOMATION_TAG_VIP_NAME = "Tag as VIP"
AUTOMATION_TAG_VIP_UUID = "7d0f5b8e-2c1a-4e9b-9f3d-6a5b4c3d2e02"
AUTOMATION_TAG_VIP_SECRET = "vip-start-step-secret"
#: inactive, API start step
AUTOMATION_SUMMER_ID = 503
AUTOMATION_SUMMER_NAME = "Summer promo"
AUTOMATION_SUMMER_UUID = "7d0f5b8e-2c1a-4e9b-9f3d-6a5b4c3d2e03"
AUTOMATION_SUMMER_SECRET = "summer-start-step-secret"
#: active, started by a customer message: no API start step
AUTOMATION_WELCOME_ID = 504
AUTOMATION_WELCOME_NAME = "Welcome reply"


def custom_fields() -> list[dict[str, Any]]:
    return [
        {"id": FIELD_ORDER_ID, "label": "Order id", "code": "ORDER_ID", "field_type": 1, "example": "42"},
        {"id": FIELD_BIRTHDAY, "label": "Birthday", "code": "BIRTHDAY", "field_type": 2, "example": "1990-05-17"},
        {"id": FIELD_APPOINTMENT, "label": "Appointment", "code": "APPOINTMENT_AT", "field_type": 3,
         "example": "2026-01-10T09:30:00+01:00"},
        {"id": FIELD_CITY, "label": "City", "code": "CITY", "field_type": 1, "example": "Milano"},
    ]


def tags() -> list[dict[str, Any]]:
    return [
        {"id": TAG_VIP_ID, "name": "VIP", "color": "#16d46d", "order": 0},
        {"id": TAG_NEWSLETTER_ID, "name": "Newsletter", "color": "#1677d4", "order": 1},
        {"id": TAG_LEAD_ID, "name": "Lead", "color": "#d49a16", "order": 2},
    ]


def lists() -> list[dict[str, Any]]:
    return [
        {"id": LIST_CUSTOMERS_ID, "name": LIST_CUSTOMERS_NAME, "color": None, "created_datetime": "2025-01-01T10:00:00Z"},
        {"id": LIST_PROSPECTS_ID, "name": LIST_PROSPECTS_NAME, "color": "#aaaaaa",
         "created_datetime": "2025-02-01T10:00:00Z"},
    ]


def contacts() -> list[dict[str, Any]]:
    """``custom``: field id -> value; ``tags`` and ``lists``: ids."""
    base = {"language": "it", "status": "Not Declared", "is_blocked": False, "created_datetime": "2025-01-01T10:00:00Z"}
    return [
        {**base, "id": CONTACT_MARIO_ID, "phone": CONTACT_MARIO_PHONE, "first_name": "Mario", "last_name": "Rossi",
         "email": CONTACT_MARIO_EMAIL, "status": "Subscribed", "custom": {FIELD_ORDER_ID: "42", FIELD_CITY: "Milano"},
         "tags": [TAG_VIP_ID], "lists": [LIST_CUSTOMERS_ID]},
        {**base, "id": CONTACT_GIULIA_ID, "phone": CONTACT_GIULIA_PHONE, "first_name": "Giulia",
         "last_name": "Bianchi", "email": CONTACT_GIULIA_EMAIL, "custom": {}, "tags": [], "lists": []},
        {**base, "id": CONTACT_VERDI_A_ID, "phone": "+393330000001", "first_name": "Anna", "last_name": "Verdi",
         "email": SHARED_EMAIL, "custom": {}, "tags": [], "lists": []},
        {**base, "id": CONTACT_VERDI_B_ID, "phone": "+393330000002", "first_name": "Luca", "last_name": "Verdi",
         "email": SHARED_EMAIL, "custom": {}, "tags": [], "lists": []},
    ]


def automations() -> list[dict[str, Any]]:
    """``webhook_set`` without ``link`` (the simulator adds it from its own host); ``steps`` drive side effects."""
    ts = {"created_datetime": "2025-03-01T10:00:00Z", "updated_datetime": "2025-03-02T10:00:00Z",
          "is_favorite": False, "first_message_text": None}
    return [
        {**ts, "id": AUTOMATION_ORDER_ID, "name": AUTOMATION_ORDER_NAME, "is_active": True,
         "webhook_set": [{"uuid": AUTOMATION_ORDER_UUID, "secret": AUTOMATION_ORDER_SECRET, "is_active": True}],
         "steps": [{"step_type": "TemplateMessage", "template": 9001}], "fields_used": [FIELD_ORDER_ID]},
        {**ts, "id": AUTOMATION_TAG_VIP_ID, "name": AUTOMATION_TAG_VIP_NAME, "is_active": True,
         "webhook_set": [{"uuid": AUTOMATION_TAG_VIP_UUID, "secret": AUTOMATION_TAG_VIP_SECRET, "is_active": True}],
         "steps": [{"step_type": "AddTag", "tags": [TAG_VIP_ID]}], "fields_used": []},
        {**ts, "id": AUTOMATION_SUMMER_ID, "name": AUTOMATION_SUMMER_NAME, "is_active": False,
         "webhook_set": [{"uuid": AUTOMATION_SUMMER_UUID, "secret": AUTOMATION_SUMMER_SECRET, "is_active": True}],
         "steps": [{"step_type": "FreeMessage", "text": "Sun!"}], "fields_used": [FIELD_CITY, FIELD_BIRTHDAY]},
        {**ts, "id": AUTOMATION_WELCOME_ID, "name": AUTOMATION_WELCOME_NAME, "is_active": True,
         "first_message_text": "ciao", "webhook_set": [], "steps": [{"step_type": "FreeMessage", "text": "Hi"}],
         "fields_used": []},
    ]


def demo_contacts() -> list[dict[str, str]]:
    """The seeded contacts as sandbox mode shows them (``GET /sandbox``, docs/sandbox.md): e-mail, externalId (id),
    name."""
    out = []
    for c in contacts():
        item = {"email": c["email"], "externalId": str(c["id"]), "name": f"{c['first_name']} {c['last_name']}"}
        if c["email"] == SHARED_EMAIL:
            item["note"] = "shares its e-mail address with another contact: address it by externalId"
        out.append(item)
    return out
