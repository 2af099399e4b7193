"""Privacy helpers: masking and keyed hashing of e-mail addresses, redaction of secrets.

Used by the job ledger (nothing personal or secret is stored in clear) and usable by logging code.
Pure functions, no I/O, no framework imports.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping
from typing import Any

#: what replaces a secret value
REDACTED = "***"

# A pragmatic e-mail pattern (finds addresses embedded in free text too).
_EMAIL_RE = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)+")

# Key names (normalised: lower case, only letters and digits) whose values are secrets.
_SECRET_EXACT = frozenset({
    "password", "passwd", "pwd", "pass", "passphrase", "secret", "token", "auth", "authorization",
    "proxyauthorization", "cookie", "setcookie", "credentials", "credential", "signature", "sessionid",
    "session", "pin", "otp", "ssn", "iban", "creditcard", "cardnumber", "cvv", "cvc", "key",
})
_SECRET_PARTS = ("password", "passwd", "secret", "token", "apikey", "authorization", "privatekey", "credential",
                 "bearer", "signature", "cookie")
# key=value / key: value pairs inside free text (e.g. fieldsText "a=b;password=x")
_INLINE_SECRET_RE = re.compile(
    r"(?i)\b((?:[a-z0-9_.-]*(?:password|passwd|secret|token|api[_-]?key|apikey|authorization|private[_-]?key)"
    r"[a-z0-9_.-]*)\s*[=:]\s*)(\"[^\"]*\"|'[^']*'|[^\s;,&}]+)"
)
_BEARER_RE = re.compile(r"(?i)\b(bearer|basic|oauth)\s+[A-Za-z0-9._~+/=-]{6,}")

#: caps that keep ledger rows small
MAX_STRING = 1000
MAX_ITEMS = 200
MAX_DEPTH = 12


# ---------------------------------------------------------------------------------------------------------
# E-mail addresses
# ---------------------------------------------------------------------------------------------------------


def normalize_email(email: str) -> str:
    """The form used for hashing and comparisons: surrounding blanks removed, lower case."""
    return email.strip().lower()


def mask_email(email: str | None) -> str | None:
    """``john@example.com`` -> ``j***@example.com``. Something that is not an address -> ``***``."""
    if email is None:
        return None
    e = email.strip()
    local, sep, domain = e.rpartition("@")
    if not sep or not local or not domain:
        return REDACTED
    return f"{local[0].lower()}{REDACTED}@{domain.lower()}"


def mask_emails_in_text(text: str) -> str:
    """Every e-mail address inside ``text`` masked."""
    if "@" not in text:
        return text
    return _EMAIL_RE.sub(lambda m: mask_email(m.group(0)) or REDACTED, text)


def email_hash(email: str, key: bytes) -> str:
    """Keyed hash (HMAC-SHA256, hex) of the normalised address: filterable, not reversible without the key."""
    if not key:
        raise ValueError("email_hash needs a non-empty key")
    return hmac.new(key, normalize_email(email).encode("utf-8"), hashlib.sha256).hexdigest()


# ---------------------------------------------------------------------------------------------------------
# Secrets
# ---------------------------------------------------------------------------------------------------------


def api_key_id(api_key: str) -> str:
    """A stable, non-reversible identifier of an API key (first 12 hex digits of its SHA-256)."""
    return hashlib.sha256(api_key.encode("utf-8")).hexdigest()[:12]


def _norm_key(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch.isalnum())


def is_secret_key(name: str) -> bool:
    """True for key names such as password, clientSecret, api_key, Authorization, x-api-key, accessToken."""
    k = _norm_key(name)
    if not k:
        return False
    if k in _SECRET_EXACT or k.endswith("key") or k.endswith("keys"):
        return True
    return any(part in k for part in _SECRET_PARTS)


def redact_text(text: str, known_secrets: Iterable[str] = ()) -> str:
    """Free text with known secret values, ``password=...`` pairs, bearer tokens and e-mail addresses hidden."""
    out = text
    for s in known_secrets:
        if s and len(s) >= 4 and s in out:
            out = out.replace(s, REDACTED)
    out = _INLINE_SECRET_RE.sub(lambda m: m.group(1) + REDACTED, out)
    out = _BEARER_RE.sub(lambda m: m.group(1) + " " + REDACTED, out)
    return mask_emails_in_text(out)


def redact(value: Any, *, known_secrets: Iterable[str] = (), _depth: int = 0) -> Any:
    """A JSON-safe copy of ``value`` fit for storage and logs.

    - values under secret-looking keys (see :func:`is_secret_key`) become ``***``;
    - e-mail addresses anywhere in strings are masked (``j***@example.com``);
    - ``known_secrets`` (e.g. the caller's API key) are removed wherever they appear;
    - long strings and lists are truncated (:data:`MAX_STRING`, :data:`MAX_ITEMS`), deep nesting is cut.
    """
    secrets = tuple(s for s in known_secrets if s)
    if _depth > MAX_DEPTH:
        return REDACTED
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, str):
        s = redact_text(value, secrets)
        return s if len(s) <= MAX_STRING else s[:MAX_STRING] + "…"
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for k, v in value.items():
            key = redact_text(str(k), secrets)
            out[key] = REDACTED if is_secret_key(str(k)) and v is not None else redact(
                v, known_secrets=secrets, _depth=_depth + 1)
        return out
    if isinstance(value, (list, tuple, set, frozenset)):
        items = list(value)
        out_list = [redact(v, known_secrets=secrets, _depth=_depth + 1) for v in items[:MAX_ITEMS]]
        if len(items) > MAX_ITEMS:
            out_list.append(f"… {len(items) - MAX_ITEMS} more")
        return out_list
    return redact(str(value), known_secrets=secrets, _depth=_depth + 1)


def redact_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Headers safe to log: secret-looking ones (Authorization, X-Api-Key, Cookie, ...) hidden."""
    return {k: (REDACTED if is_secret_key(k) else redact_text(str(v))) for k, v in headers.items()}
