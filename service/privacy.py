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

# Any address form, also embedded in free text: a quoted or plain local part (any script: jöhn, 山田), "@", a
# domain name (IDN too) or an address literal ([192.0.2.1]). Over-matching is fine here: it only masks more.
_LOCAL = r'(?:"[^"\r\n]{0,64}"|[^\s@"\'<>()\[\],;:\\]+)'
_DOMAIN = r'(?:\[[^\]\s]{1,64}\]|[^\s@"\'<>()\[\],;:\\]+)'
_EMAIL_RE = re.compile(_LOCAL + "@" + _DOMAIN)

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


#: the shape every address we accept has (also the one the providers check)
EMAIL_SHAPE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MAX_EMAIL_LENGTH = 254


def email_flaw(text: str) -> str | None:
    """What is wrong with an e-mail address, in words that never repeat it ("has no @", "contains spaces"), or
    None when it has the shape of one (:data:`EMAIL_SHAPE`). ``text`` is the value with surrounding blanks
    removed. A problem says ``f"{field} {flaw}"``: the maker learns which input and why, and no personal value
    (nor a '***' that tells nothing) appears in the answer, the ledger or the log."""
    if len(text) > MAX_EMAIL_LENGTH:
        return f"is longer than {MAX_EMAIL_LENGTH} characters"
    if EMAIL_SHAPE.match(text):
        return None
    if any(ch.isspace() for ch in text):
        return "contains spaces"
    if "@" not in text:
        return "has no @"
    if text.count("@") > 1:
        return "has more than one @"
    local, _, domain = text.partition("@")
    if not local:
        return "has nothing before the @"
    if not domain:
        return "has no domain after the @"
    return "has no complete domain after the @ (a name with a dot, such as example.com)"


def mask_email(email: str | None) -> str | None:
    """``john@example.com`` -> ``j***@example.com`` (any script, quoted local parts, address literals).
    Something that is not an address -> ``***``."""
    if email is None:
        return None
    e = clean_text(email.strip())
    local, sep, domain = e.rpartition("@")
    if not sep or not local or not domain:
        return REDACTED
    first = local[0] if local[0] != '"' else (local[1] if len(local) > 1 else "")
    return f"{first.lower()}{REDACTED}@{domain.lower()}"[:320]


def mask_emails_in_text(text: str) -> str:
    """Every e-mail address inside ``text`` masked."""
    if "@" not in text:
        return text
    return _EMAIL_RE.sub(lambda m: mask_email(m.group(0)) or REDACTED, text)


def clean_text(text: str) -> str:
    """Text any database stores: NUL removed (PostgreSQL refuses it), lone surrogates replaced (not UTF-8)."""
    if "\x00" in text:
        text = text.replace("\x00", "")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "replace").decode("utf-8")
    return text


def json_safe(value: Any, _depth: int = 0) -> Any:
    """A copy that every backend's JSON column accepts: clean strings, no NaN/Infinity, bounded depth."""
    if _depth > MAX_DEPTH:
        return REDACTED
    if value is None or isinstance(value, (bool, int)):
        return value
    if isinstance(value, float):
        return value if value == value and value not in (float("inf"), float("-inf")) else str(value)
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, Mapping):
        return {clean_text(str(k)): json_safe(v, _depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [json_safe(v, _depth + 1) for v in value]
    return clean_text(str(value))


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
    """Free text with known secret values, ``password=...`` pairs, bearer tokens and e-mail addresses hidden
    (and made storable: :func:`clean_text`)."""
    out = clean_text(text)
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
    if isinstance(value, float):
        return json_safe(value)
    if value is None or isinstance(value, (bool, int)):
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


#: input keys whose values are contact or automation field values (personal data): stored as "***"
_VALUE_KEYS = frozenset({"fields", "value", "properties"})
_FIELDS_TEXT_KEYS = frozenset({"fieldsText"})
_PAIR_RE = re.compile(r"(^|[;\n])\s*([^=;\n]*)=([^;\n]*)")


def _mask_values(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k)[:MAX_STRING]: (None if v is None else REDACTED) for k, v in list(value.items())[:MAX_ITEMS]}
    return None if value is None else REDACTED


def redact_inputs(inputs: Mapping[str, Any], *, known_secrets: Iterable[str] = ()) -> dict[str, Any]:
    """The inputs of a call fit for the ledger: :func:`redact`, and field values replaced by ``***`` (the field
    names stay, so the record still shows what was asked)."""
    out = redact(inputs, known_secrets=known_secrets)
    if not isinstance(out, dict):
        return {"body": out}
    for key in list(out):
        if key in _VALUE_KEYS:
            out[key] = _mask_values(out[key])
        elif key in _FIELDS_TEXT_KEYS and isinstance(out[key], str):
            out[key] = _PAIR_RE.sub(lambda m: f"{m.group(1)}{m.group(2).strip()}={REDACTED}", out[key])
    return out


_QUOTED_RE = re.compile(r"'([^']{24,})'|\"([^\"]{24,})\"")


def shorten_quoted(text: str, keep: int = 16) -> str:
    """Quoted values longer than 24 characters cut to their first ``keep`` characters (a bad value is never
    echoed at full length)."""
    if "'" not in text and '"' not in text:
        return text

    def cut(m: re.Match) -> str:
        quote = "'" if m.group(1) is not None else '"'
        value = m.group(1) if m.group(1) is not None else m.group(2)
        return f"{quote}{value[:keep]}…{quote}"

    return _QUOTED_RE.sub(cut, text)


def scrub_log_text(text: str) -> str:
    """A log message without clear e-mail addresses, secrets or long echoed values."""
    return shorten_quoted(redact_text(text))
