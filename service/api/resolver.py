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


class ControllerResolver(Resolver):
    def resolve_operation_id(self, operation) -> str:
        from service.actions.operations import WRITE_OPERATIONS

        if operation.operation_id in WRITE_OPERATIONS:
            return f"service.api.writes.{snake(operation.operation_id)}"
        controller = operation.router_controller
        if not controller:
            raise ValueError(f"operation {operation.operation_id} has no x-swagger-router-controller")
        return f"{controller}.{snake(operation.operation_id)}"
