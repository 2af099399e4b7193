"""GET /sandbox in hosted sandbox mode (TENANCY=hosted): the demo accounts of the three platform simulators, with
the key and secret a hosted connection sends, each account's contacts found on its own simulator account through
the real provider clients; single mode's answer has none of it; live mode stays 404."""

from __future__ import annotations


import pytest

from service.config import Settings
from service.providers.base import ContactRef
from service.sandbox.launch import SANDBOX_ACCOUNTS, start_in_process
from tests.sandbox.test_accounts import _provider


def hosted(settings: Settings) -> Settings:
    return settings.with_(tenancy="hosted")


@pytest.fixture(scope="module")
def simulators():
    running = {platform: start_in_process(platform) for platform in SANDBOX_ACCOUNTS}
    yield running
    for sim in running.values():
        sim.stop()


def test_hosted_sandbox_lists_every_demo_account(make_client, settings, monkeypatch, simulators):
    client = make_client(hosted(settings))  # validate_responses: the answer follows the schema
    r = client.get("/sandbox")
    assert r.status_code == 200, r.text
    data = r.json()
    assert (data["mode"], data["tenancy"]) == ("sandbox", "hosted")
    assert "provider" not in data and "automations" not in data and "apiKey" not in data
    accounts = data["accounts"]
    by_platform: dict[str, list[dict]] = {}
    for account in accounts:
        by_platform.setdefault(account["platform"], []).append(account)
    assert len(by_platform["spotler"]) >= 2 and len(by_platform["piggy"]) >= 1 and len(by_platform["spoki"]) >= 1
    for platform, listed in by_platform.items():
        table = SANDBOX_ACCOUNTS[platform]
        assert [a["name"] for a in listed] == [t["name"] for t in table]
        emails = [{c["email"] for c in a["contacts"]} for a in listed]
        assert all(emails) and len({frozenset(e) for e in emails}) == len(emails), "each account has its own"
        for account in listed:
            assert ("secret" in account) == (platform == "spotler")
            credentials = ({"consumer_key": account["key"], "consumer_secret": account["secret"]}
                           if platform == "spotler" else
                           {"token": account["key"]} if platform == "piggy" else {"api_key": account["key"]})
            provider = _provider(platform, simulators[platform].url, credentials)
            contact = next(c for c in account["contacts"] if "note" not in c)  # an unambiguous one
            found = provider.find_contact(ContactRef(external_id=contact["externalId"]))
            assert found is not None and found.external_id == contact["externalId"], (platform, account["name"])


def test_single_mode_sandbox_has_no_accounts(make_client, settings, monkeypatch, simulators):
    client = make_client(settings.with_(sandbox_upstream_url=simulators["spotler"].url))
    data = client.get("/sandbox", headers={"X-API-Key": "x"}).json()
    assert data["provider"] == "spotler" and data["contacts"] and data["automations"]
    assert "accounts" not in data and "tenancy" not in data


def test_hosted_live_mode_has_no_sandbox(make_client, tmp_path):
    settings = Settings.from_env({"TENANCY": "hosted", "HOSTED_MODE": "live", "TENANT_HASH_KEY": "t" * 40,
                                  "CREDENTIALS_KEYS": "k1:" + "c" * 40, "LEDGER_HASH_KEY": "h" * 40,
                                  "TRIGGER_STATE_SECRET": "s" * 40, "DATABASE_URL": f"sqlite:///{tmp_path}/l.db"})
    r = make_client(settings).get("/sandbox")
    assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"
    assert r.json()["code"] == "NOT_SANDBOX_MODE"
