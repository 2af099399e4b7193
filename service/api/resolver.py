"""Maps PascalCase operationIds (the connector's action names) to snake_case handlers in the module named by
``x-swagger-router-controller``: ``ListAutomations`` in ``service.api.automations`` -> ``list_automations``. A
write action's handler is derived from the operation registry: ``StartAutomation`` ->
``service.api.writes.start_automation``."""

from __future__ import annotations

import re

from connexion.resolver import Resolver

_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


def snake(operation_id: str) -> str:
    return _BOUNDARY.sub("_", operation_id).lower()


#: handler path -> the spec's operationId (Connexion's routing knows an operation by its handler's path; the
#: metrics and logs name it by its operationId: :func:`operation_id`)
_OPERATION_IDS: dict[str, str] = {}


def operation_id(handler: str | None) -> str | None:
    """The spec's operationId of a handler path Connexion's routing put in the scope (None: no operation)."""
    if not handler:
        return None
    return _OPERATION_IDS.get(handler, handler)


class ControllerResolver(Resolver):
    def resolve_operation_id(self, operation) -> str:
        from service.actions.operations import WRITE_OPERATIONS

        if operation.operation_id in WRITE_OPERATIONS:
            handler = f"service.api.writes.{snake(operation.operation_id)}"
        else:
            controller = operation.router_controller
            if not controller:
                raise ValueError(f"operation {operation.operation_id} has no x-swagger-router-controller")
            handler = f"{controller}.{snake(operation.operation_id)}"
        _OPERATION_IDS[handler] = operation.operation_id
        return handler
