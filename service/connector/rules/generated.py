"""Rules that only apply to the generated ``apiDefinition.swagger.json`` (the source spec legitimately differs):
host and scheme, no Connexion-only keys, no unused definitions, the security schemes."""

from __future__ import annotations

from typing import Any

from service.connector.spec import DATA_KEYS, HOST_RE, NAME_MAPS, collect_refs, location_of, pointer_get


def check_connector_definition(definition: dict) -> list[str]:
    """Rules that only apply to the generated definition (the source spec legitimately differs)."""
    problems = []
    host = definition.get("host")
    if not isinstance(host, str) or not HOST_RE.match(host):
        problems.append(f"host: {host!r} must be a host name without scheme or path")
    if definition.get("schemes") != ["https"]:
        problems.append("schemes: must be [https]")
    if not str(definition.get("basePath", "")).startswith("/"):
        problems.append("basePath: must start with /")
    leftovers: list[str] = []

    def walk(node: Any, parts: tuple, name_map: bool = False) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                if name_map:
                    walk(v, parts + (k,))
                elif k.startswith("x-ms-") or k in DATA_KEYS:
                    continue
                elif k.startswith("x-"):
                    leftovers.append(f"{location_of(definition, parts + (k,))}: vendor extension {k} is not for the "
                                     "connector (Connexion-only keys must be removed)")
                else:
                    walk(v, parts + (k,), k in NAME_MAPS and isinstance(v, dict))
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, parts + (i,))

    walk(definition, ())
    problems += leftovers
    caps = definition.get("x-ms-capabilities")
    if not (isinstance(caps, dict) and isinstance(caps.get("testConnection"), dict)):
        problems.append("x-ms-capabilities: testConnection is required")
    used: set[str] = set()
    collect_refs({k: v for k, v in definition.items() if k not in ("definitions", "parameters", "responses")}, used)
    pending = set(used)
    while pending:
        found: set[str] = set()
        collect_refs(pointer_get(definition, pending.pop()), found)
        pending |= found - used
        used |= found
    for section in ("definitions", "parameters", "responses"):
        for name in definition.get(section) or {}:
            if f"#/{section}/{name}" not in used:
                problems.append(f"{section}/{name}: unused (remove it from the connector definition)")
    schemes = definition.get("securityDefinitions") or {}
    if not any(isinstance(s, dict) and s.get("type") == "apiKey" and s.get("in") == "header"
               for s in schemes.values()):
        problems.append("securityDefinitions: an apiKey scheme sent in a header is required")
    for name, scheme in schemes.items():
        if isinstance(scheme, dict) and scheme.get("type") == "oauth2":
            if scheme.get("flow") != "accessCode":
                problems.append(f"securityDefinitions/{name}: an Entra ID sign-in uses flow accessCode")
            for url_key in ("authorizationUrl", "tokenUrl"):
                if not str(scheme.get(url_key, "")).startswith("https://login.microsoftonline.com/"):
                    problems.append(f"securityDefinitions/{name}: {url_key} must be a Microsoft Entra ID endpoint "
                                    "(https://login.microsoftonline.com/...)")
    security = definition.get("security")
    for requirement in security if isinstance(security, list) else []:
        for name in requirement if isinstance(requirement, dict) else []:
            if name not in schemes:
                problems.append(f"security: {name} is not in securityDefinitions")
    return problems
