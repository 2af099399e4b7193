"""Answer 501 up front for an action the configured platform lacks (before any handler or ledger work)."""

from __future__ import annotations

from connexion.context import operation

from service.actions.catalog import OPERATION_IDS
from service.api.resolver import snake
from service.runtime import current_runtime

_BY_HANDLER = {snake(op): op for op in OPERATION_IDS}


def require_capability() -> None:
    """Flask ``before_request`` hook: raises NotSupported (-> 501 problem) when the platform lacks the action."""
    try:
        handler = operation.operation_id.rsplit(".", 1)[-1]
    except (RuntimeError, LookupError, AttributeError):  # not an API operation (e.g. static files)
        return
    op = _BY_HANDLER.get(handler)
    if op is not None:
        provider = current_runtime().provider
        if not provider.supports(op):
            provider._unsupported(op)
