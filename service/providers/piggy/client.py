"""Low-level Piggy (Leat) API v3 client: auth, envelope, error mapping. Raises only our error types.

- Auth: a Personal Access Token, or OAuth2 client credentials (``POST /oauth/token``; there is no refresh
  grant, so a new token is requested shortly before ``expires_in`` runs out, and once more when a call
  answers 401). The token and its expiry live in this instance, guarded by a lock.
- Bodies are form-encoded with PHP-style keys like the official SDK (``attributes[firstname]=x``), or JSON.
- Errors ``{status_code, code, message, errors}`` become NotFound / InvalidInput / AuthFailed / Forbidden /
  RateLimited / Unavailable / UpstreamTimeout; the Piggy code is kept as ``error_type`` (e.g. ``"55031"``) and
  the field errors in ``details["errors"]``.
- Transport: one shared session (service.providers.http): connect+read timeouts on every call, urllib3 retries
  for idempotent methods only; POSTs are never retried once they reached the server.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

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
from service.providers.piggy.config import PiggyConfig

log = logging.getLogger(__name__)

UPSTREAM = "Piggy"
CODE_INVALID_INPUT = 1003
CODE_CONTACT_NOT_FOUND = 55031
#: several contacts have the e-mail address of a lookup [G] (service/sandbox/piggy/app.py says why)
CODE_SEVERAL_CONTACTS = 55032
CODE_MODEL_NOT_FOUND = 60013


def php_form(data: dict[str, Any]) -> list[tuple[str, str]]:
    """Flatten like PHP's ``http_build_query``: nested dicts/lists -> ``a[b][0]=x``; bools -> 1/0; None -> ''."""
    out: list[tuple[str, str]] = []

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            if not value:
                out.append((prefix, ""))
            for k, v in value.items():
                walk(f"{prefix}[{k}]", v)
        elif isinstance(value, (list, tuple)):
            if not value:
                out.append((prefix, ""))
            for i, v in enumerate(value):
                walk(f"{prefix}[{i}]", v)
        elif value is None:
            out.append((prefix, ""))
        elif isinstance(value, bool):
            out.append((prefix, "1" if value else "0"))
        else:
            out.append((prefix, str(value)))

    for key, value in data.items():
        walk(str(key), value)
    return out


def _flatten_errors(errs: Any) -> list[str]:
    if isinstance(errs, dict):
        msgs = []
        for field_name, v in errs.items():
            for m in v if isinstance(v, list) else [v]:
                msgs.append(str(m) if str(field_name) in str(m) else f"{field_name}: {m}")
        return msgs
    if isinstance(errs, list):
        return [str(e) for e in errs]
    return [str(errs)] if errs else []


