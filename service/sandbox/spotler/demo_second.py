"""The second demo account of the Spotler simulator ("Second shop"): other contacts, automations, campaigns,
audiences and tags than :mod:`.demo`, so that a test (or a maker trying hosted mode) sees which account answered.

Same shape as :func:`.demo.seed`; the contact properties (the account's field definitions) are the first
account's. Ids are fixed, like the first account's.
"""

from __future__ import annotations

from typing import Any

from service.sandbox.spotler.demo import SEED_EPOCH_MS, DemoIds, _ro
from service.sandbox.spotler.demo import seed as first_seed

SECOND_CONSUMER_KEY = "sandbox-consumer-key-2"
SECOND_CONSUMER_SECRET = "sandbox-consumer-secret-2"  # noqa: S105 - a public demo credential of the local simulator

SECOND = DemoIds(
    automations=_ro({
        "order_followup": "6c1a4d2f-9b5e-4d68-8c9f-1e7a3b2d8f01",
        "review_request": "6c1a4d2f-9b5e-4d68-8c9f-1e7a3b2d8f02",  # inactive
    }),
    automation_ids=_ro({
        "order_followup": "b8d2e3f4-0000-4000-8000-000000000101",
        "review_request": "b8d2e3f4-0000-4000-8000-000000000102",
    }),
    campaigns=_ro({"bread_club": "U2Vjb25kQ2FtcGFpZ24x"}),
    campaign_triggers=_ro({"bread_club": "U2Vjb25kVHJpZ2dlcjE"}),
    audiences=_ro({"regulars": "aud-regulars"}),
    contacts=_ro({"eva": "shop2-2001", "noah": "shop2-2002", "lotte": "shop2-2003"}),
    emails=_ro({"eva": "eva@second-shop.example", "noah": "noah@second-shop.example",
                "lotte": "lotte@second-shop.example"}),
    permissions=_ro({"Newsletter": 1, "Offers": 2, "Events": 3}),
    tags=("regular", "gluten-free"),
    products=("B-1", "B-2"),
    automation_fields=_ro({"order_followup": _ro({"orderNumber": "STRING"})}),
    mailings=_ro({"bread_news": "U2Vjb25kTWFpbGluZzE"}),
)


def seed() -> dict[str, Any]:
    """The initial state of the second demo account (fresh objects on every call)."""
    d = SECOND

    def contact(key: str, offset_days: int, **props: Any) -> dict[str, Any]:
        ts = SEED_EPOCH_MS + offset_days * 86_400_000
        return {"externalId": d.contacts[key], "email": d.emails[key], "created": ts, "lastChanged": ts, "props": props}

    return {
        "properties": first_seed()["properties"],
        "contacts": [
            contact("eva", 0, firstName="Eva", lastName="Bakker", city="Haarlem", permissions={1: True}),
            contact("noah", 1, firstName="Noah", lastName="Visser", loyaltyPoints=40),
            contact("lotte", 2, firstName="Lotte", lastName="Smit", permissions={1: True, 2: True}),
        ],
        "automations": [
            {"automationId": d.automation_ids["order_followup"], "name": "Order follow-up",
             "triggerCode": d.automations["order_followup"], "active": True, "participationLimit": None,
             "fields": dict(d.automation_fields["order_followup"])},
            {"automationId": d.automation_ids["review_request"], "name": "Review request",
             "triggerCode": d.automations["review_request"], "active": False, "participationLimit": None,
             "fields": {}},
        ],
        "campaigns": [
            {"encryptedId": d.campaigns["bread_club"], "name": "Bread club", "active": True, "selection": None,
             "triggers": [{"encryptedId": d.campaign_triggers["bread_club"], "name": "Bread club signup"}]},
        ],
        "audiences": [
            {"externalId": d.audiences["regulars"], "name": "Regulars", "description": "Weekly customers",
             "members": [d.contacts["eva"]], "inUse": False},
        ],
        "tags": {d.contacts["eva"]: {"regular": None}},
        "all_tags": list(d.tags),
        "products": list(d.products),
        "bounces": [],
        "blocked": [],
        "mailings": [
            {"encryptedId": d.mailings["bread_news"], "name": "Bread news", "subject": "Fresh this week",
             "daysAgo": 3, "type": "EMAIL", "archiveLink": f"https://mailings.example/archive/{d.mailings['bread_news']}",
             "sentCount": 300, "trendReportId": 11},
        ],
    }
