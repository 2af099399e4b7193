"""Low-level Spoki API v1 client: API-key auth, DRF pages, error mapping. Raises only our error types.

- ``X-Spoki-Api-Key`` is sent per request to ``/api/1/...`` only, never to the Start Automation webhook
  (``webhook_set[].link``, which authenticates with the start step's secret in the body).
- Pages ``{count, next, previous, results}`` are walked by following ``next`` verbatim; a bare JSON array
  is accepted too.
- Errors: ``{"detail": ...}``, field errors ``{"field": ["msg"]}``, ``{"error", "error_code"}`` or
  ``{"title"}`` become NotFound / InvalidInput / AuthFailed / Forbidden / RateLimited / Unavailable /
  UpstreamTimeout, with the field errors in ``details["errors"]``.
- Transport: the shared session policy (service.providers.http): timeouts on every call, retries for
  idempotent methods only (POST is never retried once it reached Spoki).
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urljoin

import requests

from service.providers import errors
from service.providers.http import (
    LazySession,
    UnsafeCallGuard,
    error_for_status,
    map_request_exception,
    parse_retry_after,
    send_unsafe,
)
from service.providers.spoki.config import SpokiConfig

log = logging.getLogger(__name__)

UPSTREAM = "Spoki"
_TIER_WORDS = ("plan", "permission", "subscription", "upgrade", "not allowed")


def error_message(body: Any) -> tuple[str, dict[str, Any]]:
    """(a readable message, field errors) from one of Spoki's error shapes."""
    if isinstance(body, dict):
        for key in ("detail", "error", "title", "message"):
            if isinstance(body.get(key), str) and body[key].strip():
                return body[key].strip(), {}
        field_errors = {k: v for k, v in body.items() if k not in ("code", "error_code", "status")}
        parts = []
        for k, v in field_errors.items():
            msgs = v if isinstance(v, list) else [v]
            flat = []
            for m in msgs:
                flat.append(error_message(m)[0] if isinstance(m, (dict, list)) else str(m))
            flat = [m for m in flat if m]
            if flat:
                parts.append(f"{k}: {' '.join(flat)}" if k != "non_field_errors" else " ".join(flat))
        return "; ".join(parts), field_errors
    if isinstance(body, list):
        msgs = [error_message(x)[0] if isinstance(x, (dict, list)) else str(x) for x in body]
        return "; ".join(m for m in msgs if m), {}
    return "", {}


class SpokiClient:
    def __init__(self, config: SpokiConfig) -> None:
        self.config = config
        self._session = LazySession("spoki", config.http_settings, headers={"Accept": "application/json"})

    def close(self) -> None:
        self._session.close()

    def url(self, path: str) -> str:
        if path.startswith(("http://", "https://")):
            return path
        base = self.config.base_url.rstrip("/")
        if path.startswith("/"):
            return base + path
        return base + self.config.api_prefix.rstrip("/") + "/" + path

    def request(self, method: str, path: str, *, params: dict[str, Any] | None = None, body: Any = None,
                api_key: bool = True, repeatable: bool = True, guard: UnsafeCallGuard | None = None) -> Any:
        """The decoded JSON answer (None for an empty body). ``path`` may be relative to the API prefix,
        absolute on the base URL (``/api/1/...``) or a full URL.

        ``repeatable=False`` for a call that is not safe to repeat (the automation start webhook; every other
        call Spoki gets from us is a read, an upsert by phone or a list change): it goes through
        :func:`~service.providers.http.send_unsafe` (``guard`` is told before it is sent; a lost answer raises
        OutcomeUnknown)."""
        headers = {"X-Spoki-Api-Key": self.config.api_key} if api_key else {}
        kw: dict[str, Any] = {"params": params, "headers": headers, "timeout": self.config.http_settings.timeout}
        if body is not None:
            kw["json"] = body
        call = "start_automation" if not api_key else f"{method} {path}"
        if not repeatable:
            resp = send_unsafe(guard, call, lambda: self._session.get().request(method, self.url(path), **kw),
                               upstream=UPSTREAM)
        else:
            try:
                resp = self._session.get().request(method, self.url(path), **kw)
            except requests.RequestException as exc:
                raise map_request_exception(exc, upstream=UPSTREAM) from exc
        if resp.status_code >= 300:
            raise self._error(resp)
        if not resp.content or not resp.content.strip():
            return None
        try:
            return resp.json()
        except ValueError:
            if method.upper() == "POST" and not api_key:
                return None  # the start webhook is documented to answer 200 with an empty body; tolerate text
            raise errors.Unavailable("Spoki answered with a body that is not JSON.",
                                     upstream_status=resp.status_code) from None

    def paginate(self, path: str, params: dict[str, Any] | None = None) -> list[Any]:
        """Every item of a DRF list, following ``next`` (bounded by ``max_pages``)."""
        params = dict(params or {})
        if self.config.page_size:
            params.setdefault("page_size", self.config.page_size)
        items: list[Any] = []
        url: str | None = path
        for _ in range(self.config.max_pages):
            page = self.request("GET", url, params=params)
            if isinstance(page, list):
                return items + page
            if not isinstance(page, dict):
                return items
            items.extend(page.get("results") or [])
            nxt = page.get("next")
            if not nxt:
                return items
            url = urljoin(self.url(path), nxt)
            params = None  # ``next`` carries the query string
        log.warning("spoki: stopped after %d pages of %s", self.config.max_pages, path)
        return items

    def _error(self, resp: requests.Response) -> errors.ProviderError:
        status = resp.status_code
        try:
            body = resp.json()
        except ValueError:
            body = None
        message, field_errors = error_message(body)
        details = {"errors": field_errors} if field_errors else {}
        error_type = None
        if isinstance(body, dict):
            error_type = body.get("error_code") or body.get("code")
            error_type = str(error_type) if error_type else None
        retry_after = parse_retry_after(resp.headers.get("Retry-After"))
        if status == 401 or (status == 403 and not any(w in message.lower() for w in _TIER_WORDS)):
            return errors.AuthFailed(
                "Spoki refused the API key (wrong, not yet approved or inactive); check SPOKI_API_KEY"
                + (f" ({message.rstrip('.')})." if message else "."),
                upstream_status=status, error_type=error_type)
        if status == 403:
            return errors.Forbidden(f"Spoki does not allow this call for this account: {message}",
                                    upstream_status=status, error_type=error_type)
        if status == 400:
            return errors.InvalidInput(f"Spoki rejected the input: {message or 'invalid request'}".rstrip(".") + ".",
                                       upstream_status=status, error_type=error_type, details=details)
        if status == 429:
            return errors.RateLimited("Spoki asks to slow down (rate limit reached).", retry_after=retry_after,
                                      upstream_status=status, error_type=error_type)
        text = f"Spoki answered HTTP {status}" + (f": {message}" if message else "")
        return error_for_status(status, text.rstrip(".") + ".", error_type=error_type, retry_after=retry_after,
                                details=details)
