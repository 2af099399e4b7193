"""Outermost ASGI middleware: request id, access log, x-ms-* header log, request body limit.

It sits before Connexion's exception middleware, so it sees every request, including the ones that end in
an error, and its request id is in every log line and error body further down.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid

from service import metrics, telemetry
from service.actions.problems import Problem
from service.api import jsonbody
from service.api.answers import PROBLEM_JSON, problem_document
from service.api.resolver import operation_id
from service.config import HOSTED_OPEN_KEY
from service.logs import correlation_from_headers, correlation_var, request_id_var
from service.runtime import runtime_var

log = logging.getLogger("service.access")

REQUEST_ID_HEADERS = (b"x-ms-client-tracking-id", b"x-ms-correlation-id", b"x-request-id")
_SAFE_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
#: x-ms-* headers never logged with their value
_SECRET_HINTS = ("auth", "token", "key", "secret", "signature", "cookie", "password")


#: a webhook's inbound address carries its secret route token (``/hooks/inbound/<token>``)
_SECRET_PATHS = ("/hooks/inbound/",)


def loggable_path(path: str) -> str:
    """The path as it may be logged: a secret path segment is replaced by ``***``."""
    for prefix in _SECRET_PATHS:
        if path.startswith(prefix) and len(path) > len(prefix):
            return prefix + "***"
    return path


def _pick_request_id(headers: dict[bytes, bytes]) -> str:
    for name in REQUEST_ID_HEADERS:
        value = headers.get(name)
        if value:
            text = value.decode("latin-1").strip()
            if _SAFE_ID.match(text):
                return text
    return uuid.uuid4().hex


def ms_headers_for_log(headers: dict[bytes, bytes]) -> dict[str, str]:
    """The x-ms-* headers a caller sent, with secret-looking values redacted."""
    out = {}
    for raw_name, raw_value in headers.items():
        name = raw_name.decode("latin-1").lower()
        if not name.startswith("x-ms-"):
            continue
        value = raw_value.decode("latin-1")
        out[name] = "[redacted]" if any(h in name for h in _SECRET_HINTS) else value[:256]
    return out


class RequestContextMiddleware:
    def __init__(self, app, runtime, max_body_bytes: int = 1024 * 1024) -> None:
        self.app = app
        self.runtime = runtime
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        request_id = _pick_request_id(headers)
        token = request_id_var.set(request_id)
        correlation_token = correlation_var.set(correlation_from_headers(scope.get("headers") or ()) or None)
        runtime_token = runtime_var.set(self.runtime)
        # downstream code (Flask handlers) reads the id from this header
        scope = dict(scope)
        # Connexion's routing writes the operationId into this dict (its own copy of the scope shares it)
        extensions = scope["extensions"] = dict(scope.get("extensions") or {})
        scope["headers"] = [(k, v) for k, v in scope.get("headers", []) if k != b"x-request-id"]
        scope["headers"].append((b"x-request-id", request_id.encode()))
        settings = self.runtime.settings
        if settings.hosted and not settings.api_keys and b"x-api-key" not in headers \
                and b"authorization" not in headers:
            # hosted mode without a publisher key is open: the platform account in the headers is the credential
            scope["headers"].append((b"x-api-key", HOSTED_OPEN_KEY.encode()))
        started = time.perf_counter()
        status_holder = {"status": 0}
        span = telemetry.start_request(scope.get("method") or "", loggable_path(scope.get("path") or ""),
                                       _text_headers(headers)) if telemetry.enabled() else None

        async def send_wrapper(message):
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
                hdrs = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"x-request-id"]
                hdrs.append((b"x-request-id", request_id.encode()))
                message = dict(message, headers=hdrs)
            await send(message)

        try:
            length = headers.get(b"content-length")
            if length is not None and length.isdigit() and int(length) > self.max_body_bytes:
                await self._too_large(send_wrapper, request_id)
                return
            if length is None and scope.get("method") in _BODY_METHODS:
                # a chunked body (no Content-Length): Connexion would take it for "no body" - read it (within
                # the limit) and hand it on with its length
                body = bytearray()
                more = True
                while more:
                    message = await receive()
                    if message["type"] != "http.request":
                        break
                    body += message.get("body", b"")
                    more = message.get("more_body", False)
                    if len(body) > self.max_body_bytes:
                        await self._too_large(send_wrapper, request_id)
                        return
                scope["headers"] = [(k, v) for k, v in scope["headers"] if k not in (b"transfer-encoding",
                                                                                     b"content-length")]
                scope["headers"].append((b"content-length", str(len(body)).encode()))
                receive = _replay(bytes(body), receive)
            received = 0
            too_large = False

            async def receive_wrapper():
                nonlocal received, too_large
                message = await receive()
                if message["type"] == "http.request":
                    received += len(message.get("body", b""))
                    if received > self.max_body_bytes:
                        too_large = True
                        raise _BodyTooLarge()
                return message

            try:
                await self.app(scope, receive_wrapper, send_wrapper)
            except _BodyTooLarge:
                if not status_holder["status"]:
                    await self._too_large(send_wrapper, request_id)
        finally:
            seconds = time.perf_counter() - started
            operation = operation_id((extensions.get("connexion_routing") or {}).get("operation_id"))
            metrics.request(operation, scope.get("method") or "", status_holder["status"], seconds)
            extra = {
                "method": scope.get("method"),
                "path": loggable_path(scope.get("path") or ""),
                "status": status_holder["status"],
                "durationMs": round(seconds * 1000, 2),
            }
            if operation:
                extra["operation"] = operation
            ms = ms_headers_for_log(headers)
            if ms:
                extra["msHeaders"] = ms
            log.info("request", extra=extra)
            telemetry.end_request(span, operation=operation, status=status_holder["status"], request_id=request_id,
                                  correlation=correlation_var.get())
            request_id_var.reset(token)
            correlation_var.reset(correlation_token)
            runtime_var.reset(runtime_token)

    async def _too_large(self, send, request_id: str) -> None:
        problem = Problem(413, "PAYLOAD_TOO_LARGE", "Payload Too Large",
                          f"The request body is larger than {self.max_body_bytes} bytes. Send fewer items per call.")
        body = problem_document(problem, request_id).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", PROBLEM_JSON.encode()),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


class _BodyTooLarge(Exception):
    pass


class ServedSpecMiddleware:
    """The spec served at ``/swagger.json`` (and ``/swagger.yaml``) names the address the caller used.

    ``openapi.yaml`` says ``host: localhost:8000`` and ``schemes: [https, http]``; Swagger UI (``/ui``) sends
    "Try it out" requests to ``schemes[0]://host``. This rewrites ``host``, ``schemes`` and ``basePath`` of the
    served copy from the request (behind proxies: ``X-Forwarded-*`` / ``Forwarded``, through
    :func:`service.api.urls.external_origin`, the one rule for absolute URLs). The file itself is unchanged.
    Connexion renders the document on the first request; later ones are served from that copy.
    """

    SPEC_PATHS = {"/swagger.json": "json", "/swagger.yaml": "yaml"}

    CONTENT_TYPES = {"json": b"application/json", "yaml": b"text/yaml; charset=utf-8"}

    def __init__(self, app) -> None:
        self.app = app
        self._document: dict | None = None  # Connexion's rendering of the spec, fetched once

    async def __call__(self, scope, receive, send):
        kind = self.SPEC_PATHS.get(scope.get("path", "")) if scope["type"] == "http" else None
        if kind is None or scope.get("method") not in ("GET", "HEAD"):
            return await self.app(scope, receive, send)
        if self._document is None:
            start: dict = {}
            chunks: list[bytes] = []

            async def capture(message):
                if message["type"] == "http.response.start":
                    start.update(message)
                elif message["type"] == "http.response.body":
                    chunks.append(message.get("body", b""))

            # the JSON form, also for a YAML request (Connexion's YAML rendering is slow; ours uses libyaml)
            json_scope = {**scope, "method": "GET", "path": "/swagger.json",
                          "raw_path": b"/swagger.json", "query_string": b""}
            await self.app(json_scope, receive, capture)
            body = b"".join(chunks)
            if start.get("status") != 200 or not body:  # pass anything unexpected through as it is
                await send(start)
                await send({"type": "http.response.body", "body": body})
                return
            self._document = json.loads(body)
        body = self._render(self._document, kind, scope)
        headers = [(b"content-type", self.CONTENT_TYPES[kind]), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body if scope.get("method") == "GET" else b""})

    @staticmethod
    def _render(document: dict, kind: str, scope) -> bytes:
        from starlette.datastructures import Headers

        from service.api.urls import external_origin

        headers = Headers(scope=scope)
        server = scope.get("server") or ("localhost", None)
        seen_host = headers.get("host") or (f"{server[0]}:{server[1]}" if server[1] else server[0])
        proto, host, prefix = external_origin(headers, scope.get("scheme", "http"), seen_host)
        base = document.get("basePath") or "/"
        spec = {**document, "host": host, "schemes": [proto],
                "basePath": ((prefix + base).rstrip("/") or "/") if prefix else base}
        if kind == "json":
            return jsonbody.dumps(spec).encode()
        import yaml

        return yaml.dump(spec, Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper), sort_keys=False,
                         allow_unicode=True).encode()


_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def _text_headers(headers: dict[bytes, bytes]) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in headers.items()}


def _replay(body: bytes, receive):
    sent = False

    async def replay():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
