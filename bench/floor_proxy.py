"""The floor: the naive proxy plus, in the plainest way, the four things issue #15 asks the service to keep on.

Served like the naive proxy (``gunicorn bench.floor_proxy:app -k gthread -w 2 --threads 32``), one route,
``POST /automations/<code>/start``, which does what :mod:`bench.baseline_proxy` does and also:

* **validation**: the JSON body against a small JSON schema (one validator built once, ``jsonschema``);
* **idempotency**: the key from ``Idempotency-Key`` (else a SHA-256 of the body), a unique column behind it; a
  repeat of a finished key replays the stored answer, a repeat of a running one is a 503;
* **the ledger write before the upstream call**: one ``INSERT`` (committed) before the call and one ``UPDATE``
  with the answer after it, raw ``sqlite3`` on a WAL file (``synchronous=NORMAL``), one connection per thread;
* **logging**: one JSON access line per call.

No Connexion, no ASGI, no encryption, no redaction, no job thread, no lease, no crash recovery: it is not a
product, it is the least any implementation of those four features costs on this stack (Flask + requests +
gthread). ``bench.cpu`` measures it next to the naive proxy: the gap between the two is the part of goal 2's
budget these features take before anything else is added.

**With every guarantee of the ledger** (``FLOOR_GUARANTEES=all``, issue 25: the floor made more honest, the plain
one measured beside it): also, in the plainest way, what the service's ledger guarantees and the plain floor
does not - the request stored encrypted (AES-GCM, the record id as associated data) while the call runs and the
answer stored encrypted for replays; the contact kept as a masked address plus a keyed hash (HMAC-SHA256), and
the external id cleaned; a lease (expiry and owner) held by the INSERT and dropped by the UPDATE after the call;
the "not safe to repeat" mark (one more committed UPDATE, fenced by status and attempt) before the upstream
call; the UPDATE after it fenced the same way. Still no Connexion, no ASGI, no lease renewal thread, no 202
deadline, no crash recovery code (what a crash leaves is there to recover, nothing reads it).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sqlite3
import sys
import tempfile
import threading
import time
import uuid

import base64
import hmac

import jsonschema
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from flask import Flask, request

from bench.baseline_proxy import UPSTREAM, session  # the same signed upstream session as the naive proxy

DB_PATH = os.environ.get("FLOOR_DB") or os.path.join(tempfile.mkdtemp(prefix="floor-"), "floor.db")
#: ``all``: every guarantee of the service's ledger too (module doc)
ALL = os.environ.get("FLOOR_GUARANTEES", "") == "all"
SEAL = AESGCM(hashlib.sha256(b"floor-ledger-key/response").digest())
EMAIL_KEY = hashlib.sha256(b"floor-ledger-key/email-hash").digest()
OWNER = f"{os.uname().nodename}:{os.getpid()}"
LEASE_SECONDS = 30.0
app = Flask(__name__)

BODY = jsonschema.Draft4Validator({
    "type": "object", "required": ["contact"], "additionalProperties": False,
    "properties": {"contact": {"type": "object", "additionalProperties": False, "minProperties": 1,
                               "properties": {"externalId": {"type": "string", "minLength": 1, "maxLength": 200},
                                              "email": {"type": "string", "format": "email"}}},
                   "fields": {"type": "object"}}})

access = logging.getLogger("floor.access")
_handler = logging.StreamHandler(sys.stderr)
_handler.setFormatter(logging.Formatter("%(message)s"))
access.addHandler(_handler)
access.setLevel(logging.INFO)
access.propagate = False

_local = threading.local()
_schema_lock = threading.Lock()


def db() -> sqlite3.Connection:
    conn = getattr(_local, "conn", None)
    if conn is None:
        conn = sqlite3.connect(DB_PATH, timeout=30, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        with _schema_lock:
            conn.execute("CREATE TABLE IF NOT EXISTS jobs (id TEXT PRIMARY KEY, idem_key TEXT UNIQUE, "
                         "operation TEXT, status TEXT, created REAL, http_status INTEGER, answer TEXT, "
                         "attempts INTEGER, email_masked TEXT, email_hash TEXT, external_id TEXT, payload TEXT, "
                         "lease_expires REAL, lease_owner TEXT, unsafe_call TEXT, inputs TEXT)")
        _local.conn = conn
    return conn


def seal(job_id: str, doc) -> str:
    nonce = os.urandom(12)
    return base64.urlsafe_b64encode(nonce + SEAL.encrypt(nonce, json.dumps(doc).encode(), job_id.encode())).decode()


def unseal(job_id: str, token: str):
    raw = base64.urlsafe_b64decode(token)
    return json.loads(SEAL.decrypt(raw[:12], raw[12:], job_id.encode()))


def mask(email: str) -> str:
    local, _, domain = email.partition("@")
    return f"{local[:1]}***@{domain}"


def redacted(body: dict) -> dict:
    """The inputs as the ledger keeps them: the address masked, field values hidden."""
    contact = dict(body.get("contact") or {})
    if contact.get("email"):
        contact["email"] = mask(contact["email"])
    return {**body, "contact": contact, "fields": {k: "***" for k in body.get("fields") or {}}}


def problem(status: int, detail: str, **headers: str):
    return (json.dumps({"status": status, "detail": detail}), status,
            {"Content-Type": "application/problem+json", **headers})


@app.get("/health")
def health():
    return {"status": "ok"}


@app.post("/automations/<code>/start")
def start(code):
    started = time.perf_counter()
    raw = request.get_data()
    try:
        body = json.loads(raw)
    except ValueError:
        return problem(400, "The body is not JSON.")
    errors = sorted(BODY.iter_errors(body), key=lambda e: list(e.path))
    if errors:
        return problem(400, errors[0].message[:200])
    key = request.headers.get("Idempotency-Key") or hashlib.sha256(code.encode() + b"\0" + raw).hexdigest()
    conn = db()
    job_id = uuid.uuid4().hex
    try:
        if ALL:
            contact = body.get("contact") or {}
            email = contact.get("email")
            conn.execute("INSERT INTO jobs (id, idem_key, operation, status, created, attempts, email_masked, "
                         "email_hash, external_id, payload, lease_expires, lease_owner, inputs) "
                         "VALUES (?, ?, ?, 'InProgress', ?, 1, ?, ?, ?, ?, ?, ?, ?)",
                         (job_id, key, "StartAutomation", time.time(), mask(email) if email else None,
                          hmac.new(EMAIL_KEY, email.strip().lower().encode(), "sha256").hexdigest() if email else None,
                          str(contact.get("externalId") or "")[:255] or None,
                          seal(job_id, {"params": {"automationId": code}, "body": body}),
                          time.time() + LEASE_SECONDS, OWNER, json.dumps(redacted(body))))
        else:
            conn.execute("INSERT INTO jobs (id, idem_key, operation, status, created) "
                         "VALUES (?, ?, ?, 'InProgress', ?)", (job_id, key, "StartAutomation", time.time()))
    except sqlite3.IntegrityError:
        row = conn.execute("SELECT id, status, http_status, answer FROM jobs WHERE idem_key = ?", (key,)).fetchone()
        if row is None or row[1] == "InProgress":
            return problem(503, "The same call is still running.", **{"Retry-After": "5"})
        answer = json.dumps(unseal(row[0], row[3])) if ALL else row[3]
        return answer, row[2], {"Content-Type": "application/json", "Idempotent-Replayed": "true"}
    contact = body.get("contact") or {}
    if ALL:  # the "not safe to repeat" mark, committed before the call
        conn.execute("UPDATE jobs SET unsafe_call = ? WHERE id = ? AND attempts = 1 AND status = 'InProgress'",
                     (json.dumps({"call": "trigger_automation"}), job_id))
    resp = session.post(f"{UPSTREAM}/automation/trigger/{code}", json={"externalContactId": contact.get("externalId")},
                        headers={"Accept": "application/json"}, timeout=(3.05, 20))
    doc = {"jobId": job_id, "upstream": resp.json() if resp.content else {}}
    answer = json.dumps(doc)
    if ALL:
        conn.execute("UPDATE jobs SET status = 'Completed', http_status = ?, answer = ?, payload = NULL, "
                     "lease_expires = NULL, lease_owner = NULL WHERE id = ? AND attempts = 1 AND status = 'InProgress'",
                     (resp.status_code, seal(job_id, doc), job_id))
    else:
        conn.execute("UPDATE jobs SET status = 'Completed', http_status = ?, answer = ? WHERE id = ?",
                     (resp.status_code, answer, job_id))
    access.info(json.dumps({"method": "POST", "path": request.path, "status": resp.status_code, "jobId": job_id,
                            "ms": round((time.perf_counter() - started) * 1000, 1)}))
    return answer, resp.status_code, {"Content-Type": "application/json"}
