"""Problem messages say what is wrong without echoing a personal value (issue 24, item 4): INVALID_EMAIL names the
field and why, a 415 says in words what is expected and what came, and a 503 for an upstream that cannot be
reached carries the class of reason (DNS, refused, TLS, timed out) and where, no internals.

The unreachable upstreams are all local: a ``.invalid`` name (never resolves, no query leaves the machine), a
closed loopback port, and the Spotler simulator's plain-HTTP port spoken to with https.
"""

from __future__ import annotations

import socket

import pytest

from service.sandbox.spotler import DEMO
from tests.api.conftest import caller
from tests.api.support import assert_problem
from tests.conftest import API_KEY

WELCOME = DEMO.automations["welcome"]

#: value -> why it is not an e-mail address, as the problem says it
BAD_EMAILS = {
    "jan.janssen.nl": "has no @",
    "jan @janssen.nl": "contains spaces",
    "jan@": "has no domain after the @",
    "@janssen.nl": "has nothing before the @",
    "jan@janssen": "has no complete domain after the @",
    "jan@home@janssen.nl": "has more than one @",
}


def _assert_says_why(body: dict, field: str, value: str, why: str) -> None:
    assert f"{field} {why}" in body["detail"], body["detail"]
    assert value not in body["detail"] and "janssen" not in body["detail"] and "***" not in body["detail"]


@pytest.mark.parametrize("value, why", BAD_EMAILS.items(), ids=list(BAD_EMAILS.values()))
def test_invalid_email_names_the_field_and_why_without_the_value(call, sim, value, why):
    before = {k: v for k, v in sim.stats().items() if k != "requests"}
    body = assert_problem(call("POST", f"/automations/{WELCOME}/start", {"contact": {"email": value}}),
                          400, "INVALID_EMAIL")
    assert body["field"] == "contact.email"
    _assert_says_why(body, "contact.email", value, why)
    assert {k: v for k, v in sim.stats().items() if k != "requests"} == before


def test_invalid_email_in_a_query_and_in_a_list_names_its_field(call, sim):
    body = assert_problem(call("GET", "/contacts", email="jan.janssen.nl"), 400, "INVALID_EMAIL")
    _assert_says_why(body, "contact.email", "jan.janssen.nl", "has no @")
    body = assert_problem(call("POST", f"/audiences/{DEMO.audiences['vip']}/members",
                               {"contacts": [{"email": DEMO.emails["piet"]}, {"email": "piet @janssen.nl"}]}),
                          400, "INVALID_CONTACTS")
    _assert_says_why(body, "contacts[1].email", "piet @janssen.nl", "contains spaces")


@pytest.mark.parametrize("headers, came", [
    ({"Content-Type": "text/plain"}, "this request sent text/plain"),
    ({"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
     "this request sent application/x-www-form-urlencoded"),
    ({}, "this request sent no Content-Type"),
])
def test_415_says_what_is_expected_and_what_came(api, sim, headers, came):
    r = api.request("POST", f"/automations/{WELCOME}/start", content=b'{"contact": {"email": "jan@janssen.nl"}}',
                    headers={"X-API-Key": API_KEY, **headers})
    body = assert_problem(r, 415, "UNSUPPORTED_MEDIA_TYPE")
    assert body["detail"] == f"Send the body as JSON (Content-Type: application/json); {came}."


# -- an upstream that cannot be reached --------------------------------------------------------------------

def _closed_port() -> int:
    with socket.socket() as s:  # bound, never listening: a connect is refused at once
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def unreachable(make_client, settings):
    """``call`` on an app whose Spotler is at ``url`` (no retries: one attempt says it)."""
    return lambda url: caller(make_client(settings.with_(sandbox_upstream_url=url, upstream_max_retries=0,
                                                         upstream_connect_timeout=5.0)))


INTERNALS = ("Error", "errno", "Errno", "HTTPConnectionPool", "HTTPSConnectionPool", "Max retries", "object at")


def _assert_reason(resp, expected: str) -> None:
    body = assert_problem(resp, 503, resp.json().get("code"))
    assert resp.headers.get("Retry-After")
    assert body["detail"].startswith("Spotler could not be reached: "), body["detail"]
    assert expected in body["detail"], body["detail"]
    assert not any(word in body["detail"] for word in INTERNALS), body["detail"]


def test_dns_failure_names_the_host_and_dns(unreachable, sim):
    call = unreachable("http://api.spotler.invalid")
    expected = "the name api.spotler.invalid could not be resolved (DNS)"
    _assert_reason(call("GET", "/connection"), expected)
    _assert_reason(call("POST", f"/automations/{WELCOME}/start", {"contact": {"externalId": DEMO.contacts["jan"]}},
                        key="dns-1"), expected)


def test_refused_connection_says_refused(unreachable, sim):
    port = _closed_port()
    call = unreachable(f"http://127.0.0.1:{port}")
    _assert_reason(call("GET", "/connection"), f"connection refused by 127.0.0.1:{port}")
    _assert_reason(call("POST", "/contacts/tags", {"contact": {"externalId": DEMO.contacts["jan"]}, "tags": "vip"}),
                   "connection refused")


def test_tls_to_a_plain_http_server_says_tls_handshake_failed(unreachable, spotler_sim, sim):
    plain = spotler_sim.url.replace("http://", "https://", 1)
    call = unreachable(plain)
    _assert_reason(call("GET", "/connection"), "TLS handshake failed with 127.0.0.1:")
