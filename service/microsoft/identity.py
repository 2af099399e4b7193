"""Tokens for Dataverse from Microsoft Entra ID, through msal's ``ConfidentialClientApplication``.

One :class:`MsalIdentity` per process (built lazily after the gunicorn fork), holding ONE
``ConfidentialClientApplication`` and so one token cache (msal guards it with a lock: thread-safe):

* **as the app** (API-key connections, app-only callers): ``acquire_token_for_client`` - msal serves the
  cached token until shortly before it expires, then asks Entra ID again;
* **on behalf of the signed-in user** (Entra ID connections): ``acquire_token_on_behalf_of`` with the
  caller's incoming token. msal never reads its cache for OBO (msal-python#265), so the results are kept in a
  small bounded cache of our own, per (tenant, user, resource), until ``REFRESH_MARGIN`` seconds before they
  expire; msal's cache keeps only app tokens (:class:`_AppTokenCache`), so it does not grow with every user.

Concurrent first calls for the same token wait for one request (single flight per cache key) instead of each
asking Entra ID. msal talks through our ``requests.Session``: the CA bundle is trusted explicitly
(``verify``), the environment is not (``trust_env=False``: ``REQUESTS_CA_BUNDLE`` would override ``verify``),
and every call has connect/read timeouts. Errors become :class:`TokenAcquisitionError`; neither the secret
nor a token is ever logged.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import msal
import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from service.microsoft.errors import TokenAcquisitionError

log = logging.getLogger(__name__)

#: a cached token is used until this many seconds before it expires
REFRESH_MARGIN = 300
OBO_CACHE_SIZE = 2048
_GRANT_OBO = "urn:ietf:params:oauth:grant-type:jwt-bearer"


@dataclass(frozen=True)
class IdentityConfig:
    authority_host: str
    tenant_id: str
    client_id: str
    credential: str | dict[str, str] = field(repr=False)
    ca_bundle: str | None = None
    connect_timeout: float = 3.05
    read_timeout: float = 10.0

    @property
    def authority(self) -> str:
        return f"{self.authority_host.rstrip('/')}/{self.tenant_id}"


class HttpClient(requests.Session):
    """The session msal uses: explicit CA trust, no environment, a default (connect, read) timeout."""

    def __init__(self, *, verify: str | bool, timeout: tuple[float, float]) -> None:
        super().__init__()
        self.verify = verify
        self.trust_env = False
        self._timeout = timeout
        adapter = HTTPAdapter(max_retries=Retry(total=1, connect=1, read=0, status=0, other=0,
                                                allowed_methods=frozenset({"GET"})))
        self.mount("https://", adapter)
        self.mount("http://", adapter)
        self.headers["User-Agent"] = "marketing-actions"

    def request(self, method, url, *args, **kwargs):  # noqa: D102 - requests' signature
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self._timeout
        return super().request(method, url, *args, **kwargs)


class _AppTokenCache(msal.TokenCache):
    """msal's cache, keeping app tokens only: OBO results live in MsalIdentity's bounded cache instead."""

    def add(self, event, **kwargs):  # noqa: D102
        if event.get("grant_type") == _GRANT_OBO:
            return None
        return super().add(event, **kwargs)


def _error(result: dict[str, Any], what: str) -> TokenAcquisitionError:
    """Map msal's error dict. Only stable, non-secret parts are kept (error name and AADSTS code)."""
    error = str(result.get("error") or "unknown_error")
    codes = result.get("error_codes") or []
    aadsts = f"AADSTS{codes[0]}" if codes else None
    if error == "invalid_client":
        code, detail = "DATAVERSE_APP_CREDENTIALS_INVALID", "the service's app credentials were refused"
    elif 65001 in codes or result.get("suberror") == "consent_required":
        code, detail = "DATAVERSE_CONSENT_REQUIRED", "the app has no consent to call Dataverse for this user"
    elif error == "invalid_grant":
        code, detail = "DATAVERSE_OBO_FAILED", "Microsoft Entra ID did not accept the user's token for Dataverse"
    elif error in ("invalid_scope", "invalid_resource", "unauthorized_client", "invalid_tenant"):
        code, detail = "DATAVERSE_APP_MISCONFIGURED", "the app registration does not allow this Dataverse token"
    else:
        code, detail = "DATAVERSE_TOKEN_FAILED", "Microsoft Entra ID did not issue a token"
    transient = error in ("temporarily_unavailable", "server_error")
    suffix = f" ({aadsts})" if aadsts else f" ({error})"
    return TokenAcquisitionError(f"{what}: {detail}{suffix}.", code=code, upstream_code=aadsts or error,
                                 transient=transient)


