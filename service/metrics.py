"""The service's Prometheus metrics: every metric object, and the one way to render them (``GET /metrics``).

Every layer records through the small functions here (``request``, ``upstream_call``, ``job_finished``, ...);
none of them imports ``prometheus_client`` itself. This module imports nothing of the service, so each layer
(``service.api``, ``service.actions``, ``service.providers``) may use it.

Across gunicorn workers (prometheus_client's multiprocess mode): the gunicorn master creates (or empties) the
folder named by ``PROMETHEUS_MULTIPROC_DIR`` before it forks a worker (``gunicorn.conf.py``); every worker
writes its values into its own files there, a scrape on any worker reads and adds up the files of all of them
(:func:`render`), and the master marks a dead worker's files (``child_exit`` -> :func:`mark_process_dead`).
Without that variable (tests, ``uvicorn`` alone) the metrics live in the process's default registry.

Labels are few and bounded: an operation is its operationId (never a raw path), a status is the HTTP code, a
platform is the client's name, an outcome is one of the words listed at each metric.
"""

from __future__ import annotations

import os

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client import multiprocess, values

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
#: the content type of a scrape: the Prometheus text format 0.0.4, which every Prometheus version reads (our
#: metric names are plain ASCII, so the 1.0.0 format would say the same)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)

REQUESTS = Counter("marketing_actions_requests_total", "HTTP requests answered, by operationId and status.",
                   ("operation", "method", "status"))
REQUEST_SECONDS = Histogram("marketing_actions_request_duration_seconds",
                            "Time from a request's arrival to its answer, by operationId.", ("operation",),
                            buckets=_LATENCY_BUCKETS)
UPSTREAM_CALLS = Counter("marketing_actions_upstream_calls_total",
                         "Calls to an upstream (a marketing platform, Dataverse), retries included, by platform and "
                         "outcome (success, client_error, rate_limited, server_error, timeout, connection_error, "
                         "error).", ("platform", "outcome"))
UPSTREAM_SECONDS = Histogram("marketing_actions_upstream_call_duration_seconds",
                             "Time of one upstream call (its retries included), by platform.", ("platform",),
                             buckets=_LATENCY_BUCKETS)
JOBS = Counter("marketing_actions_jobs_total",
               "Jobs of the ledger by outcome: Succeeded, Failed, OUTCOME_UNKNOWN (finished), Accepted (answered "
               "202, going on in the background).", ("outcome",))
TRIGGER_POLLS = Counter("marketing_actions_trigger_polls_total",
                        "Polls of a polling trigger, by trigger (operationId) and answer (200 with items, 202 "
                        "without, error).", ("trigger", "status"))
TRIGGER_ITEMS = Counter("marketing_actions_trigger_items_total", "Items returned by polling triggers, by trigger.",
                        ("trigger",))
WEBHOOK_DELIVERIES = Counter("marketing_actions_webhook_deliveries_total",
                             "Attempts to deliver a webhook event to a flow's callback, by outcome (delivered, "
                             "retry, given_up, refused, orphaned, cancelled).", ("outcome",))


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROC_ENV) or None


def use_process_files() -> None:
    """In a worker forked by a master that set ``PROMETHEUS_MULTIPROC_DIR``: make sure values go to this
    process's files, even if ``prometheus_client`` was imported before the variable was set (a value object is
    made per label set, on first use, from ``values.ValueClass``)."""
    if multiprocess_dir() and values.ValueClass is values.MutexValue:
        values.ValueClass = values.get_value_class()


def _writes_files() -> bool:
    """True when this process's values go to files in PROMETHEUS_MULTIPROC_DIR (a gunicorn worker)."""
    return bool(multiprocess_dir()) and values.ValueClass is not values.MutexValue


def render() -> tuple[bytes, str]:
    """The scrape: every worker's values added up (multiprocess mode), else this process's registry."""
    if _writes_files():
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE
    return generate_latest(REGISTRY), CONTENT_TYPE


def mark_process_dead(pid: int) -> None:
    """For the gunicorn master's ``child_exit``: a dead worker's live-gauge files go (its counters stay)."""
    if multiprocess_dir():
        multiprocess.mark_process_dead(pid)


# -- recording: one function per event ------------------------------------------------------------------------

def request(operation: str | None, method: str, status: int, seconds: float) -> None:
    op = operation or "none"
    REQUESTS.labels(op, method or "", str(status)).inc()
    REQUEST_SECONDS.labels(op).observe(seconds)


def upstream_outcome(status: int | None, error: BaseException | None = None) -> str:
    """The outcome word of one upstream call: its answer's status, or the kind of transport failure."""
    if status is not None:
        if status < 400:
            return "success"
        if status == 429:
            return "rate_limited"
        return "client_error" if status < 500 else "server_error"
    name = type(error).__name__.lower() if error is not None else ""
    if "timeout" in name:
        return "timeout"
    if "connection" in name or "ssl" in name:
        return "connection_error"
    return "error"


def upstream_call(platform: str, outcome: str, seconds: float) -> None:
    name = (platform or "unknown").lower()
    UPSTREAM_CALLS.labels(name, outcome).inc()
    UPSTREAM_SECONDS.labels(name).observe(seconds)


def job_finished(status: str, result_code: str | None) -> None:
    """A job recorded its outcome (``status`` Completed or Failed; the code tells OUTCOME_UNKNOWN apart)."""
    if result_code == "OUTCOME_UNKNOWN":
        outcome = "OUTCOME_UNKNOWN"
    else:
        outcome = "Succeeded" if status == "Completed" else "Failed"
    JOBS.labels(outcome).inc()


def job_accepted() -> None:
    JOBS.labels("Accepted").inc()


def trigger_poll(trigger: str, status: int | str, items: int) -> None:
    TRIGGER_POLLS.labels(trigger, str(status)).inc()
    if items:
        TRIGGER_ITEMS.labels(trigger).inc(items)


def webhook_delivery(outcome: str) -> None:
    WEBHOOK_DELIVERIES.labels(outcome).inc()
