"""The naive baseline: Flask + requests, forwards StartAutomation to Spotler's trigger call, nothing else.

No validation, no ledger, no idempotency, no contact resolution: one OAuth 1.0a-signed POST (HMAC-SHA1 header,
like ours) per call. Served by bench/processes.py as ``gunicorn bench.baseline_proxy:app -k gthread -w 2 --threads 32``.
"""

import os

import requests
from flask import Flask, jsonify, request
from requests_oauthlib import OAuth1

from service.sandbox.launch import SANDBOX_CREDENTIALS

UPSTREAM = os.environ.get("BASELINE_UPSTREAM_URL", "http://127.0.0.1:8081/integrationservice").rstrip("/")
CREDS = SANDBOX_CREDENTIALS["spotler"]
session = requests.Session()
session.auth = OAuth1(CREDS["consumer_key"], client_secret=CREDS["consumer_secret"], signature_type="AUTH_HEADER")
session.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=32))
app = Flask(__name__)


@app.get("/health")
def health():
    return {"status": "ok"}


@app.post("/automations/<code>/start")
def start(code):
    contact = (request.get_json(silent=True) or {}).get("contact") or {}
    resp = session.post(f"{UPSTREAM}/automation/trigger/{code}", json={"externalContactId": contact.get("externalId")},
                        headers={"Accept": "application/json"}, timeout=(3.05, 20))
    return jsonify(resp.json() if resp.content else {}), resp.status_code
