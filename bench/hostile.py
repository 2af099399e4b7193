"""Hostile-input fuzzing (issue #13): hypothesis draws requests from the input classes of the hostile-caller trial
and sends them to the running service, on every write operation.

Classes (``CLASSES``): JSON nested up to 100,000 deep, integer literals of up to 6,000 digits, NaN/Infinity, NUL
and lone surrogates inside any string, strings up to 300 KB, odd e-mail forms (non-ASCII, quoted, address
literals), identifiers with '/', '\\', '..' or control characters, text that is not JSON; sent with JSON,
without a Content-Type, as text/plain or chunked; with or without an Idempotency-Key (also too long or with
control characters).

Checks per answer: never a 5xx (the simulator injects no faults here); every 4xx is application/problem+json with
a ``code``; the answer is short (a bad value is never echoed at full length: under 4 KB). After the run the
service's log holds no ERROR line (checked by bench/fuzz.py).
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.processes import API_KEY

WELCOME = "5b0f3c1e-8a4d-4c57-9b8e-0d6f2a1c7e01"

#: every write operation: a JSON body with a slot @V@ for the hostile value
WRITES = [
    ("POST", f"/automations/{WELCOME}/start", '{"contact": {"externalId": @V@}}'),
    ("POST", f"/automations/{WELCOME}/start", '{"contact": {"email": @V@}, "fields": {"voucherCode": @V@}}'),
    ("POST", f"/automations/{WELCOME}/stop", '{"contact": {"email": @V@}}'),
    ("POST", "/automation-runs/stop", '{"automationContactIds": @V@}'),
    ("POST", "/campaigns/VHJpZ2dlclNpZ251cA/trigger", '{"contact": {"externalId": @V@}, "fieldsText": @V@}'),
    ("POST", "/campaigns/Q2FtcGFpZ25TaWdudXA/stop", '{"contact": {"externalId": @V@}}'),
    ("PUT", "/contacts", '{"contact": {"externalId": @V@, "email": @V@}, "fields": {"city": @V@}}'),
    ("POST", "/contacts/anonymize", '{"contact": {"email": @V@}}'),
    ("POST", "/contacts/fields", '{"contact": {"externalId": "cust-1001"}, "field": @V@, "value": @V@}'),
    ("POST", "/contacts/fields/clear", '{"contact": {"externalId": @V@}, "field": "city"}'),
    ("POST", "/contacts/permissions", '{"contact": {"externalId": "cust-1001"}, "permissions": @V@}'),
    ("POST", "/contacts/tags", '{"contact": {"externalId": "cust-1001"}, "tags": @V@, "score": @V@}'),
    ("POST", "/contacts/tags/remove", '{"contact": {"email": @V@}, "tags": @V@}'),
    ("POST", "/contacts/scores", '{"contact": {"externalId": "cust-1001"}, "tag": @V@, "score": @V@}'),
    ("POST", "/audiences", '{"name": @V@, "id": @V@}'),
    ("POST", "/audiences/aud-vip/members", '{"contacts": [{"email": @V@}, {"externalId": @V@}]}'),
    ("POST", "/audiences/aud-vip/members/remove", '{"contacts": [{"externalId": @V@}]}'),
]

ODD_EMAILS = ["jöhn.dœ@exämple.com", '"john doe"@example.com', "john@[192.0.2.1]", "山田@例え.jp",
              "a@b", "@example.com", "x" * 300 + "@example.com", "jan@example.com\u0000", "a\u2028b@example.com"]
ODD_IDS = ["team/42", "..", ".", "a\\b", "a\tb", "\u0000", "id\u202e", "x" * 201, "%2F", "?q=1#f"]


def _json_text(s: str) -> str:
    return json.dumps(s)


def _with(s: str, bad: str) -> str:
    text = json.dumps(s)
    return text[:1] + bad + text[1:]


CLASSES: dict[str, st.SearchStrategy[str]] = {
    "deep nesting": st.integers(33, 100_000).map(lambda d: "[" * d + "]" * d),
    "huge integer": st.integers(31, 6000).map(lambda n: "9" * n),
    "NaN/Infinity": st.sampled_from(["NaN", "Infinity", "-Infinity", "1e999"]),
    "NUL in a string": st.text(max_size=20).map(lambda s: _with(s, "\\u0000")),
    "lone surrogate": st.text(max_size=20).map(lambda s: _with(s, "\\ud800")),
    "long string": st.integers(255, 300_000).map(lambda n: _json_text("x" * n)),
    "odd e-mail": st.sampled_from(ODD_EMAILS).map(_json_text),
    "odd identifier": st.sampled_from(ODD_IDS).map(_json_text),
    "not JSON": st.text(min_size=1, max_size=40),
    "any JSON": st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=30),
                             lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                                         max_size=3),
                             max_leaves=8).map(lambda v: json.dumps(v)),
}
TRANSPORTS = ("json", "no content type", "text/plain", "chunked")
KEYS = st.one_of(st.none(), st.just("k" * 201), st.just("a\tb"), st.uuids().map(str))


@st.composite
def hostile_requests(draw) -> dict[str, Any]:
    method, path, template = draw(st.sampled_from(WRITES))
    cls = draw(st.sampled_from(sorted(CLASSES)))
    value = draw(CLASSES[cls])
    body = value if cls == "deep nesting" and draw(st.booleans()) else template.replace("@V@", value)
    return {"method": method, "path": path, "class": cls, "body": body.encode("utf-8", "surrogatepass"),
            "transport": draw(st.sampled_from(TRANSPORTS)), "key": draw(KEYS)}


def send(client: httpx.Client, req: dict[str, Any]) -> httpx.Response:
    headers = {"X-API-Key": API_KEY}
    if req["key"] is not None:
        headers["Idempotency-Key"] = req["key"]
    content: Any = req["body"]
    if req["transport"] in ("json", "chunked"):
        headers["Content-Type"] = "application/json"
    elif req["transport"] == "text/plain":
        headers["Content-Type"] = "text/plain"
    if req["transport"] == "chunked":
        body = req["body"]
        content = iter([body[: len(body) // 2], body[len(body) // 2:]])
    return client.request(req["method"], req["path"], content=content, headers=headers)


def problem_with(resp: httpx.Response) -> str | None:
    """Why this answer breaks the rules, or None."""
    if resp.status_code >= 500:
        return f"{resp.status_code} server error"
    if len(resp.content) > 4096:
        return f"{resp.status_code} answer of {len(resp.content)} bytes (a value echoed at full length?)"
    if resp.status_code >= 400:
        if not resp.headers.get("content-type", "").startswith("application/problem+json"):
            return f"{resp.status_code} not problem+json"
        try:
            doc = resp.json()
        except ValueError:
            return f"{resp.status_code} body is not JSON"
        if not isinstance(doc, dict) or not doc.get("code"):
            return f"{resp.status_code} problem without a code"
    return None


def run(base_url: str, max_examples: int = 300, seed: int = 13) -> dict[str, Any]:
    """Send ``max_examples`` hostile requests; returns counts per class and status, and the failures."""
    report: dict[str, Any] = {"examples": 0, "by_class": Counter(), "by_status": Counter(), "failures": [],
                              "failures_by_class": Counter()}
    client = httpx.Client(base_url=base_url, timeout=60)

    @settings(max_examples=max_examples, deadline=None, database=None, derandomize=False,
              suppress_health_check=list(HealthCheck))
    @given(req=hostile_requests())
    def probe(req):
        if req["key"] is not None and len(req["key"]) == 36:
            req["key"] = str(uuid.uuid4())  # fresh key per example (hypothesis may reuse a drawn one)
        resp = send(client, req)
        report["examples"] += 1
        report["by_class"][req["class"]] += 1
        report["by_status"][resp.status_code] += 1
        why = problem_with(resp)
        if why:
            report["failures_by_class"][req["class"]] += 1
            if len(report["failures"]) < 20:
                report["failures"].append({"class": req["class"], "transport": req["transport"],
                                           "path": req["path"], "why": why, "answer": resp.text[:300]})

    try:
        import random

        random.seed(seed)
        probe()
    finally:
        client.close()
    return report


def markdown(report: dict[str, Any]) -> str:
    lines = [f"{report['examples']} hostile requests; answers by status: "
             + ", ".join(f"{k}: {v}" for k, v in sorted(report["by_status"].items())) + ".",
             "By input class: " + ", ".join(f"{k} {v}" for k, v in sorted(report["by_class"].items())) + ".",
             f"Rule breaks (5xx, not problem+json, no code, echo over 4 KB): {len(report['failures'])}"
             + (f" - {dict(report['failures_by_class'])}: {report['failures'][:3]}" if report["failures"] else "")
             + "."]
    return "\n".join(lines)
