"""The seeded demo account of the Piggy (Leat) simulator.

Every id a test, a benchmark or sandbox mode needs is a constant here, so nobody copies a uuid by hand.
The shapes follow the reference (docs example contact, automation list example, subscription types).
"""

from __future__ import annotations

from typing import Any

#: the personal access token the demo account accepts unless another one is configured
DEMO_TOKEN = "piggy-demo-personal-access-token-0000000000000000000"  # 53 characters, like a real one
#: OAuth client credentials accepted by ``POST /oauth/token``
DEMO_CLIENT_ID = "demo-client"
DEMO_CLIENT_SECRET = "demo-client-secret"

#: the account's webhook secret: Piggy signs a webhook with it when its subscription has no secret of its own
DEMO_WEBHOOK_SECRET = "piggy-demo-account-webhook-secret"

DEMO_CONTACT_UUID = "9504d4b2-03c5-41d8-8423-4b1821b6aa00"
DEMO_CONTACT_EMAIL = "spongebob@bikinibottom.sea"
DEMO_CONTACT_ID = 21

#: event ``contact_updated`` and active: the only kind the runs endpoint accepts
AUTOMATION_BIRTHDAY_UUID = "5f1c2a9e-8d3b-4c57-9a61-0b7e4d2c1a01"
AUTOMATION_BIRTHDAY_NAME = "Send email on birthday"
#: event ``contact_updated`` but inactive
AUTOMATION_WINBACK_UUID = "5f1c2a9e-8d3b-4c57-9a61-0b7e4d2c1a02"
AUTOMATION_WINBACK_NAME = "Win back lapsed members"
#: event ``credit_reception_created``: cannot be run through the API
AUTOMATION_CREDIT_UUID = "5f1c2a9e-8d3b-4c57-9a61-0b7e4d2c1a03"
AUTOMATION_CREDIT_NAME = "Send mail on first credit reception"
#: event ``physical_reward_reception_created``, inactive
AUTOMATION_REWARD_UUID = "5f1c2a9e-8d3b-4c57-9a61-0b7e4d2c1a04"
AUTOMATION_REWARD_NAME = "Send Reward"

SUBSCRIPTION_FUNCTIONAL_UUID = "0c3f6a10-1d2e-4f5a-8b9c-000000000001"
SUBSCRIPTION_NEWSLETTER_UUID = "0c3f6a10-1d2e-4f5a-8b9c-000000000002"
SUBSCRIPTION_PROMOTIONS_UUID = "0c3f6a10-1d2e-4f5a-8b9c-000000000003"


def _attr(name: str, label: str, type_: str, *, hard: bool = False, soft: bool = False,
          piggy: bool = False, options: list[dict[str, str]] | None = None, description: str = "") -> dict[str, Any]:
    return {
        "name": name, "label": label, "description": description or label, "type": type_, "field_type": type_,
        "is_soft_read_only": soft, "is_hard_read_only": hard, "is_piggy_defined": piggy,
        "options": options or [],
    }


def attributes() -> list[dict[str, Any]]:
    """Contact attribute definitions (``GET contact-attributes``)."""
    return [
        _attr("email", "Email", "email", hard=True, piggy=True),
        _attr("firstname", "First name", "text", piggy=True),
        _attr("lastname", "Last name", "text", piggy=True),
        _attr("birthdate", "Birth date", "birth_date", piggy=True),
        _attr("phone", "Phone number", "phone", piggy=True),
        _attr("zipcode", "Postal code", "text", piggy=True),
        _attr("gender", "Gender", "select", piggy=True,
              options=[{"label": "Male", "value": "male"}, {"label": "Female", "value": "female"},
                       {"label": "Other", "value": "other"}]),
        _attr("housenumber", "House number", "number"),
        _attr("average_spend", "Average spend", "float"),
        _attr("vip", "VIP", "boolean"),
        _attr("member_since", "Member since", "date"),
        _attr("last_visit_at", "Last visit", "date_time"),
        _attr("favourite_shop", "Favourite shop", "select",
              options=[{"label": "Amsterdam", "value": "ams"}, {"label": "Utrecht", "value": "utr"}]),
        _attr("interests", "Interests", "multi_select",
              options=[{"label": "Coffee", "value": "coffee"}, {"label": "Cake", "value": "cake"},
                       {"label": "Tea", "value": "tea"}]),
        _attr("website", "Website", "url"),
        _attr("loyalty_card", "Loyalty card", "identifier", soft=True),
        _attr("created_by_import", "Created by import", "text", hard=True),
    ]


def automations() -> list[dict[str, Any]]:
    """Automations as the list endpoint returns them, plus the ``uuid`` the docs do not show."""
    return [
        {"uuid": AUTOMATION_REWARD_UUID, "event": "physical_reward_reception_created", "name": AUTOMATION_REWARD_NAME,
         "status": "inactive", "created_at": "2022-05-10T12:47:38+00:00", "updated_at": "2022-05-10T12:47:38+00:00"},
        {"uuid": AUTOMATION_BIRTHDAY_UUID, "event": "contact_updated", "name": AUTOMATION_BIRTHDAY_NAME,
         "status": "active", "created_at": "2022-05-11T08:09:37+00:00", "updated_at": "2022-05-11T08:09:37+00:00"},
        {"uuid": AUTOMATION_CREDIT_UUID, "event": "credit_reception_created", "name": AUTOMATION_CREDIT_NAME,
         "status": "active", "created_at": "2022-05-17T10:28:11+00:00", "updated_at": "2022-05-17T10:28:11+00:00"},
        {"uuid": AUTOMATION_WINBACK_UUID, "event": "contact_updated", "name": AUTOMATION_WINBACK_NAME,
         "status": "inactive", "created_at": "2023-01-02T09:00:00+00:00", "updated_at": "2023-01-02T09:00:00+00:00"},
    ]


def subscription_types() -> list[dict[str, Any]]:
    return [
        {"uuid": SUBSCRIPTION_FUNCTIONAL_UUID, "name": "Functional", "description": "Functional emails",
         "active": True, "strategy": "OPT_OUT"},
        {"uuid": SUBSCRIPTION_NEWSLETTER_UUID, "name": "Newsletter", "description": "Monthly newsletter",
         "active": True, "strategy": "OPT_IN"},
        {"uuid": SUBSCRIPTION_PROMOTIONS_UUID, "name": "Promotions", "description": "Offers and promotions",
         "active": True, "strategy": "OPT_IN"},
    ]


def contacts() -> list[dict[str, Any]]:
    """Seed contacts: ``current_values`` by attribute name, ``subscriptions`` by subscription type uuid."""
    return [
        {"id": DEMO_CONTACT_ID, "uuid": DEMO_CONTACT_UUID, "email": DEMO_CONTACT_EMAIL,
         "current_values": {"email": DEMO_CONTACT_EMAIL, "firstname": "Spongebob", "lastname": "Squarepants",
                            "housenumber": 124, "vip": False, "interests": ["coffee"]},
         "subscriptions": {SUBSCRIPTION_FUNCTIONAL_UUID: True, SUBSCRIPTION_NEWSLETTER_UUID: False,
                           SUBSCRIPTION_PROMOTIONS_UUID: False}},
    ]


def demo_contacts() -> list[dict[str, str]]:
    """The seeded contacts as sandbox mode shows them (``GET /sandbox``, docs/sandbox.md): e-mail, externalId (uuid),
    name."""
    return [{"email": c["email"], "externalId": c["uuid"],
             "name": " ".join(p for p in (c["current_values"].get("firstname"), c["current_values"].get("lastname"))
                              if p)}
            for c in contacts()]
