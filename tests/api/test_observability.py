"""Observability through the API (issue 24 item 3), in one process (the default registry; the gunicorn
multiprocess sums are tests/test_procfile_e2e.py's): GET /metrics counts requests by operationId and status,
upstream calls by platform and outcome, jobs by outcome (Succeeded, Failed, OUTCOME_UNKNOWN, Accepted), trigger
polls and items; METRICS_TOKEN guards it; /health/ready asks the database."""

from __future__ import annotations

import json
import socket
import uuid

from prometheus_client.parser import text_string_to_metric_families

from service.sandbox.spotler import DEMO
from tests.api.support import assert_problem
from tests.conftest import API_KEY

WELCOME = DEMO.automations["welcome"]
KEY = {"X-API-Key": API_KEY}


def scrape(client, headers=None) -> dict[tuple[str, frozenset], float]:
    r = client.get("/metrics", headers=headers or {})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    out = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(samples, name: str, **labels) -> float:
    """The sum of the samples of ``name`` whose labels include ``labels``."""
    want = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and want <= ls)


def test_requests_are_counted_by_operation_id_and_status_with_a_latency_histogram(api):
    before = scrape(api)
    for _ in range(3):
        assert api.get("/health").status_code == 200
    assert api.get("/connection").status_code == 401
    after = scrape(api)
    delta = lambda name, **ls: value(after, name, **ls) - value(before, name, **ls)  # noqa: E731
    assert delta("marketing_actions_requests_total", operation="Health", status="200") == 3
    assert delta("marketing_actions_requests_total", operation="TestConnection", status="401") == 1
    assert delta("marketing_actions_request_duration_seconds_count", operation="Health") == 3
    assert delta("marketing_actions_request_duration_seconds_bucket", operation="Health", le="+Inf") == 3
    # labels are operationIds, never raw paths
    assert not [ls for (n, ls) in after if n == "marketing_actions_requests_total"
                for k, v in ls if k == "operation" and "/" in v]


def test_an_action_counts_its_upstream_calls_and_its_job(call, api):
    before = scrape(api)
    r = call("POST", f"/automations/{WELCOME}/start", {"contact": {"email": DEMO.emails["jan"]}},
             key=uuid.uuid4().hex)
    assert r.status_code == 200, r.text
    missing = call("POST", f"/automations/{WELCOME}/start", {"contact": {"email": "nobody-x@example.com"}},
                   key=uuid.uuid4().hex)
    assert missing.status_code == 404, missing.text
    after = scrape(api)
    delta = lambda name, **ls: value(after, name, **ls) - value(before, name, **ls)  # noqa: E731
    assert delta("marketing_actions_requests_total", operation="StartAutomation", status="200") == 1
    assert delta("marketing_actions_upstream_calls_total", platform="spotler", outcome="success") >= 2
    assert delta("marketing_actions_upstream_call_duration_seconds_count", platform="spotler") >= 2
    assert delta("marketing_actions_jobs_total", outcome="Succeeded") == 1
    assert delta("marketing_actions_jobs_total", outcome="Failed") == 1


def test_a_lost_answer_is_an_outcome_unknown_job(make_call, settings, spotler_sim, sim):
    call = make_call(settings.with_(sandbox_upstream_url=spotler_sim.url))
    client = call.client
    sim.faults.configure(times=1, path_prefix="/integrationservice/automation/trigger/", reset_rate=1.0,
                         reset_phase="after")
    before = scrape(client)
    r = call("POST", f"/automations/{WELCOME}/start", {"contact": {"externalId": DEMO.contacts["jan"]}},
             key=uuid.uuid4().hex)
    assert_problem(r, 409, "OUTCOME_UNKNOWN")
    after = scrape(client)
    assert value(after, "marketing_actions_jobs_total", outcome="OUTCOME_UNKNOWN") - \
        value(before, "marketing_actions_jobs_total", outcome="OUTCOME_UNKNOWN") == 1
    assert value(after, "marketing_actions_upstream_calls_total", platform="spotler", outcome="connection_error") > \
        value(before, "marketing_actions_upstream_calls_total", platform="spotler", outcome="connection_error")


def test_a_call_answered_202_is_an_accepted_job(make_call, settings, spotler_sim, sim):
    call = make_call(settings.with_(sandbox_upstream_url=spotler_sim.url, sync_deadline_seconds=0.1))
    sim.faults.configure(latency_ms=20, path_prefix="/integrationservice/automation/stop/")
    before = scrape(call.client)
    ids = [str(uuid.uuid4()) for _ in range(20)]
    r = call("POST", "/automation-runs/stop", {"automationContactIds": ids}, key=uuid.uuid4().hex)
    assert r.status_code == 202, r.text
    after = scrape(call.client)
    assert value(after, "marketing_actions_jobs_total", outcome="Accepted") - \
        value(before, "marketing_actions_jobs_total", outcome="Accepted") == 1


