"""OpenTelemetry traces, when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set (off by default: then every function here
costs one attribute read).

:func:`configure` is called by ``create_app()``, so in a gunicorn worker it runs AFTER the fork: the exporter's
thread and connections belong to the worker (a ``BatchSpanProcessor`` made in the master would not survive the
fork). Spans go over OTLP/HTTP (protobuf) to ``<endpoint>/v1/traces``; the SDK's own ``OTEL_BSP_*`` /
``OTEL_EXPORTER_OTLP_*`` variables (batch delay, headers, timeout) apply.

* one SERVER span per request (:func:`start_request` / :func:`end_request`, by the request middleware), named by
  its operationId, a child of the caller's ``traceparent`` when one came;
* one CLIENT span per upstream call (:func:`upstream_span`, by ``service/providers/http.py``: every upstream
  session passes there), a child of the request's span - the context follows the call into Flask's and the
  runner's threads as the request id does.

What a span says is what a log line may say: operationId, method, the path with secret segments hidden, the
upstream's host and path (no query string: it may hold an e-mail address), statuses, the request id and the run
correlation (``service/logs.py``). This module imports nothing of the web framework, so providers may use it.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import urlsplit

from service.privacy import scrub_log_text

log = logging.getLogger(__name__)

_tracer: Any = None  # the worker's tracer once configured; None: tracing is off
_provider: Any = None
_pid: int | None = None


def enabled() -> bool:
    return _tracer is not None


def configure(endpoint: str, *, service_name: str, version: str) -> bool:
    """Traces to the OTLP/HTTP receiver at ``endpoint`` (a base URL), once per process; False when
    ``endpoint`` is empty (tracing off)."""
    global _tracer, _provider, _pid
    if not endpoint:
        return False
    if _pid == os.getpid() and _tracer is not None:
        return True
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": service_name, "service.version": version}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint.rstrip("/") + "/v1/traces")))
    _provider, _tracer, _pid = provider, provider.get_tracer("marketing-actions", version), os.getpid()
    if not isinstance(trace.get_tracer_provider(), TracerProvider):  # the process's global one, for libraries
        trace.set_tracer_provider(provider)
    log.info("tracing: spans go to %s/v1/traces", endpoint.rstrip("/"))
    return True


def shutdown() -> None:
    """Send what is buffered and stop the exporter (the app's lifespan end)."""
    global _tracer, _provider, _pid
    provider = _provider
    if provider is not None and _pid == os.getpid():
        _tracer = _provider = _pid = None
        provider.shutdown()


# -- the request's span ---------------------------------------------------------------------------------------

def start_request(method: str, path: str, headers: Mapping[str, str]) -> Any:
    """The SERVER span of a request, made current (a child of the caller's ``traceparent``); None when off.
    End it with :func:`end_request` in the same context."""
    tracer = _tracer
    if tracer is None:
        return None
    from opentelemetry import context, propagate, trace

    parent = propagate.extract(headers)
    span = tracer.start_span(f"{method} {path}", context=parent, kind=trace.SpanKind.SERVER,
                             attributes={"http.request.method": method, "url.path": scrub_log_text(path)})
    token = context.attach(trace.set_span_in_context(span, parent))
    return span, token


def end_request(handle: Any, *, operation: str | None, status: int, request_id: str,
                correlation: Mapping[str, str] | None) -> None:
    if handle is None:
        return
    from opentelemetry import context, trace

    span, token = handle
    try:
        if operation:
            span.update_name(operation)
            span.set_attribute("marketing_actions.operation", operation)
        span.set_attribute("http.response.status_code", status)
        span.set_attribute("marketing_actions.request_id", request_id)
        for key, value in (correlation or {}).items():
            span.set_attribute(f"marketing_actions.correlation.{key}", value)
        if status >= 500:
            span.set_status(trace.Status(trace.StatusCode.ERROR))
        span.end()
    finally:
        context.detach(token)


# -- an upstream call's span ----------------------------------------------------------------------------------

class _Call:
    """What the caller tells the span of an upstream call when it knows it."""

    __slots__ = ("span",)

    def __init__(self, span: Any) -> None:
        self.span = span

    def answered(self, status: int, outcome: str) -> None:
        if self.span is not None:
            self.span.set_attribute("http.response.status_code", status)
            self.span.set_attribute("marketing_actions.outcome", outcome)
            if status >= 500:
                from opentelemetry import trace

                self.span.set_status(trace.Status(trace.StatusCode.ERROR))

    def failed(self, outcome: str, error: BaseException) -> None:
        if self.span is not None:
            from opentelemetry import trace

            self.span.set_attribute("marketing_actions.outcome", outcome)
            self.span.set_attribute("error.type", type(error).__name__)
            self.span.set_status(trace.Status(trace.StatusCode.ERROR))


_OFF = _Call(None)


@contextlib.contextmanager
def upstream_span(platform: str, method: str, url: str) -> Iterator[_Call]:
    """A CLIENT span around one upstream call (a child of the current request's span); a no-op when off."""
    tracer = _tracer
    if tracer is None:
        yield _OFF
        return
    from opentelemetry import trace

    parts = urlsplit(url)
    attributes = {"http.request.method": method, "server.address": parts.hostname or "",
                  "url.path": scrub_log_text(parts.path or "/"), "marketing_actions.platform": platform}
    if parts.port:
        attributes["server.port"] = parts.port
    with tracer.start_as_current_span(f"{platform} {method}", kind=trace.SpanKind.CLIENT, attributes=attributes,
                                      record_exception=False, set_status_on_exception=False) as span:
        yield _Call(span)
