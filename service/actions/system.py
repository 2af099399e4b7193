"""Provider-independent answers for health, readiness, connection test and capabilities."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from service import __version__
from service.actions.catalog import OPERATIONS
from service.actions.deps import Platform
from service.actions.problems import ActionError
from service.config import Settings

log = logging.getLogger(__name__)

#: seconds a load balancer (or Power Automate) is asked to wait before it looks again at a service not ready
READY_RETRY_AFTER = 5


def health(platform: Platform | None, s: Settings) -> dict:
    """``platform`` None: hosted mode without a connection (every platform is served; each call names its own)."""
    if platform is None:
        return {"status": "ok", "version": __version__, "provider": "hosted", "mode": s.mode,
                "supportedOperations": [op.operation_id for op in OPERATIONS]}
    provider = platform.provider  # built without network I/O
    return {"status": "ok", "version": __version__, "provider": provider.name, "mode": s.mode,
            "supportedOperations": [op.operation_id for op in OPERATIONS if provider.supports(op.operation_id)]}


def readiness(engine: Callable[[], Any], s: Settings) -> dict:
    """Ready when the job ledger's database answers ``SELECT 1`` (``engine()`` gives the ledger's engine; it
    may raise when the database cannot be opened at all). Not ready: 503 ``NOT_READY`` with Retry-After; the
    reason goes to the log only (it can name the database's host)."""
    import sqlalchemy as sa

    started = time.perf_counter()
    try:
        with engine().connect() as conn:
            conn.execute(sa.text("SELECT 1")).scalar()
    except Exception as exc:  # noqa: BLE001 - any failure means: not ready
        log.warning("readiness: the ledger's database does not answer (%s)", type(exc).__name__)
        raise ActionError(503, "NOT_READY", "The service's database does not answer; this instance cannot take "
                          "calls now. Try again in a few seconds.",
                          headers={"Retry-After": str(READY_RETRY_AFTER)}) from None
    return {"status": "ready", "version": __version__, "mode": s.mode,
            "databaseLatencyMs": round((time.perf_counter() - started) * 1000, 1)}


def test_connection(platform: Platform, s: Settings) -> dict:
    started = time.perf_counter()
    details = platform.provider.ping() or {}
    out = {
        "status": "ok",
        "provider": platform.provider.name,
        "mode": s.mode,
        "latencyMs": round((time.perf_counter() - started) * 1000, 1),
    }
    if details.get("account"):
        out["account"] = str(details["account"])
    return out


def capabilities(platform: Platform, s: Settings) -> dict:
    provider = platform.provider
    ops = []
    for op in OPERATIONS:
        item = {"operationId": op.operation_id, "category": op.category,
                "supported": provider.supports(op.operation_id)}
        if not item["supported"]:
            item["reason"] = provider.unsupported.get(op.operation_id, "Not supported by this platform.")
        ops.append(item)
    return {"provider": provider.name, "mode": s.mode, "operations": ops}


def tenancy(s: Settings) -> str:
    """``single`` (the default) or ``hosted`` (``TENANCY``)."""
    return s.tenancy


def hosted_sandbox_data(s: Settings, accounts: Callable[[], list[dict]]) -> dict:
    """Hosted sandbox mode: every demo account of the three platform simulators (``accounts()``), with the
    credentials a hosted connection sends, and its demo contacts. 404 in live mode."""
    _require_sandbox(s)
    # no apiKey: in hosted mode the platform account in the headers is the credential (API_KEYS, the publisher's
    # optional key, is the operator's to hand out)
    return {"mode": s.mode, "tenancy": "hosted", "accounts": accounts()}


def _require_sandbox(s: Settings) -> None:
    if not s.sandbox:
        raise ActionError(404, "NOT_SANDBOX_MODE",
                          "This service runs in live mode against the real platform: there is no sandbox data. "
                          "Use List automations and List audiences to see the platform's own.")


def sandbox_data(platform: Platform, s: Settings, contacts: Callable[[], list[dict[str, str]]]) -> dict:
    """Sandbox mode only: the demo account the simulator starts with (``contacts()``), and the automations and
    audiences the platform lists now (the dropdowns' ids, what the actions take). 404 in live mode."""
    _require_sandbox(s)
    from service.actions.audiences import audiences
    from service.actions.automations import _automation_info, automations

    provider = platform.provider
    out: dict = {"provider": s.provider, "mode": s.mode}
    if not s.api_keys:  # the key sandbox mode accepts (no secret: the README and the start log say it too)
        out["apiKey"] = s.accepted_api_keys[0]
    out["contacts"] = contacts()
    out["automations"] = ([_automation_info(a) for a in automations(platform)]
                          if provider.supports("ListAutomations") else [])
    out["audiences"] = ([{"id": a.id, "name": a.name} for a in audiences(platform)]
                        if provider.supports("ListAudiences") else [])
    return out

