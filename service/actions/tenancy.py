"""Hosted mode (``TENANCY=hosted``, issue 22): who a call's platform account is, and how its credentials are
kept when work continues after the call.

* :func:`check_connection` - the platform account a request names (``X-Platform``, ``X-Platform-Key``,
  ``X-Platform-Secret``), checked: 401 when a part is missing, 400 when malformed, each naming the connection
  parameter the maker fills in.
* :class:`TenantKeys` - the tenant: ``HMAC-SHA256(TENANT_HASH_KEY, platform + account key)``, never the key itself;
  every stateful surface is scoped by it (:func:`scoped_caller`). ``credentials_digest`` keys the per-account
  clients: a hash of ALL the credentials (a right key with a wrong secret never reuses the right one's client).
* :class:`CredentialBox` - AES-GCM seals of a :class:`Connection` (``cryptography``), the row's id as associated
  data, under the keys of ``CREDENTIALS_KEYS`` (``id:secret``; the first seals, every one opens; the key id is
  the token's prefix, so a rotation knows what to re-seal).
* :class:`CredentialStore` - the per-tenant credentials row that polling triggers and webhook syncs use when no
  request brings the credentials (refreshed whenever one does).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import re
import threading
from collections.abc import Sequence
from datetime import UTC, datetime

import cachetools
import sqlalchemy as sa
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy.engine import Engine

from service.actions.connection import (
    KEY_MEANING,
    KEY_PARAMETER,
    LABELS,
    PLATFORM_PARAMETER,
    PLATFORMS,
    SECRET_MEANING,
    SECRET_PARAMETER,
    Connection,
)
from service.actions.problems import ActionError
from service.actions.sealing import Keyring

_CREDENTIAL = re.compile(r"^[\x21-\x7E]{1,512}$")  # printable ASCII, no blanks
#: a tenant-scoped caller id: ``<tenant>/<caller>``
TENANT_PREFIX = "t"


def _missing(parameter: str, detail: str) -> ActionError:
    return ActionError(401, "PLATFORM_CREDENTIALS_MISSING", f"Fill in '{parameter}' in the connection. {detail}",
                       parameter=parameter)


def _malformed(parameter: str, detail: str) -> ActionError:
    return ActionError(400, "PLATFORM_CREDENTIALS_INVALID", f"Check '{parameter}' in the connection: {detail}",
                       parameter=parameter)


def missing_platform() -> ActionError:
    return _missing(PLATFORM_PARAMETER, "Choose the marketing platform (spotler, piggy or spoki).")


def check_connection(platform: str | None, key: str | None, secret: str | None) -> Connection:
    """The account named by the three header values; ActionError 401 (missing) or 400 (malformed)."""
    platform = (platform or "").strip().lower()
    if not platform:
        raise missing_platform()
    if platform not in PLATFORMS:
        raise _malformed(PLATFORM_PARAMETER, "the platform must be spotler, piggy or spoki.")
    key = (key or "").strip()
    if not key:
        raise _missing(KEY_PARAMETER[platform], f"It is {KEY_MEANING[platform]}, from your {LABELS[platform]} "
                       "account's API settings.")
    if not _CREDENTIAL.match(key):
        raise _malformed(KEY_PARAMETER[platform], "it must be 1 to 512 visible characters without spaces.")
    if platform not in SECRET_PARAMETER:
        return Connection(platform, key)  # a secret sent for a platform without one is ignored
    secret = (secret or "").strip()
    if not secret:
        raise _missing(SECRET_PARAMETER[platform], f"It is {SECRET_MEANING[platform]}, from your "
                       f"{LABELS[platform]} account's API settings.")
    if not _CREDENTIAL.match(secret):
        raise _malformed(SECRET_PARAMETER[platform], "it must be 1 to 512 visible characters without spaces.")
    return Connection(platform, key, secret)


class TenantKeys:
    """The keyed hashes of hosted mode (``TENANT_HASH_KEY``)."""

    def __init__(self, secret: bytes) -> None:
        if not secret:
            raise ValueError("TenantKeys needs a non-empty secret (settings: TENANT_HASH_KEY)")
        keys = Keyring(secret)
        self._tenant = keys.identifier_key("tenancy/tenant")
        self._client = keys.subkey("tenancy/client")
        self._job = keys.subkey("tenancy/job-location")

    def tenant(self, connection: Connection) -> str:
        """``t`` + 32 hex characters: who the account is (platform + account key), not reversible."""
        text = f"{connection.platform}\x00{connection.key}".encode()
        return TENANT_PREFIX + hmac.new(self._tenant, text, hashlib.sha256).hexdigest()[:32]

    def job_token(self, job_id: str) -> str:
        """22 URL-safe characters (128 bits) derived for a job: held only by whoever got its 202's Location."""
        mac = hmac.new(self._job, job_id.encode(), hashlib.sha256).digest()[:16]
        return base64.urlsafe_b64encode(mac).decode("ascii").rstrip("=")

    def credentials_digest(self, connection: Connection) -> str:
        """A keyed hash of ALL the credentials (key and secret): the key of the per-account clients."""
        text = json.dumps([connection.platform, connection.key, connection.secret or ""]).encode()
        return hmac.new(self._client, text, hashlib.sha256).hexdigest()


def scoped_caller(tenant: str | None, caller: str | None) -> str | None:
    """The caller id the ledger, the idempotency keys and the trigger bindings use: the tenant's own in hosted
    mode (another tenant's jobs, keys and states are never found)."""
    if tenant is None:
        return caller
    return f"{tenant}/{caller or '-'}"


