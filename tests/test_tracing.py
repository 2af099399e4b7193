"""OpenTelemetry traces (issue 24 item 3): the service started as the Procfile starts it (gunicorn, a forked
uvicorn worker that sets tracing up after the fork) with ``OTEL_EXPORTER_OTLP_ENDPOINT`` pointing at a tiny
OTLP/HTTP receiver in this test, which decodes each ``ExportTraceServiceRequest``: one action's SERVER span
(named by its operationId, child of the caller's traceparent) arrives with its upstream CLIENT child span.
Off by default: without the variable nothing is set up."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from service import telemetry
from service.sandbox.spotler import DEMO
from tests.test_procfile_e2e import _free_port, _web_command

ROOT = Path(__file__).resolve().parent.parent
WELCOME = DEMO.automations["welcome"]


class Receiver:
    """OTLP/HTTP on loopback: every span received, and an event set when ``done(spans)`` says so."""

    def __init__(self) -> None:
        self.spans: list[tuple[dict, Span]] = []  # (resource attributes, span)
        self.lock = threading.Lock()
        self.done = lambda spans: False
        self.event = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.path == "/v1/traces":
                    request = ExportTraceServiceRequest()
                    request.ParseFromString(body)
                    with receiver.lock:
                        for rs in request.resource_spans:
                            resource = {a.key: a.value.string_value for a in rs.resource.attributes}
                            receiver.spans += [(resource, s) for ss in rs.scope_spans for s in ss.spans]
                        if receiver.done(receiver.spans):
                            receiver.event.set()
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200 if self.path == "/v1/traces" else 404)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _attrs(span: Span) -> dict:
    out = {}
    for a in span.attributes:
        v = a.value
        out[a.key] = v.string_value if v.HasField("string_value") else v.int_value
    return out


@pytest.fixture(scope="module")
def traced(tmp_path_factory):
    receiver = Receiver()
    port = _free_port()
    workdir = tmp_path_factory.mktemp("traced")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SPOTLER_", "PIGGY_", "SPOKI_", "API_KEYS", "SANDBOX_", "DATABASE_URL", "OTEL_",
                                "PROMETHEUS_", "XDG_RUNTIME_DIR"))}
    env.update(PORT=str(port), WEB_CONCURRENCY="1", PROVIDER="spotler", HOME=str(workdir), ENV_FILE=os.devnull,
               DATABASE_URL=f"sqlite:///{workdir}/ledger.db", SANDBOX_STATE_DIR=str(workdir / "sandbox"),
               OTEL_EXPORTER_OTLP_ENDPOINT=receiver.url, OTEL_BSP_SCHEDULE_DELAY="50",
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}")
    log = workdir / "output.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(["sh", "-c", "exec " + _web_command()], cwd=ROOT, env=env, start_new_session=True,
                                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            while True:  # readiness: poll /health until the worker answers (bounded by the deadline)
                assert proc.poll() is None, log.read_text()[-3000:]
                try:
                    if client.get("/health").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, "service did not become ready within 60 s"
                time.sleep(0.2)
            yield client, receiver, log
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:  # pragma: no cover
                os.killpg(proc.pid, signal.SIGKILL)
        receiver.close()


def test_one_action_arrives_as_a_server_span_with_its_upstream_child_span(traced):
    client, receiver, log = traced
    caller_trace = uuid.uuid4().hex
    caller_span = uuid.uuid4().hex[:16]
    request_id = "trace-" + uuid.uuid4().hex[:12]

    def server_and_child(spans):
        servers = [s for _, s in spans if s.kind == Span.SPAN_KIND_SERVER and s.name == "StartAutomation"
                   and _attrs(s).get("marketing_actions.request_id") == request_id]
        return servers and [s for _, s in spans if s.kind == Span.SPAN_KIND_CLIENT
                            and s.parent_span_id == servers[0].span_id]

    receiver.done = server_and_child
    r = client.post(f"/automations/{WELCOME}/start", json={"contact": {"email": DEMO.emails["jan"]}},
                    headers={"X-API-Key": "sandbox", "Idempotency-Key": uuid.uuid4().hex, "X-Request-Id": request_id,
                             "traceparent": f"00-{caller_trace}-{caller_span}-01",
                             "x-ms-workflow-run-id": "08584321234567890123456789CU12"})
    assert r.status_code == 200, r.text
    assert receiver.event.wait(30), (receiver.spans, log.read_text()[-2000:])
    with receiver.lock:
        spans = list(receiver.spans)
    resource, server = next((res, s) for res, s in spans if s.kind == Span.SPAN_KIND_SERVER
                            and _attrs(s).get("marketing_actions.request_id") == request_id)
    assert resource["service.name"] == "marketing-actions"
    assert server.trace_id.hex() == caller_trace and server.parent_span_id.hex() == caller_span
    attrs = _attrs(server)
    assert attrs["marketing_actions.operation"] == "StartAutomation"
    assert attrs["http.response.status_code"] == 200 and attrs["http.request.method"] == "POST"
    assert attrs["marketing_actions.correlation.workflowRunId"] == "08584321234567890123456789CU12"
    children = [s for _, s in spans if s.parent_span_id == server.span_id]
    assert children and all(s.kind == Span.SPAN_KIND_CLIENT and s.trace_id == server.trace_id for s in children)
    upstream = [_attrs(s) for s in children]
    assert {a["marketing_actions.platform"] for a in upstream} == {"spotler"}
    assert all(a["server.address"] == "127.0.0.1" and a["marketing_actions.outcome"] == "success"
               for a in upstream), upstream
    assert all(s.start_time_unix_nano >= server.start_time_unix_nano
               and s.end_time_unix_nano <= server.end_time_unix_nano for s in children)
    # what a span says is what a log line may say: no clear e-mail address anywhere
    assert DEMO.emails["jan"] not in str([(s.name, _attrs(s)) for _, s in spans])


def test_tracing_is_off_without_an_endpoint():
    assert telemetry.configure("", service_name="marketing-actions", version="0") is False
    assert not telemetry.enabled()
    with telemetry.upstream_span("spotler", "GET", "http://127.0.0.1/x") as span:
        assert span.span is None
    assert telemetry.start_request("GET", "/health", {}) is None
