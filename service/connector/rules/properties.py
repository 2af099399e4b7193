"""Rules on ``apiProperties.json``: brand colour, publisher, capabilities, the connection types (API key, Entra ID)
and their parameters, the host policy, and its links to the definition."""

from __future__ import annotations

import re
from typing import Any

from service.connector.rules.triggers import has_triggers
from service.connector.spec import (
    API_KEY_PARAMETER,
    COLOR_RE,
    CONNECTION_PARAMETER_CALL_RE,
    CONNECTION_PARAMETER_RE,
    ENTRA_REDIRECT_MODE,
    FORBIDDEN_BRAND_COLORS,
    TOKEN_PARAMETER,
    iter_operations,
)


def _parameter_groups(props: dict, problems: list[str]) -> list[tuple[str, dict]]:
    """``[(location, parameters)]``: the flat ``connectionParameters``, or one entry per connection type of
    ``connectionParameterSets`` (whose own structure is checked here)."""
    sets = props.get("connectionParameterSets")
    if sets is None:
        params = props.get("connectionParameters")
        return [("properties/connectionParameters", params if isinstance(params, dict) else {})]
    where = "properties/connectionParameterSets"
    if "connectionParameters" in props:
        problems.append(f"{where}: use either connectionParameters or connectionParameterSets, not both")
    if not isinstance(sets, dict):
        problems.append(f"{where}: must be an object with uiDefinition and values")
        return []
    ui = sets.get("uiDefinition")
    if not isinstance(ui, dict) or not ui.get("displayName") or not ui.get("description"):
        problems.append(f"{where}: uiDefinition needs displayName and description")
    values = sets.get("values")
    if not isinstance(values, list) or len(values) < 2:
        problems.append(f"{where}/values: at least two connection types are needed (else use connectionParameters)")
        values = values if isinstance(values, list) else []
    groups, names = [], set()
    for i, value in enumerate(values):
        loc = f"{where}/values[{i}]"
        if not isinstance(value, dict):
            problems.append(f"{loc}: must be an object")
            continue
        name = value.get("name")
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z][A-Za-z0-9_-]*", name) or name in names:
            problems.append(f"{loc}: needs a unique name (letters, digits, - and _)")
        names.add(name)
        vui = value.get("uiDefinition")
        if not isinstance(vui, dict) or not vui.get("displayName") or not vui.get("description"):
            problems.append(f"{loc}: uiDefinition needs displayName and description")
        params = value.get("parameters")
        if not isinstance(params, dict) or not params:
            problems.append(f"{loc}: parameters are required")
            continue
        for pname, param in params.items():
            constraints = ((param.get("uiDefinition") or {}).get("constraints") or {}) if isinstance(param, dict) \
                else {}
            if constraints.get("required") != "true":  # mandatory for every parameter of a set (multi-auth docs)
                problems.append(f"{loc}/parameters/{pname}: uiDefinition.constraints.required must be \"true\"")
        groups.append((f"{loc}/parameters", params))
    return groups


def _check_entra_token(param: Any, where: str) -> list[str]:
    """The Entra ID connection: identity provider aad, the connector app's client id, the service's app id URI
    as resource, the Microsoft login host, a per-connector redirect, not first party."""
    problems = []
    settings = param.get("oAuthSettings") if isinstance(param, dict) else None
    if not isinstance(param, dict) or param.get("type") != "oauthSetting" or not isinstance(settings, dict):
        return [f"{where}: must be an oauthSetting parameter with oAuthSettings"]
    if settings.get("identityProvider") != "aad":
        problems.append(f"{where}: identityProvider must be aad (Microsoft Entra ID)")
    if not isinstance(settings.get("clientId"), str) or not settings["clientId"].strip():
        problems.append(f"{where}: clientId (the connector's app registration) is required")
    custom = settings.get("customParameters") if isinstance(settings.get("customParameters"), dict) else {}

    def value(key: str) -> str:
        entry = custom.get(key)
        v = entry.get("value") if isinstance(entry, dict) else None
        return v.strip() if isinstance(v, str) else ""

    if not value("resourceUri"):
        problems.append(f"{where}: customParameters.resourceUri (the service's Application ID URI) is required")
    if value("loginUri") not in ("https://login.microsoftonline.com", "https://login.windows.net"):
        problems.append(f"{where}: customParameters.loginUri must be https://login.microsoftonline.com")
    if not value("tenantId"):
        problems.append(f"{where}: customParameters.tenantId is required (common for any tenant)")
    if settings.get("redirectMode") != ENTRA_REDIRECT_MODE:
        problems.append(f"{where}: redirectMode must be {ENTRA_REDIRECT_MODE} (per-connector redirect URI, "
                        "mandatory for OAuth connectors)")
    if ((settings.get("properties") or {}).get("IsFirstParty")) != "False":
        problems.append(f"{where}: properties.IsFirstParty must be \"False\"")
    return problems


