"""Provider-independent answers for health, connection test and capabilities."""

from __future__ import annotations

import time

from service import __version__
from service.actions.catalog import OPERATIONS
from service.actions.problems import ActionError


def health(rt) -> dict:
    s = rt.settings
    provider = rt.provider  # built without network I/O
    return {"status": "ok", "version": __version__, "provider": s.provider, "mode": s.mode,
            "supportedOperations": [op.operation_id for op in OPERATIONS if provider.supports(op.operation_id)]}


def test_connection(rt) -> dict:
    started = time.perf_counter()
    details = rt.provider.ping() or {}
    out = {
        "status": "ok",
        "provider": rt.settings.provider,
        "mode": rt.settings.mode,
        "latencyMs": round((time.perf_counter() - started) * 1000, 1),
    }
    if details.get("account"):
        out["account"] = str(details["account"])
    return out


def capabilities(rt) -> dict:
    provider = rt.provider
    ops = []
    for op in OPERATIONS:
        item = {"operationId": op.operation_id, "category": op.category,
                "supported": provider.supports(op.operation_id)}
        if not item["supported"]:
            item["reason"] = provider.unsupported.get(op.operation_id, "Not supported by this platform.")
        ops.append(item)
    return {"provider": rt.settings.provider, "mode": rt.settings.mode, "operations": ops}


def sandbox_data(rt) -> dict:
    """Sandbox mode only: the demo account the simulator starts with (contacts), and the automations and
    audiences the platform lists now (the dropdowns' ids, what the actions take). 404 in live mode."""
    s = rt.settings
    if not s.sandbox:
        raise ActionError(404, "NOT_SANDBOX_MODE",
                          "This service runs in live mode against the real platform: there is no sandbox data. "
                          "Use List automations and List audiences to see the platform's own.")
    from service.actions.audiences import audiences
    from service.actions.automations import _automation_info, automations

    provider = rt.provider
    out: dict = {"provider": s.provider, "mode": s.mode}
    if not s.api_keys:  # the key sandbox mode accepts (no secret: the README and the start log say it too)
        out["apiKey"] = s.accepted_api_keys[0]
    out["contacts"] = rt.sandbox_contacts()
    out["automations"] = ([_automation_info(a) for a in automations(rt)]
                          if provider.supports("ListAutomations") else [])
    out["audiences"] = ([{"id": a.id, "name": a.name} for a in audiences(rt)]
                        if provider.supports("ListAudiences") else [])
    return out