class _Entry:
    __slots__ = ("token", "expires_at", "lock")

    def __init__(self) -> None:
        self.token: str | None = None
        self.expires_at = 0.0
        self.lock = threading.Lock()


class MsalIdentity:
    """Dataverse tokens as the app or on behalf of a user. Thread-safe; one per process."""

    def __init__(self, config: IdentityConfig, *, obo_cache_size: int = OBO_CACHE_SIZE,
                 clock=time.monotonic) -> None:
        self.config = config
        self._clock = clock
        self._lock = threading.Lock()
        self._app: msal.ConfidentialClientApplication | None = None
        self._pid: int | None = None
        self._app_locks: dict[str, threading.Lock] = {}
        self._obo: OrderedDict[tuple[str, ...], _Entry] = OrderedDict()
        self._obo_cache_size = obo_cache_size

    # -- the msal application ---------------------------------------------------------------------------
    def _application(self) -> msal.ConfidentialClientApplication:
        pid = os.getpid()
        app = self._app
        if app is not None and self._pid == pid:
            return app
        with self._lock:
            if self._app is None or self._pid != pid:
                cfg = self.config
                http = HttpClient(verify=cfg.ca_bundle or True, timeout=(cfg.connect_timeout, cfg.read_timeout))
                try:  # the constructor reads the authority's OpenID configuration (one GET)
                    self._app = msal.ConfidentialClientApplication(
                        cfg.client_id, client_credential=cfg.credential, authority=cfg.authority,
                        http_client=http, token_cache=_AppTokenCache(), instance_discovery=False,
                        app_name="marketing-actions")
                except (requests.RequestException, OSError) as exc:
                    raise TokenAcquisitionError(
                        f"Microsoft Entra ID could not be reached ({type(exc).__name__}).",
                        code="ENTRA_UNAVAILABLE", transient=True) from None
                except ValueError:
                    raise TokenAcquisitionError("Microsoft Entra ID's OpenID configuration could not be read "
                                                "(check ENTRA_AUTHORITY_HOST and ENTRA_TENANT_ID).",
                                                code="ENTRA_UNAVAILABLE", transient=True) from None
                self._pid = pid
            return self._app

    # -- as the app -------------------------------------------------------------------------------------
    def app_token(self, resource: str) -> str:
        """An app-only access token for ``resource`` (e.g. the Dataverse URL); msal's cache first."""
        scope = f"{resource.rstrip('/')}/.default"
        with self._lock:
            lock = self._app_locks.setdefault(scope, threading.Lock())
        with lock:  # single flight: concurrent cold calls wait for one token request
            app = self._application()
            try:
                result = app.acquire_token_for_client(scopes=[scope])
            except requests.RequestException as exc:
                raise TokenAcquisitionError(f"Microsoft Entra ID could not be reached ({type(exc).__name__}).",
                                            code="ENTRA_UNAVAILABLE", transient=True) from None
        if "access_token" not in result:
            raise _error(result, "Dataverse token for the app")
        return result["access_token"]

    # -- on behalf of the user --------------------------------------------------------------------------
    def user_token(self, assertion: str, *, tenant_id: str, object_id: str, resource: str) -> str:
        """An access token for ``resource`` on behalf of the user whose validated token is ``assertion``."""
        resource = resource.rstrip("/")
        key = (tenant_id, object_id, resource)
        entry = self._obo_entry(key)
        with entry.lock:
            now = self._clock()
            if entry.token is not None and entry.expires_at - REFRESH_MARGIN > now:
                return entry.token
            app = self._application()
            try:
                result = app.acquire_token_on_behalf_of(user_assertion=assertion,
                                                        scopes=[f"{resource}/user_impersonation"])
            except requests.RequestException as exc:
                raise TokenAcquisitionError(f"Microsoft Entra ID could not be reached ({type(exc).__name__}).",
                                            code="ENTRA_UNAVAILABLE", transient=True) from None
            if "access_token" not in result:
                raise _error(result, "Dataverse token on behalf of the user")
            entry.token = result["access_token"]
            entry.expires_at = now + float(result.get("expires_in") or 0)
            return entry.token

    def _obo_entry(self, key: tuple[str, ...]) -> _Entry:
        with self._lock:
            entry = self._obo.get(key)
            if entry is None:
                entry = self._obo[key] = _Entry()
                while len(self._obo) > self._obo_cache_size:
                    self._obo.popitem(last=False)  # the least recently used user
            else:
                self._obo.move_to_end(key)
            return entry
