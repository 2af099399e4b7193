"""Answer 400 NOT_SUPPORTED_BY_PLATFORM up front for an action the configured platform lacks (before any handler or ledger work)."""

from __future__ import annotations

import flask
from connexion.context import operation
from werkzeug.exceptions import NotFound

from service.actions.catalog import OPERATION_IDS
from service.api.resolver import snake
from service.api.calls import request_platform

_BY_HANDLER = {snake(op): op for op in OPERATION_IDS}


def require_capability() -> None:
    """Flask ``before_request`` hook: raises NotSupported (-> 400 problem, which Power Automate does not retry) when the platform lacks the action."""
    try:
        handler = operation.operation_id.rsplit(".", 1)[-1]
    except (RuntimeError, LookupError, AttributeError):  # not an API operation (e.g. static files)
        if flask.request.url_rule is not None:  # Flask matched a path Connexion's router refused (a %0A in it)
            raise NotFound()
        return
    op = _BY_HANDLER.get(handler)
    if op is not None:
        provider = request_platform().provider
        if not provider.supports(op):
            provider._unsupported(op)