def check_properties(properties: dict, definition: dict | None = None) -> list[str]:
    """Rules for ``apiProperties.json`` (and its link to the definition when given)."""
    problems: list[str] = []
    props = properties.get("properties") if isinstance(properties, dict) else None
    if not isinstance(props, dict):
        return ["properties: required"]
    color = props.get("iconBrandColor")
    if not isinstance(color, str) or not COLOR_RE.match(color):
        problems.append("properties/iconBrandColor: must be a #rrggbb colour")
    elif color.lower() in FORBIDDEN_BRAND_COLORS:
        problems.append(f"properties/iconBrandColor: {color} is not allowed for certified connectors")
    for key in ("publisher", "stackOwner"):
        if not isinstance(props.get(key), str) or not props[key].strip():
            problems.append(f"properties/{key}: required")
    caps = props.get("capabilities")
    if not isinstance(caps, list) or not all(isinstance(c, str) for c in caps):
        problems.append("properties/capabilities: must be a list of strings")
    elif definition is not None:
        triggers = has_triggers(definition)
        actions = any(not op.get("x-ms-trigger") for _, _, op, _ in iter_operations(definition))
        for name, present in (("actions", actions), ("triggers", triggers)):
            if present and name not in caps:
                problems.append(f"properties/capabilities: must list {name!r} (the definition has {name})")
            if not present and name in caps:
                problems.append(f"properties/capabilities: lists {name!r} but the definition has none")
    groups = _parameter_groups(props, problems)
    key_groups = [g for g in groups if API_KEY_PARAMETER in g[1]]
    for loc, params in key_groups:
        if not isinstance(params[API_KEY_PARAMETER], dict) or params[API_KEY_PARAMETER].get("type") != "securestring":
            problems.append(f"{loc}/{API_KEY_PARAMETER}: must be a securestring parameter")
    if not key_groups:
        where = groups[0][0] if len(groups) == 1 else "properties/connectionParameterSets"
        problems.append(f"{where}/{API_KEY_PARAMETER}: must be a securestring parameter (an API key connection "
                        "is required)")
    token_groups = [g for g in groups if TOKEN_PARAMETER in g[1]]
    for loc, params in token_groups:
        problems += _check_entra_token(params[TOKEN_PARAMETER], f"{loc}/{TOKEN_PARAMETER}")
    for loc, params in groups:
        for name, param in params.items():
            ui = param.get("uiDefinition") if isinstance(param, dict) else None
            if not isinstance(ui, dict) or not ui.get("displayName") or not ui.get("description"):
                problems.append(f"{loc}/{name}: uiDefinition needs displayName and description")
    policies = props.get("policyTemplateInstances") or []
    host_policies = [p for p in policies if isinstance(p, dict) and str(p.get("templateId", "")).lower() ==
                     "dynamichosturl"]
    if not host_policies:
        problems.append("properties/policyTemplateInstances: a dynamichosturl policy for the instance host is required")
    op_ids = ({op.get("operationId") for _, _, op, _ in iter_operations(definition)} if definition else None)
    for i, policy in enumerate(policies):
        where = f"properties/policyTemplateInstances[{i}]"
        parameters = policy.get("parameters") if isinstance(policy, dict) else None
        if not isinstance(parameters, dict):
            problems.append(f"{where}: parameters are required")
            continue
        for value in parameters.values():
            defaults = dict(CONNECTION_PARAMETER_CALL_RE.findall(value)) if isinstance(value, str) else {}
            for ref in CONNECTION_PARAMETER_RE.findall(value) if isinstance(value, str) else []:
                missing = [loc for loc, params in groups if ref not in params]
                # a type may lack it when the reference has a default ('name', ''), as in Microsoft's
                # CognitiveServicesQuestionAnswering (its API key header on its Entra ID type: tenancy.md §1a)
                if not groups or len(missing) == len(groups) or (missing and not defaults.get(ref)):
                    problems.append(f"{where}: @connectionParameters('{ref}') is not a connection parameter"
                                    + (f" of {', '.join(missing)}" if len(groups) > 1 else ""))
                elif any(params[ref].get("type") not in ("string", "securestring") for _, params in groups
                         if ref in params):
                    problems.append(f"{where}: connection parameter {ref} must be a string")
        template = parameters.get("x-ms-apimTemplateParameter.urlTemplate")
        if str(policy.get("templateId", "")).lower() == "dynamichosturl":
            if not isinstance(template, str) or not template.startswith("https://@connectionParameters('"):
                problems.append(f"{where}: urlTemplate must be https://@connectionParameters('...')")
        if op_ids is not None:
            for name in parameters.get("x-ms-apimTemplate-operationName") or []:
                if name not in op_ids:
                    problems.append(f"{where}: operation {name} is not in the definition")
    if definition is not None:
        schemes = definition.get("securityDefinitions") or {}
        if key_groups and not any(isinstance(s, dict) and s.get("type") == "apiKey" and s.get("in") == "header"
                                  and s.get("name") for s in schemes.values()):
            problems.append("securityDefinitions: the api_key connection parameter needs an apiKey header scheme")
        has_oauth = any(isinstance(s, dict) and s.get("type") == "oauth2" for s in schemes.values())
        if token_groups and not has_oauth:
            problems.append("securityDefinitions: the Entra ID connection (token) needs an oauth2 scheme")
        if has_oauth and not token_groups:
            problems.append("properties/connectionParameterSets: the definition's oauth2 scheme needs an Entra ID "
                            f"connection type with a {TOKEN_PARAMETER} parameter")
    return problems
