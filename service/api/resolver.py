"""Maps PascalCase operationIds (the connector's action names) to snake_case handlers in the module named by
``x-swagger-router-controller``: ``StartAutomation`` in ``service.api.automations`` -> ``start_automation``."""

from __future__ import annotations

import re

from connexion.resolver import Resolver

_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


def snake(operation_id: str) -> str:
    return _BOUNDARY.sub("_", operation_id).lower()


class ControllerResolver(Resolver):
    def resolve_operation_id(self, operation) -> str:
        controller = operation.router_controller
        if not controller:
            raise ValueError(f"operation {operation.operation_id} has no x-swagger-router-controller")
        return f"{controller}.{snake(operation.operation_id)}"
