"""GET /sandbox and the demo data of each platform (docs/sandbox.md); problem details and logs a sandbox user meets
first (the JSON field and the connector label, hints of the right platform, no "upstream problem" where no
platform was called, counts in words, one JSON style)."""

from __future__ import annotations

import logging

import pytest

from service.config import Settings
from service.sandbox import demo_table
from service.sandbox.spotler import DEMO
PLATFORMS = ("spotler", "piggy", "spoki")


@pytest.fixture(scope="module")
def platform_calls(tmp_path_factory):
    """One app per platform in sandbox mode (its simulator in-process), with the sandbox key."""
    from service.app import create_app

    opened, calls = [], {}
    for provider in PLATFORMS:
        app = create_app(Settings(provider=provider, validate_responses=True, list_cache_seconds=0,
                                  database_url=f"sqlite:///{tmp_path_factory.mktemp(provider)}/ledger.db"))
        client = app.test_client()
        client.__enter__()
        opened.append(client)

        def with_sandbox_key(method, path, body=None, *, _client=client, **query):
            return _client.request(method, path, headers={"X-API-Key": "sandbox"}, params=query or None,
                                   **({"json": body} if body is not None else {}))

        with_sandbox_key.client = client
        calls[provider] = with_sandbox_key
    yield calls
    for client in opened:
        client.__exit__(None, None, None)


@pytest.fixture(scope="module")
def sandbox(platform_calls):
    out = {}
    for provider, call in platform_calls.items():
        r = call("GET", "/sandbox")
        assert r.status_code == 200, r.text
        out[provider] = r.json()
    return out


@pytest.mark.parametrize("provider", PLATFORMS)
def test_sandbox_lists_what_the_platform_lists(provider, platform_calls, sandbox):
    call, data = platform_calls[provider], sandbox[provider]
    assert (data["provider"], data["mode"], data["apiKey"]) == (provider, "sandbox", "sandbox")
    assert data["contacts"] and data["automations"]
    assert data["automations"] == call("GET", "/automations").json()["value"]
    audiences = call("GET", "/audiences")
    expected = [{"id": a["id"], "name": a["name"]} for a in audiences.json()["value"]] \
        if audiences.status_code == 200 else []
    assert data["audiences"] == expected
    for contact in data["contacts"]:  # every demo contact exists on the simulator, by its externalId
        r = call("GET", "/contacts", externalId=contact["externalId"])
        assert r.status_code == 200, r.text
        assert r.json()["externalId"] == contact["externalId"]


@pytest.mark.parametrize("provider", PLATFORMS)
def test_the_documented_first_call_of_each_platform_works(provider, platform_calls, sandbox):
    path, body = demo_table.first_call(sandbox[provider])
    r = platform_calls[provider]("POST", path, body)
    assert r.status_code == 200, r.text
    assert r.json()["resultCode"] == "OK"


def test_docs_sandbox_lists_the_demo_data_of_every_platform(sandbox):
    doc = demo_table.DOC_PATH.read_text(encoding="utf-8")
    assert demo_table.readme_block(doc) == demo_table.render_markdown(sandbox).strip(), \
        "docs/sandbox.md is stale: run .venv/bin/python -m service.sandbox.demo_table --write"


def test_sandbox_is_404_in_live_mode(make_client, tmp_path):
    client = make_client(Settings(provider="spoki", api_keys=("k" * 20,), ledger_hash_key="h" * 40,
                                  platform_env={"SPOKI_API_KEY": "live-key"},
                                  database_url=f"sqlite:///{tmp_path}/l.db"))
    r = client.get("/sandbox")
    assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"
    assert r.json()["code"] == "NOT_SANDBOX_MODE"


# -- what a sandbox user meets first ---------------------------------------------------------------------

def test_contact_not_found_names_the_json_field_and_the_connector_label(platform_calls):
    r = platform_calls["piggy"]("POST", "/automations/5f1c2a9e-8d3b-4c57-9a61-0b7e4d2c1a01/start",
                                {"contact": {"email": DEMO.emails["jan"]}})  # a Spotler demo contact
    assert r.status_code == 404 and r.json()["code"] == "CONTACT_NOT_FOUND"
    detail = r.json()["detail"]
    assert "createContactIfMissing" in detail and "'Create contact if missing'" in detail
    assert "on Piggy" in detail


def test_contact_not_found_offers_the_option_only_where_the_operation_has_it(platform_calls):
    r = platform_calls["spotler"]("POST", "/contacts/tags", {"contact": {"email": "nobody@example.com"},
                                                             "tags": "lead"})
    assert r.status_code == 404 and r.json()["code"] == "CONTACT_NOT_FOUND"
    assert "createContactIfMissing" not in r.json()["detail"] and "Upsert contact" in r.json()["detail"]


@pytest.mark.parametrize("provider, own, others", [
    ("spotler", "Spotler", ("Piggy", "Spoki")),
    ("piggy", "Piggy", ("Spotler", "Spoki")),
    ("spoki", "Spoki", ("Spotler", "Piggy")),
])
def test_automation_not_found_hint_is_the_platforms_own(provider, own, others, platform_calls):
    r = platform_calls[provider]("POST", "/automations/999999/start", {"contact": {"email": "a@example.com"}})
    assert r.status_code == 404 and r.json()["code"] == "AUTOMATION_NOT_FOUND"
    detail = r.json()["detail"]
    assert f"on {own}" in detail
    assert not [name for name in others if name in detail]


def test_an_action_the_platform_lacks_is_not_logged_as_an_upstream_problem(platform_calls, caplog):
    with caplog.at_level(logging.INFO):
        r = platform_calls["piggy"]("POST", "/contacts/tags", {"contact": {"email": "a@example.com"}, "tags": "x"})
    assert r.status_code == 400 and r.json()["code"] == "NOT_SUPPORTED_BY_PLATFORM"
    messages = [rec.getMessage() for rec in caplog.records]
    assert not [m for m in messages if "upstream problem" in m]
    assert [m for m in messages if m.startswith("not supported by this platform")]


def test_every_json_answer_is_compact_and_ends_with_a_newline(platform_calls):
    call = platform_calls["spotler"]
    answers = [
        call("GET", "/automations"),  # handler
        call("GET", "/nope"),  # routing error
        call("POST", "/automations/x/start", {"contact": "x"}),  # validation error
        call("POST", "/audiences/aud-vip/members", {"contacts": [{"email": DEMO.emails["jan"]}]}),  # ledger
    ]
    client = call.client
    answers.append(client.post("/contacts/tags", content=b"{" + b" " * (2 * 1024 * 1024) + b"}",
                               headers={"X-API-Key": "sandbox", "Content-Type": "application/json"}))  # middleware
    assert [a.status_code for a in answers] == [200, 404, 400, 200, 413]
    for answer in answers:
        assert answer.text.endswith("}\n") and answer.text.count("\n") == 1, answer.text[:200]
        assert '": ' not in answer.text and '", "' not in answer.text, answer.text[:200]  # one compact style


def test_counts_in_words(platform_calls):
    r = platform_calls["spotler"]("POST", "/audiences/aud-vip/members",
                                  {"contacts": [{"email": DEMO.emails["jan"]}, {"email": "ghost@example.com"}]})
    assert r.json()["message"] == "0 added, 1 already a member, 1 not found."
