"""Provider-independent answers for health, connection test and capabilities."""

from __future__ import annotations

import time

from service import __version__
from service.actions.catalog import OPERATIONS


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
