"""The sandbox Dataverse organisation: a few contacts, a lead and an account to start automations from.

The e-mail addresses match the platform simulators' demo contacts where a record should find an existing
contact (``jan@example.com``), and are new where ``createContactIfMissing`` should create one.
"""

from __future__ import annotations

from typing import Any

CONTACT_JAN = "0c0a0001-0000-4000-8000-00000000c001"
CONTACT_ANNA = "0c0a0001-0000-4000-8000-00000000c002"
CONTACT_NO_EMAIL = "0c0a0001-0000-4000-8000-00000000c003"
CONTACT_BAD_EMAIL = "0c0a0001-0000-4000-8000-00000000c004"
LEAD_LOTTE = "0c0a0001-0000-4000-8000-00000000e001"
ACCOUNT_CONTOSO = "0c0a0001-0000-4000-8000-00000000a001"


def records() -> dict[str, dict[str, dict[str, Any]]]:
    """entity set name -> id -> attributes (the Web API's logical names)."""
    return {
        "contacts": {
            CONTACT_JAN: {"contactid": CONTACT_JAN, "firstname": "Jan", "lastname": "Jansen",
                          "fullname": "Jan Jansen", "emailaddress1": "jan@example.com"},
            CONTACT_ANNA: {"contactid": CONTACT_ANNA, "firstname": "Anna", "lastname": "de Vries",
                           "fullname": "Anna de Vries", "emailaddress1": "anna@example.com"},
            CONTACT_NO_EMAIL: {"contactid": CONTACT_NO_EMAIL, "firstname": "Noor", "lastname": "Zonder",
                               "fullname": "Noor Zonder", "emailaddress1": None},
            CONTACT_BAD_EMAIL: {"contactid": CONTACT_BAD_EMAIL, "firstname": "Bas", "lastname": "Kapot",
                                "fullname": "Bas Kapot", "emailaddress1": "bas at example"},
        },
        "leads": {
            LEAD_LOTTE: {"leadid": LEAD_LOTTE, "firstname": "Lotte", "lastname": "Lead", "fullname": "Lotte Lead",
                         "emailaddress1": "lotte.lead@example.com", "companyname": "Lead Company"},
        },
        "accounts": {
            ACCOUNT_CONTOSO: {"accountid": ACCOUNT_CONTOSO, "name": "Contoso BV",
                              "emailaddress1": "info@contoso.example"},
        },
    }
