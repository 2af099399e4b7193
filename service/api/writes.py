"""The HTTP handlers of the write actions, derived from the operation registry
(:data:`service.actions.operations.REGISTRY`): one per operationId, named as the resolver looks them up
(``StartAutomation`` -> ``start_automation``), taking the path parameter the operation names (its ``target``),
the body and the caller, and running the call through :func:`service.api.calls.run`."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from service.actions.operations import REGISTRY, WriteOperation
from service.api.calls import run
from service.api.resolver import snake


def _handler(op: WriteOperation) -> Callable[..., Any]:
    operation_id, target = op.operation_id, op.target

    def handler(body: Any, user: str | None = None, **path: Any):
        return run(operation_id, user, body, scope=path or None)

    # the arguments Connexion passes (it reads the signature): the target path parameter, the body, the caller
    params = [inspect.Parameter(target, inspect.Parameter.KEYWORD_ONLY)] if target else []
    params += [inspect.Parameter("body", inspect.Parameter.KEYWORD_ONLY),
               inspect.Parameter("user", inspect.Parameter.KEYWORD_ONLY, default=None)]
    handler.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    handler.__name__ = handler.__qualname__ = snake(operation_id)
    handler.__doc__ = f"{operation_id}: a write action through the job runner (service.api.calls.run)."
    return handler


HANDLERS: dict[str, Callable[..., Any]] = {snake(op_id): _handler(op) for op_id, op in REGISTRY.items()}
globals().update(HANDLERS)

__all__ = ["HANDLERS", *HANDLERS]