class PiggyClient:
    def __init__(self, config: PiggyConfig, *, clock: Callable[[], float] | None = None) -> None:
        self.config = config
        self._clock = clock or time.monotonic
        headers = {"Accept": "application/json"}
        if config.partner_id:
            headers["X-Partner-ID"] = config.partner_id
        self._session = LazySession("piggy", config.http_settings, headers=headers)
        self._token_lock = threading.Lock()
        self._token: str | None = None
        self._token_expires_at = 0.0
        self.tokens_fetched = 0  # observability (tests, logs); never the token itself

    def close(self) -> None:
        self._session.close()

    # -- auth -------------------------------------------------------------------------------------------
    def _bearer(self, *, stale: str | None = None) -> str:
        if self.config.api_token:
            return self.config.api_token
        with self._token_lock:
            fresh = self._token is not None and self._clock() < self._token_expires_at
            if fresh and (stale is None or self._token != stale):
                return self._token  # type: ignore[return-value]
            self._token, self._token_expires_at = self._fetch_token()
            return self._token

    def _fetch_token(self) -> tuple[str, float]:
        cfg = self.config
        body = {"grant_type": "client_credentials", "client_id": cfg.client_id, "client_secret": cfg.client_secret}
        started = self._clock()
        resp = self._send("POST", cfg.base_url.rstrip("/") + cfg.token_path, body=body, headers={})
        if resp.status_code in (400, 401, 403, 422):
            raise errors.AuthFailed("Piggy refused the OAuth client credentials; check PIGGY_CLIENT_ID and "
                                    "PIGGY_CLIENT_SECRET.", upstream_status=resp.status_code,
                                    error_type=self._piggy_code(resp))
        if resp.status_code >= 300:
            raise self._error(resp)
        try:
            payload = resp.json()
            token = str(payload["access_token"])
            expires_in = float(payload.get("expires_in") or 0)
        except (ValueError, KeyError, TypeError):
            raise errors.Unavailable("Piggy answered the token request with an unexpected body.",
                                     upstream_status=resp.status_code) from None
        margin = min(cfg.token_refresh_margin, expires_in / 2)
        self.tokens_fetched += 1
        log.info("piggy: obtained an OAuth access token (expires in %.0f s)", expires_in)
        return token, started + expires_in - margin

    # -- transport --------------------------------------------------------------------------------------
    def _send(self, method: str, url: str, *, params: dict[str, Any] | None = None, body: Any = None,
              headers: dict[str, str]) -> requests.Response:
        kw: dict[str, Any] = {"params": params, "headers": headers, "timeout": self.config.http_settings.timeout}
        if body is not None:
            if self.config.body_encoding == "json":
                kw["json"] = body
            else:
                kw["data"] = php_form(body)
        try:
            return self._session.get().request(method, url, **kw)
        except requests.RequestException as exc:
            raise map_request_exception(exc, upstream=UPSTREAM) from exc

    def request(self, method: str, path: str, *, params: dict[str, Any] | None = None, body: Any = None,
                repeatable: bool = True, guard: UnsafeCallGuard | None = None) -> Any:
        """Call ``api_prefix + path`` and return the envelope's ``data``.

        ``repeatable=False`` for a call that is not safe to repeat (``POST automations/runs``; every other call
        Piggy gets from us is a read, an upsert or a set): it goes through
        :func:`~service.providers.http.send_unsafe` (``guard`` is told before it is sent; a lost answer raises
        OutcomeUnknown)."""
        cfg = self.config
        if path.startswith("/"):
            url = cfg.base_url.rstrip("/") + path
        else:
            url = cfg.base_url.rstrip("/") + cfg.api_prefix.rstrip("/") + "/" + path
        token = self._bearer()
        if not repeatable:
            resp = send_unsafe(guard, f"{method} {path}", lambda: self._send(
                method, url, params=params, body=body, headers={"Authorization": f"Bearer {token}"}),
                upstream=UPSTREAM)
        else:
            resp = self._send(method, url, params=params, body=body, headers={"Authorization": f"Bearer {token}"})
        if resp.status_code == 401 and not cfg.api_token:
            # the token expired or was revoked: a 401 means the call was not applied, so one retry is safe
            log.info("piggy: access token refused, requesting a new one")
            token = self._bearer(stale=token)
            resp = self._send(method, url, params=params, body=body, headers={"Authorization": f"Bearer {token}"})
        if resp.status_code >= 300:
            raise self._error(resp)
        try:
            payload = resp.json()
        except ValueError:
            raise errors.Unavailable("Piggy answered with a body that is not JSON.",
                                     upstream_status=resp.status_code) from None
        if not isinstance(payload, dict) or "data" not in payload:
            raise errors.Unavailable("Piggy answered without the expected data envelope.",
                                     upstream_status=resp.status_code)
        return payload["data"]

    # -- errors -----------------------------------------------------------------------------------------
    @staticmethod
    def _piggy_code(resp: requests.Response) -> str | None:
        try:
            body = resp.json()
        except ValueError:
            return None
        return str(body["code"]) if isinstance(body, dict) and body.get("code") is not None else None

    def _error(self, resp: requests.Response) -> errors.ProviderError:
        status = resp.status_code
        try:
            body = resp.json()
        except ValueError:
            body = None
        body = body if isinstance(body, dict) else {}
        code = body.get("code")
        message = str(body.get("message") or "").strip()
        field_errors = body.get("errors") or {}
        retry_after = parse_retry_after(resp.headers.get("Retry-After"))
        details = {"errors": field_errors} if field_errors else {}
        error_type = str(code) if code is not None else None

        if status == 401:
            if self.config.api_token:
                text = "Piggy refused the access token; check PIGGY_API_TOKEN (it may have expired)."
            else:
                text = "Piggy refused a freshly issued access token; check the OAuth client's permissions."
            return errors.AuthFailed(text, upstream_status=status, error_type=error_type)
        if status == 403:
            return errors.Forbidden(f"Piggy does not allow this call for this account: {message or 'forbidden'}.",
                                    upstream_status=status, error_type=error_type)
        if status == 503:
            return errors.Unavailable("Piggy is unavailable (maintenance mode); try again later.",
                                      retry_after=retry_after, upstream_status=status, error_type=error_type)
        if code == CODE_CONTACT_NOT_FOUND:
            return errors.NotFound("Piggy has no such contact.", code="CONTACT_NOT_FOUND",
                                   upstream_status=status, error_type=error_type)
        if code == CODE_SEVERAL_CONTACTS:
            uuids = field_errors.get("contact_uuid") if isinstance(field_errors, dict) else None
            return errors.AmbiguousContact("Piggy", [(str(u), None) for u in uuids or [] if u])
        if code == CODE_MODEL_NOT_FOUND:
            return errors.NotFound(f"Piggy did not find the item: {message or 'model not found'}",
                                   upstream_status=status, error_type=error_type)
        if code == CODE_INVALID_INPUT or status in (400, 422):
            parts = _flatten_errors(field_errors)
            text = f"Piggy rejected the input: {'; '.join(parts)}" if parts else \
                f"Piggy rejected the input: {message or 'invalid input'}"
            return errors.InvalidInput(text.rstrip(".") + ".", upstream_status=status, error_type=error_type,
                                       details=details)
        text = f"Piggy answered HTTP {status}" + (f": {message}" if message else "")
        return error_for_status(status, text.rstrip(".") + ".", error_type=error_type, retry_after=retry_after,
                                details=details)