def test_trigger_polls_and_items_are_counted(call, api):
    before = scrape(api)
    first = call("GET", "/triggers/contacts/added")
    assert first.status_code == 202, first.text
    email = f"metrics-{uuid.uuid4().hex[:8]}@example.com"
    assert call("PUT", "/contacts", {"contact": {"email": email}}).status_code == 200
    location = first.headers["Location"].split("://", 1)[1].split("/", 1)[1]
    second = api.get("/" + location, headers=KEY)
    assert second.status_code == 200, second.text
    items = len(second.json()["value"])
    after = scrape(api)
    delta = lambda name, **ls: value(after, name, **ls) - value(before, name, **ls)  # noqa: E731
    assert delta("marketing_actions_trigger_polls_total", trigger="OnContactAdded", status="202") == 1
    assert delta("marketing_actions_trigger_polls_total", trigger="OnContactAdded", status="200") == 1
    assert items >= 1 and delta("marketing_actions_trigger_items_total", trigger="OnContactAdded") == items


def test_metrics_token_guards_the_scrape(make_client, settings):
    client = make_client(settings.with_(metrics_token="scrape-token-0123456789"))
    r = client.get("/metrics")
    body = assert_problem(r, 401, "METRICS_TOKEN_REQUIRED")
    assert "scrape-token" not in r.text and "Authorization" in body["detail"]
    assert r.headers["WWW-Authenticate"] == "Bearer"
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert scrape(client, {"Authorization": "Bearer scrape-token-0123456789"})


def test_ready_when_the_database_answers(client):
    r = client.get("/health/ready")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "ready" and r.json()["databaseLatencyMs"] >= 0


def test_not_ready_when_the_database_is_down(make_client, settings):
    with socket.socket() as s:  # a port nothing listens on: connections are refused at once
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    down = settings.with_(database_url=f"postgresql+psycopg://postgres@127.0.0.1:{port}/test")
    client = make_client(down)
    assert client.get("/health").status_code == 200  # liveness: the process answers
    r = client.get("/health/ready")
    body = assert_problem(r, 503, "NOT_READY")
    assert int(r.headers["Retry-After"]) >= 1
    assert "127.0.0.1" not in body["detail"] and "postgres" not in body["detail"]


RUN_HEADERS = {
    "x-ms-workflow-run-id": "08584321234567890123456789CU12",
    "x-ms-client-tracking-id": "welcome-jan@example.com",  # a maker's own tracking id: the e-mail is masked
    "x-ms-workflow-name": "5f0c1e7a-2b8c-4b59-9a66-0c5f0e0f1a2b",
    "x-ms-workflow-version": "08584321999999999999",
    "x-ms-correlation-id": "9a0e7c1d-0000-4000-8000-000000000001",
    "x-ms-activity-vector": "IN.0A.IN.05" + "x" * 500,  # capped
    "x-ms-workflow-operation-name": "Start\x07_welcome",  # a control character is dropped
    "x-ms-apim-tokens": "secret-looking",  # not on the list: never recorded
    "x-ms-user-name": "someone@example.com",  # not on the list: never recorded
}


def test_the_run_headers_are_stored_on_the_job_shown_by_get_job_and_in_every_log_line(call, api, capsys):
    capsys.readouterr()
    r = api.post(f"/automations/{WELCOME}/start", json={"contact": {"email": DEMO.emails["jan"]}},
                 headers={**KEY, **RUN_HEADERS, "Idempotency-Key": uuid.uuid4().hex})
    assert r.status_code == 200, r.text
    request_id = r.headers["x-request-id"]
    job = call("GET", f"/jobs/{r.json()['jobId']}").json()
    expected = {"workflowRunId": RUN_HEADERS["x-ms-workflow-run-id"],
                "clientTrackingId": "w***@example.com",
                "workflowName": RUN_HEADERS["x-ms-workflow-name"],
                "workflowVersion": RUN_HEADERS["x-ms-workflow-version"],
                "correlationId": RUN_HEADERS["x-ms-correlation-id"],
                "activityVector": RUN_HEADERS["x-ms-activity-vector"][:200],
                "workflowOperationName": "Start_welcome"}
    assert job["correlation"] == expected
    assert job["requestId"] == request_id
    listed = call("GET", "/jobs").json()["value"]
    assert [j["correlation"] for j in listed if j["jobId"] == job["jobId"]] == [expected]
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    mine = [d for d in lines if d.get("requestId") == request_id]
    assert len(mine) >= 2 and all(d.get("correlation") == expected for d in mine), mine
    assert "secret-looking" not in json.dumps(job) and "someone@" not in json.dumps([job, mine])
    assert "jan@example.com" not in json.dumps([job, mine])


def test_a_call_without_run_headers_has_no_correlation(call):
    r = call("POST", f"/automations/{WELCOME}/start", {"contact": {"email": DEMO.emails["jan"]}},
             key=uuid.uuid4().hex)
    assert r.status_code == 200, r.text
    assert "correlation" not in call("GET", f"/jobs/{r.json()['jobId']}").json()
