"""The seeded demo account of the Spotler simulator, with its ids as constants.

Tests and sandbox mode use ``DEMO`` instead of hard-coding ids, e.g. ``DEMO.automations["welcome"]`` is the
external trigger code that StartAutomation takes. Ids are fixed (not random) so that every process that
imports this module agrees with the one simulator process of a sandbox deployment.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

SANDBOX_CONSUMER_KEY = "sandbox-consumer-key"
SANDBOX_CONSUMER_SECRET = "sandbox-consumer-secret"  # noqa: S105 - a public demo credential of the local simulator


def _ro(d: dict) -> MappingProxyType:
    return MappingProxyType(d)


@dataclass(frozen=True)
class DemoIds:
    #: key -> external trigger code (what StartAutomation / the trigger call takes)
    automations: Any
    #: key -> Spotler automationId (appears in trigger results)
    automation_ids: Any
    #: key -> encryptedCampaignId (StopCampaign)
    campaigns: Any
    #: key -> encryptedTriggerId (TriggerCampaign)
    campaign_triggers: Any
    #: key -> audience externalId
    audiences: Any
    #: key -> contact externalId
    contacts: Any
    #: key -> e-mail address of that contact
    emails: Any
    #: permission name -> bit (the options of the ``permissions`` set property)
    permissions: Any
    tags: tuple[str, ...]
    products: tuple[str, ...]
    #: automation key -> {field name: type}
    automation_fields: Any = field(default_factory=dict)
    #: key -> encryptedMailingId of a sent mailing (opens, clicks and bounces refer to them)
    mailings: Any = field(default_factory=dict)


DEMO = DemoIds(
    automations=_ro({
        "welcome": "5b0f3c1e-8a4d-4c57-9b8e-0d6f2a1c7e01",
        "abandoned_cart": "5b0f3c1e-8a4d-4c57-9b8e-0d6f2a1c7e02",
        "birthday": "5b0f3c1e-8a4d-4c57-9b8e-0d6f2a1c7e03",  # inactive
        "one_time_offer": "5b0f3c1e-8a4d-4c57-9b8e-0d6f2a1c7e04",  # participation limit 1
        "winback": "5b0f3c1e-8a4d-4c57-9b8e-0d6f2a1c7e05",  # starts two automations, one inactive
    }),
    automation_ids=_ro({
        "welcome": "a7c1d2e3-0000-4000-8000-000000000001",
        "abandoned_cart": "a7c1d2e3-0000-4000-8000-000000000002",
        "birthday": "a7c1d2e3-0000-4000-8000-000000000003",
        "one_time_offer": "a7c1d2e3-0000-4000-8000-000000000004",
        "winback_email": "a7c1d2e3-0000-4000-8000-000000000005",
        "winback_sms": "a7c1d2e3-0000-4000-8000-000000000006",
    }),
    campaigns=_ro({
        "signup": "Qm5YcGx1c0NhbXBhaWduMQ",
        "offers": "Qm5YcGx1c0NhbXBhaWduMg",  # selection: contacts with the Offers permission
        "old_promo": "Qm5YcGx1c0NhbXBhaWduMw",  # inactive
    }),
    campaign_triggers=_ro({
        "signup": "VHJpZ2dlclNpZ251cA",
        "offers": "VHJpZ2dlck9mZmVycw",
        "old_promo": "VHJpZ2dlck9sZFByb21v",
    }),
    audiences=_ro({
        "customers": "aud-customers",
        "vip": "aud-vip",
        "in_use": "aud-newsletter-segment",  # used by an automation: cannot be deleted
    }),
    contacts=_ro({
        "jan": "cust-1001",
        "piet": "cust-1002",
        "anna": "cust-1003",
        "shared_a": "cust-1004",  # shares its e-mail address with shared_b
        "shared_b": "cust-1005",
        "blocked": "cust-1006",  # globally opted out (campaign triggers refused)
    }),
    emails=_ro({
        "jan": "jan@example.com",
        "piet": "piet@example.com",
        "anna": "anna@example.com",
        "shared_a": "shared@example.com",
        "shared_b": "shared@example.com",
        "blocked": "blocked@example.com",
    }),
    permissions=_ro({"Newsletter": 1, "Offers": 2, "Events": 3}),
    tags=("vip", "newsletter", "churn-risk"),
    products=("P-100", "P-200", "P-300"),
    automation_fields=_ro({
        "welcome": _ro({"voucherCode": "STRING", "landingUrl": "URL", "recommended": "PRODUCTLIST"}),
        "abandoned_cart": _ro({"cartUrl": "URL", "cartProducts": "PRODUCTLIST"}),
    }),
    mailings=_ro({
        "newsletter": "TWFpbGluZzE",
        "welcome": "TWFpbGluZzI",
        "offers": "TWFpbGluZzM",
    }),
)

# 2023-11-14T22:13:20Z; seeded timestamps are relative to this so that date filters are predictable.
SEED_EPOCH_MS = 1_700_000_000_000


def seed() -> dict[str, Any]:
    """The initial state of the demo account (fresh objects on every call)."""
    d = DEMO
    properties = [
        {"name": "email", "description": "E-mail", "type": "email"},
        {"name": "firstName", "description": "First name", "type": "string"},
        {"name": "lastName", "description": "Last name", "type": "string"},
        {"name": "gender", "description": "Gender", "type": "gender"},
        {"name": "birthday", "description": "Birthday", "type": "birthdate"},
        {"name": "mobileNumber", "description": "Mobile number", "type": "mobNr"},
        {"name": "postalCode", "description": "Postcode", "type": "postcode"},
        {"name": "city", "description": "City", "type": "string"},
        {"name": "loyaltyPoints", "description": "Loyalty points", "type": "int"},
        {"name": "totalSpent", "description": "Total spent", "type": "money"},
        {"name": "lastPurchaseDate", "description": "Last purchase date", "type": "date"},
        {"name": "lastLogin", "description": "Last login", "type": "dateTime"},
        {"name": "profileField1", "description": "Preference", "type": "string"},
        {"name": "profileField2", "description": "Preference", "type": "string"},  # same display name
        {"name": "permissions", "description": "Permissions", "type": "set",
         "entries": [{"bit": bit, "description": name, "rank": i + 1}
                     for i, (name, bit) in enumerate(d.permissions.items())]},
        {"name": "interests", "description": "Interests", "type": "set",
         "entries": [{"bit": 1, "description": "Running", "rank": 1}, {"bit": 2, "description": "Cycling", "rank": 2}]},
    ]

    def contact(key: str, offset_days: int, **props: Any) -> dict[str, Any]:
        ts = SEED_EPOCH_MS + offset_days * 86_400_000
        return {"externalId": d.contacts[key], "email": d.emails[key], "created": ts, "lastChanged": ts, "props": props}

    contacts = [
        contact("jan", 0, firstName="Jan", lastName="Jansen", gender="M", birthday="1980-04-12", city="Utrecht",
                loyaltyPoints=120, lastPurchaseDate="2023-10-01", lastLogin="2023-11-01T09:30:00+01:00",
                permissions={1: True, 2: True}),
        contact("piet", 1, firstName="Piet", lastName="Pietersen", gender="M", permissions={1: True, 2: False}),
        contact("anna", 2, firstName="Anna", lastName="de Vries", gender="F", mobileNumber="+31612345678",
                postalCode="1012 AB", totalSpent="249.95"),
        contact("shared_a", 3, firstName="Sam"),
        contact("shared_b", 4, firstName="Sam", lastName="Second"),
        contact("blocked", 5, firstName="Bo"),
    ]
    automations = [
        {"automationId": d.automation_ids["welcome"], "name": "Welcome journey",
         "triggerCode": d.automations["welcome"],
         "active": True, "participationLimit": None, "fields": dict(d.automation_fields["welcome"])},
        {"automationId": d.automation_ids["abandoned_cart"], "name": "Abandoned cart",
         "triggerCode": d.automations["abandoned_cart"], "active": True, "participationLimit": None,
         "fields": dict(d.automation_fields["abandoned_cart"])},
        {"automationId": d.automation_ids["birthday"], "name": "Birthday greeting",
         "triggerCode": d.automations["birthday"], "active": False, "participationLimit": None, "fields": {}},
        {"automationId": d.automation_ids["one_time_offer"], "name": "One-time offer",
         "triggerCode": d.automations["one_time_offer"], "active": True, "participationLimit": 1, "fields": {}},
        {"automationId": d.automation_ids["winback_email"], "name": "Winback e-mail",
         "triggerCode": d.automations["winback"], "active": True, "participationLimit": None, "fields": {}},
        {"automationId": d.automation_ids["winback_sms"], "name": "Winback SMS (paused)",
         "triggerCode": d.automations["winback"], "active": False, "participationLimit": None, "fields": {}},
    ]
    campaigns = [
        {"encryptedId": d.campaigns["signup"], "name": "Signup series", "active": True, "selection": None,
         "triggers": [{"encryptedId": d.campaign_triggers["signup"], "name": "Signup form"}]},
        {"encryptedId": d.campaigns["offers"], "name": "Offers", "active": True, "selection": ("permissions", 2),
         "triggers": [{"encryptedId": d.campaign_triggers["offers"], "name": "Offer request"}]},
        {"encryptedId": d.campaigns["old_promo"], "name": "Old promo", "active": False, "selection": None,
         "triggers": [{"encryptedId": d.campaign_triggers["old_promo"], "name": "Old promo trigger"}]},
    ]
    audiences = [
        {"externalId": d.audiences["customers"], "name": "Customers", "description": "Everyone who bought",
         "members": [d.contacts["jan"], d.contacts["piet"]], "inUse": False},
        {"externalId": d.audiences["vip"], "name": "VIP", "description": None, "members": [d.contacts["jan"]],
         "inUse": False},
        {"externalId": d.audiences["in_use"], "name": "Newsletter segment", "description": "Used by an automation",
         "members": [], "inUse": True},
    ]
    tags = {d.contacts["jan"]: {"vip": 10, "newsletter": None}, d.contacts["anna"]: {"churn-risk": 3}}
    bounces = [
        {"externalId": d.contacts["piet"], "date": SEED_EPOCH_MS + 2 * 86_400_000, "type": "SOFTBOUNCE",
         "encryptedActId": "TWFpbGluZzE"},
    ]
    # sent mailings; their dates are relative to the simulator's clock at reset (so "recent" stays recent)
    mailings = [
        {"encryptedId": d.mailings[key], "name": name, "subject": subject, "daysAgo": days, "type": "EMAIL",
         "archiveLink": f"https://mailings.example/archive/{d.mailings[key]}", "sentCount": 1200 - 100 * i,
         "trendReportId": i}
        for i, (key, name, subject, days) in enumerate((
            ("newsletter", "November newsletter", "News for you", 30),
            ("welcome", "Welcome mail", "Welcome!", 7),
            ("offers", "Spring offers", "Our spring offers", 2)), start=1)
    ]
    return {
        "properties": properties, "contacts": contacts, "mailings": mailings, "automations": automations,
        "campaigns": campaigns,
        "audiences": audiences, "tags": tags, "all_tags": list(d.tags), "products": list(d.products),
        "bounces": bounces, "blocked": [d.contacts["blocked"]],
    }


def describe(base_url: str) -> list[str]:
    """Human-readable lines with the demo ids (printed by ``python -m service.sandbox.spotler``)."""
    d = DEMO
    lines = [f"SPOTLER_SIMULATOR_URL={base_url}"]
    for title, mapping in (("automation trigger codes", d.automations), ("campaign trigger ids", d.campaign_triggers),
                           ("campaign ids", d.campaigns), ("audiences", d.audiences), ("contacts", d.contacts),
                           ("permissions (bit)", d.permissions), ("mailings", d.mailings)):
        lines.append(f"# {title}:")
        lines.extend(f"#   {k} = {v}" for k, v in mapping.items())
    lines.append(f"# tags: {', '.join(d.tags)}")
    lines.append(f"# products: {', '.join(d.products)}")
    return lines


#: what a flow maker should know about a demo contact
_CONTACT_NOTES = {
    "shared_a": "shares its e-mail address with cust-1005: address it by externalId",
    "shared_b": "shares its e-mail address with cust-1004: address it by externalId",
    "blocked": "opted out of everything: campaign triggers are refused",
}


def demo_contacts() -> list[dict[str, str]]:
    """The seeded contacts as sandbox mode shows them (``GET /sandbox``, docs/sandbox.md): e-mail, externalId, name."""
    keys = {v: k for k, v in DEMO.contacts.items()}
    out = []
    for c in seed()["contacts"]:
        name = " ".join(p for p in (c["props"].get("firstName"), c["props"].get("lastName")) if p)
        item = {"email": c["email"], "externalId": c["externalId"], "name": name}
        note = _CONTACT_NOTES.get(keys[c["externalId"]])
        if note:
            item["note"] = note
        out.append(item)
    return out