_TENANT_CALLER = re.compile(r"^t[0-9a-f]{32}/")


def is_tenant_caller(caller: str | None) -> bool:
    return bool(caller) and bool(_TENANT_CALLER.match(caller))


class CredentialBox:
    """AES-GCM seals of a connection's credentials: ``c1.<key id>.<base64(nonce + ciphertext)>``."""

    VERSION = "c1"

    def __init__(self, keys: Sequence[str]) -> None:
        parsed: list[tuple[str, AESGCM]] = []
        for item in keys:
            kid, sep, secret = item.partition(":")
            if not sep or not kid or not secret:
                raise ValueError("CREDENTIALS_KEYS: each key is id:secret")
            parsed.append((kid, AESGCM(Keyring(secret.encode()).subkey("tenancy/credentials"))))
        if not parsed:
            raise ValueError("CREDENTIALS_KEYS: at least one key")
        self._keys = dict(parsed)
        self.current = parsed[0][0]

    def seal(self, row_id: str, connection: Connection) -> str:
        nonce = os.urandom(12)
        plain = json.dumps({"p": connection.platform, "k": connection.key, "s": connection.secret}).encode()
        sealed = self._keys[self.current].encrypt(nonce, plain, b"credentials:" + row_id.encode())
        return f"{self.VERSION}.{self.current}.{base64.urlsafe_b64encode(nonce + sealed).decode('ascii')}"

    def open(self, row_id: str, token: str) -> Connection:
        """The connection; ValueError when the token is not ours, another row's, changed, or its key is gone."""
        version, _, rest = token.partition(".")
        kid, _, data = rest.partition(".")
        aead = self._keys.get(kid)
        if version != self.VERSION or aead is None:
            raise ValueError("credentials sealed with an unknown key")
        try:
            raw = base64.urlsafe_b64decode(data.encode("ascii"))
            doc = json.loads(aead.decrypt(raw[:12], raw[12:], b"credentials:" + row_id.encode()))
        except (InvalidTag, binascii.Error, ValueError, UnicodeError) as exc:
            raise ValueError("credentials cannot be decrypted") from exc
        return Connection(doc["p"], doc["k"], doc.get("s"))

    def key_id(self, token: str) -> str:
        return token.split(".", 2)[1] if token.count(".") >= 2 else ""


metadata = sa.MetaData()
#: the credentials of a tenant whose work goes on without a request (polling triggers, webhook syncs)
tenant_credentials = sa.Table(
    "tenant_credentials", metadata,
    sa.Column("tenant", sa.String(40), primary_key=True),
    sa.Column("platform", sa.String(16), nullable=False),
    sa.Column("sealed", sa.Text(), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)


class CredentialStore:
    """The per-tenant credentials row (sealed, the tenant as associated data). ``remember`` writes only when
    what this process last wrote for the tenant differs (a poll a minute costs no write)."""

    def __init__(self, engine: Engine, box: CredentialBox, keys: TenantKeys, memo: int = 4096) -> None:
        self.engine, self.box, self.keys = engine, box, keys
        self._written: cachetools.LRUCache = cachetools.LRUCache(memo)
        self._lock = threading.Lock()

    def remember(self, tenant: str, connection: Connection) -> None:
        digest = self.keys.credentials_digest(connection)
        with self._lock:
            if self._written.get(tenant) == digest:
                return
        t = tenant_credentials.c
        values = {"platform": connection.platform, "sealed": self.box.seal(tenant, connection),
                  "updated_at": datetime.now(UTC)}
        with self.engine.begin() as conn:
            if conn.execute(sa.update(tenant_credentials).where(t.tenant == tenant).values(**values)).rowcount == 0:
                try:
                    with conn.begin_nested():
                        conn.execute(sa.insert(tenant_credentials).values(tenant=tenant, **values))
                except sa.exc.IntegrityError:  # inserted meanwhile by another worker: ours is as fresh
                    conn.execute(sa.update(tenant_credentials).where(t.tenant == tenant).values(**values))
        with self._lock:
            self._written[tenant] = digest

    def load(self, tenant: str) -> Connection | None:
        with self.engine.connect() as conn:
            sealed = conn.execute(sa.select(tenant_credentials.c.sealed)
                                  .where(tenant_credentials.c.tenant == tenant)).scalar_one_or_none()
        if sealed is None:
            return None
        try:
            connection = self.box.open(tenant, sealed)
        except ValueError:
            return None
        return connection if self.keys.tenant(connection) == tenant else None

    def forget(self, tenant: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(sa.delete(tenant_credentials).where(tenant_credentials.c.tenant == tenant))
        with self._lock:
            self._written.pop(tenant, None)


def rotate(engine: Engine, box: CredentialBox) -> dict[str, int]:
    """Re-seal every kept credential with the first key (``python -m service.db rotate-credentials``)."""
    from service.actions.ledger.model import Job

    jobs = Job.__table__
    done = {"jobs": 0, "tenants": 0, "unreadable": 0}
    with engine.begin() as conn:
        for table, id_col, col, name in ((jobs, jobs.c.id, jobs.c.credentials, "jobs"),
                                         (tenant_credentials, tenant_credentials.c.tenant,
                                          tenant_credentials.c.sealed, "tenants")):
            for row_id, token in conn.execute(sa.select(id_col, col).where(col.is_not(None))).all():
                if box.key_id(token) == box.current:
                    continue
                try:
                    fresh = box.seal(row_id, box.open(row_id, token))
                except ValueError:
                    done["unreadable"] += 1
                    continue
                conn.execute(sa.update(table).where(id_col == row_id).values({col.name: fresh}))
                done[name] += 1
    return done
