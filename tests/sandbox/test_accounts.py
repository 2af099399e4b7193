"""Several demo accounts per platform simulator (service.sandbox.accounts): each account answers with its own data
through the real provider clients over loopback, wrong credentials are refused with the platform's own 401, the
first account stays the historical demo account, and the control calls reach the account X-Sim-Account names."""

from __future__ import annotations

import pytest
import requests

from service.errors import AuthFailed
from service.providers.base import ContactRef
from service.providers.piggy import PiggyConfig, PiggyProvider
from service.providers.spoki import SpokiConfig, SpokiProvider
from service.providers.spotler import SpotlerConfig, SpotlerProvider
from service.sandbox.launch import SANDBOX_ACCOUNTS, SANDBOX_CREDENTIALS, start_in_process, start_process

FAST = {"connect_timeout": 1.0, "read_timeout": 5.0, "max_retries": 0}


def _provider(platform: str, url: str, credentials: dict[str, str]):
    if platform == "spotler":
        return SpotlerProvider(SpotlerConfig(base_url=url, consumer_key=credentials["consumer_key"],
                                             consumer_secret=credentials["consumer_secret"], **FAST))
    if platform == "piggy":
        return PiggyProvider(PiggyConfig(base_url=url, api_token=credentials["token"], **FAST))
    return SpokiProvider(SpokiConfig(base_url=url, api_key=credentials["api_key"], **FAST))


def _credentials(entry: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in entry.items() if k != "name"}


@pytest.fixture(scope="module", params=sorted(SANDBOX_ACCOUNTS))
def running(request):
    sim = start_in_process(request.param)
    yield request.param, sim
    sim.stop()


def test_table_has_several_accounts_and_keeps_the_historical_first_one():
    assert len(SANDBOX_ACCOUNTS["spotler"]) >= 2
    assert all(len(SANDBOX_ACCOUNTS[p]) >= 2 for p in ("piggy", "spoki"))
    for platform, accounts in SANDBOX_ACCOUNTS.items():
        assert SANDBOX_CREDENTIALS[platform] == _credentials(accounts[0])
        names = [a["name"] for a in accounts]
        assert len(set(names)) == len(names)
        creds = [tuple(sorted(_credentials(a).items())) for a in accounts]
        assert len(set(creds)) == len(creds), "every account has its own credentials"


def test_each_account_answers_with_its_own_data(running):
    platform, sim = running
    assert set(sim.accounts) == {a["name"] for a in SANDBOX_ACCOUNTS[platform]}
    first_name = SANDBOX_ACCOUNTS[platform][0]["name"]
    assert sim.simulator is sim.accounts[first_name]
    seen: dict[str, tuple] = {}
    contacts: dict[str, list[str]] = {}
    for entry in SANDBOX_ACCOUNTS[platform]:
        provider = _provider(platform, sim.url, _credentials(entry))
        automations = tuple(sorted(a.name for a in provider.list_automations()))
        assert automations, f"{entry['name']} lists its automations"
        seen[entry["name"]] = automations
        own = sim.accounts[entry["name"]]
        all_emails = [c["email"] for c in _seeded_contacts(platform, own) if c.get("email")]
        emails = sorted(e for e in set(all_emails) if all_emails.count(e) == 1)  # unambiguous ones
        contacts[entry["name"]] = emails
        found = provider.find_contact(ContactRef(email=emails[0]))
        assert found is not None and found.email == emails[0]
    assert len(set(seen.values())) == len(seen), f"each account has its own automations: {seen}"
    first, *others = SANDBOX_ACCOUNTS[platform]
    for other in others:
        provider = _provider(platform, sim.url, _credentials(other))
        assert set(contacts[first["name"]]).isdisjoint(contacts[other["name"]])
        assert provider.find_contact(ContactRef(email=contacts[first["name"]][0])) is None, \
            "another account's contact is unknown"


def _seeded_contacts(platform: str, simulator) -> list[dict]:
    with simulator.lock:
        if platform == "spotler":
            return [{"email": c["properties"].get("email")} for c in simulator.contacts.values()]
        return [{"email": c.get("email")} for c in simulator.contacts.values()]


def test_wrong_credentials_are_refused(running):
    platform, sim = running
    wrong = {k: v + "-wrong" for k, v in _credentials(SANDBOX_ACCOUNTS[platform][1]).items()}
    if platform == "spotler":  # the second account's key with another account's secret: a bad signature
        mixed = {"consumer_key": SANDBOX_ACCOUNTS[platform][1]["consumer_key"],
                 "consumer_secret": SANDBOX_ACCOUNTS[platform][0]["consumer_secret"]}
        with pytest.raises(AuthFailed):
            _provider(platform, sim.url, mixed).list_automations()
    with pytest.raises(AuthFailed):
        _provider(platform, sim.url, wrong).list_automations()


def test_control_calls_reach_the_named_account(running):
    platform, sim = running
    base = sim.url.removesuffix("/integrationservice")
    second = SANDBOX_ACCOUNTS[platform][1]["name"]
    target = sim.accounts[second]
    with target.lock:
        target.contacts.clear()
    assert not _seeded_contacts(platform, target)
    answer = requests.post(f"{base}/__sim__/reset", headers={"X-Sim-Account": second}, timeout=5)
    assert answer.status_code == 200
    assert _seeded_contacts(platform, target), "the reset restored the second account's seed"


def test_the_simulator_process_serves_every_account():
    running = start_process("spoki")
    try:
        for entry in SANDBOX_ACCOUNTS["spoki"]:
            answer = requests.get(f"{running.url}/api/1/tags/", headers={"X-Spoki-Api-Key": entry["api_key"]},
                                  timeout=5)
            assert answer.status_code == 200, entry["name"]
        names = {entry["name"]: requests.get(f"{running.url}/api/1/tags/",
                                             headers={"X-Spoki-Api-Key": entry["api_key"]}, timeout=5).json()
                 for entry in SANDBOX_ACCOUNTS["spoki"]}
        assert len({str(v) for v in names.values()}) == len(names)
        refused = requests.get(f"{running.url}/api/1/tags/", headers={"X-Spoki-Api-Key": "nobody"}, timeout=5)
        assert refused.status_code == 401
    finally:
        running.stop()
