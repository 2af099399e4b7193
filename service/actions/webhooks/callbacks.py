"""Calling a flow's callback URL, safely: only allowed hosts, checked before any connection (also the target of a
redirect, which is never followed), connect and read timeouts, the answer read up to a cap.

A Power Automate callback URL (``https://prod-NN.<region>.logic.azure.com/workflows/<id>/triggers/...
?api-version=...&sp=...&sv=1.0&sig=...``) carries its own SAS signature: whoever holds it can start the flow.
It is a secret: stored sealed, and logged only as host and path (:func:`hint`).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter

from service.providers.http import parse_retry_after

log = logging.getLogger(__name__)

#: Power Automate / Logic Apps callback hosts (public, US government, China clouds)
DEFAULT_ALLOWED_HOSTS = ("*.logic.azure.com", "*.logic.azure.us", "*.logic.azure.cn")
#: also allowed in sandbox mode (the callback simulator), and the only hosts that may be called over http
LOOPBACK_HOSTS = ("127.0.0.1", "localhost")
MAX_URL_LENGTH = 4096
#: how much of a callback's answer is read (enough for an error code)
MAX_ANSWER_BYTES = 64 * 1024


class CallbackRefused(ValueError):
    """The callback URL is not one we call. ``reason`` is safe to show (it names no secret)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class HostPolicy:
    """``patterns``: exact host names, or ``*.domain`` for any host under that domain (not the domain itself)."""

    patterns: tuple[str, ...] = DEFAULT_ALLOWED_HOSTS

    def allows(self, host: str) -> bool:
        host = host.lower().rstrip(".")
        for pattern in self.patterns:
            p = pattern.lower().strip()
            if p.startswith("*."):
                if host.endswith(p[1:]) and len(host) > len(p) - 1:
                    return True
            elif host == p:
                return True
        return False

    def check(self, url: str) -> tuple[str, str]:
        """``(host, path)`` of an acceptable callback URL; raises CallbackRefused."""
        if not isinstance(url, str) or not url or len(url) > MAX_URL_LENGTH:
            raise CallbackRefused(f"the callback URL must be 1 to {MAX_URL_LENGTH} characters")
        try:
            parts = urlsplit(url)
            host = parts.hostname or ""
            parts.port  # noqa: B018 - raises ValueError on a bad port
        except ValueError:
            raise CallbackRefused("the callback URL is not a valid URL") from None
        if parts.scheme not in ("https", "http") or not host:
            raise CallbackRefused("the callback URL must be an https:// URL")
        if parts.username or parts.password:
            raise CallbackRefused("the callback URL must not carry a user name or password")
        if not self.allows(host):
            raise CallbackRefused(f"the callback host {host} is not allowed (CALLBACK_ALLOWED_HOSTS)")
        if parts.scheme == "http" and host not in LOOPBACK_HOSTS:
            raise CallbackRefused("the callback URL must be an https:// URL")
        return host, parts.path or "/"


def hint(url: str) -> str:
    """Host and path of a callback URL (what may be logged or stored in clear), without the query."""
    try:
        parts = urlsplit(url)
        return f"{parts.hostname or ''}{parts.path or '/'}"[:300]
    except ValueError:
        return "(invalid URL)"


@dataclass(frozen=True)
class CallbackAnswer:
    """What a callback answered: ``status`` (0: no answer - connection failed, timed out or refused by policy),
    ``code`` (the error code of a Logic Apps error body), ``retry_after`` (seconds) and ``error`` (for logs)."""

    status: int
    code: str | None = None
    retry_after: float | None = None
    error: str | None = None


def callback_session() -> requests.Session:
    """A session for callbacks: no transport retries (the outbox retries), no proxies or .netrc from the
    environment. One per process."""
    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=8, pool_maxsize=16, max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.trust_env = False
    session.headers["User-Agent"] = "marketing-actions-webhooks/1"
    return session


class CallbackClient:
    def __init__(self, session: requests.Session, policy: HostPolicy, *, connect_timeout: float,
                 read_timeout: float) -> None:
        self.session = session
        self.policy = policy
        self.timeout = (connect_timeout, read_timeout)

    def post(self, url: str, body: bytes, headers: dict[str, str]) -> CallbackAnswer:
        try:
            self.policy.check(url)  # every time: the allowed hosts may have changed since the subscription
        except CallbackRefused as exc:
            return CallbackAnswer(0, code="CALLBACK_NOT_ALLOWED", error=exc.reason)
        try:
            resp = self.session.post(url, data=body, headers={"Content-Type": "application/json", **headers},
                                     timeout=self.timeout, allow_redirects=False, stream=True)
        except requests.RequestException as exc:
            return CallbackAnswer(0, error=type(exc).__name__)
        try:
            raw = resp.raw.read(MAX_ANSWER_BYTES, decode_content=True)
        except Exception as exc:  # noqa: BLE001 - a broken answer body is a failed attempt like any other
            raw = b""
            log.debug("callback answer body unreadable: %s", type(exc).__name__)
        finally:
            resp.close()
        return CallbackAnswer(resp.status_code, code=_error_code(raw) if resp.status_code >= 300 else None,
                              retry_after=parse_retry_after(resp.headers.get("Retry-After")),
                              error=None if resp.status_code < 300 else f"HTTP {resp.status_code}")


def _error_code(raw: bytes) -> str | None:
    """``error.code`` of a Logic Apps error answer (``{"error": {"code": "WorkflowTriggerIsNotEnabled", ...}}``)."""
    if not raw:
        return None
    try:
        doc = json.loads(raw)
    except ValueError:
        return None
    err = doc.get("error") if isinstance(doc, dict) else None
    code = err.get("code") if isinstance(err, dict) else None
    return str(code)[:80] if code else None
