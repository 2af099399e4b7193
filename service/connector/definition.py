"""``apiDefinition.swagger.json`` and ``apiProperties.json`` built from the source spec."""

from __future__ import annotations

import copy
from typing import Any

from service.connector.spec import (
    API_KEY_PARAMETER,
    API_KEY_SET,
    BRAND_COLOR,
    DATA_KEYS,
    DEFAULT_HOST,
    ENTRA_LOGIN_URI,
    ENTRA_REDIRECT_MODE,
    ENTRA_SCOPE,
    ENTRA_SET,
    HOST_PARAMETER,
    HOSTED_ENTRA_SET,
    HOSTED_HEADERS,
    HOSTED_PLATFORMS,
    HOSTED_SET,
    HTTP_METHODS,
    NAME_MAPS,
    PLATFORM_KEY_PARAMETER,
    PLATFORM_PARAMETER,
    PLATFORM_SECRET_PARAMETER,
    PUBLISHER,
    STACK_OWNER,
    TEST_CONNECTION_OPERATION,
    TOKEN_PARAMETER,
    EntraConnection,
    collect_refs,
    is_excluded,
    iter_operations,
    normalize_host,
    pointer_get,
)


def strip_vendor_extensions(node: Any, _name_map: bool = False) -> Any:
    """Copy without the non ``x-ms-`` vendor extensions (Connexion's ``x-swagger-router-controller``,
    ``x-apikeyInfoFunc``, ``x-connector-exclude``, ``x-nullable`` ...). Property names, path names and data
    (examples, defaults, enums) are kept as they are; ``x-ms-*`` values are copied verbatim."""
    if isinstance(node, list):
        return [strip_vendor_extensions(v) for v in node]
    if not isinstance(node, dict):
        return node
    out: dict = {}
    for key, value in node.items():
        if _name_map:
            out[key] = strip_vendor_extensions(value)
        elif key.startswith("x-ms-") or key in DATA_KEYS:
            out[key] = copy.deepcopy(value)
        elif key.startswith("x-"):
            continue
        else:
            out[key] = strip_vendor_extensions(value, _name_map=key in NAME_MAPS and isinstance(value, dict))
    return out


def _prune_unused(doc: dict) -> None:
    """Drop definitions/parameters/responses no kept operation reaches (transitively)."""
    sections = ("definitions", "parameters", "responses")
    used: set[str] = set()
    pending: set[str] = set()
    collect_refs({k: v for k, v in doc.items() if k not in sections}, pending)
    while pending:
        ref = pending.pop()
        if ref in used:
            continue
        used.add(ref)
        target = pointer_get(doc, ref)
        if target is not None:
            found: set[str] = set()
            collect_refs(target, found)
            pending |= found - used
    for section in sections:
        entries = doc.get(section)
        if not isinstance(entries, dict):
            continue
        kept = {name: v for name, v in entries.items() if f"#/{section}/{name}" in used}
        if kept:
            doc[section] = kept
        else:
            doc.pop(section)


_ROOT_ORDER = ("swagger", "info", "host", "basePath", "schemes", "consumes", "produces", "paths", "definitions",
               "parameters", "responses", "securityDefinitions", "security", "tags", "x-ms-connector-metadata",
               "x-ms-capabilities")


def build_definition(spec: dict, host: str) -> dict:
    """The connector's ``apiDefinition.swagger.json`` content, built from the source spec (not modified)."""
    host = normalize_host(host)
    src = copy.deepcopy(spec)
    capabilities = copy.deepcopy(src.get("x-ms-capabilities") or {})

    paths: dict = {}
    used_tags: set[str] = set()
    for path, item in (src.get("paths") or {}).items():
        if not isinstance(item, dict):
            continue
        kept = {}
        for key, value in item.items():
            if key in HTTP_METHODS:
                if not isinstance(value, dict) or is_excluded(value):
                    continue
                op_caps = value.get("x-ms-capabilities")
                if isinstance(op_caps, dict) and "testConnection" in op_caps:
                    # testConnection belongs at the root of the document, not on the operation.
                    capabilities.setdefault("testConnection", op_caps.pop("testConnection"))
                    if not op_caps:
                        value.pop("x-ms-capabilities")
                used_tags.update(t for t in value.get("tags") or [] if isinstance(t, str))
            kept[key] = value
        if any(m in kept for m in HTTP_METHODS):
            paths[path] = kept

    out: dict = {k: v for k, v in src.items() if k != "paths"}
    out["paths"] = paths
    out["host"] = host
    out["basePath"] = src.get("basePath") or "/"
    out["schemes"] = ["https"]
    op_ids = {op.get("operationId") for _, _, op, _ in iter_operations(out)}
    if "testConnection" not in capabilities and TEST_CONNECTION_OPERATION in op_ids:
        capabilities["testConnection"] = {"operationId": TEST_CONNECTION_OPERATION, "parameters": {}}
    if capabilities:
        out["x-ms-capabilities"] = capabilities
    else:
        out.pop("x-ms-capabilities", None)
    if isinstance(out.get("tags"), list):
        tags = [t for t in out["tags"] if isinstance(t, dict) and t.get("name") in used_tags]
        if tags:
            out["tags"] = tags
        else:
            out.pop("tags")

    out = strip_vendor_extensions(out)
    _prune_unused(out)
    ordered = {k: out[k] for k in _ROOT_ORDER if k in out}
    ordered.update({k: v for k, v in out.items() if k not in ordered})
    return ordered


def _host_url_template(base_path: str) -> str:
    # The dynamichosturl policy replaces the host and drops the swagger basePath: fold the base path in.
    suffix = "" if base_path in ("", "/") else "/" + base_path.strip("/")
    return f"https://@connectionParameters('{HOST_PARAMETER}'){suffix}"


def has_entra_scheme(security_definitions: Any) -> bool:
    """True when the spec declares an OAuth 2.0 scheme (the Entra ID connection)."""
    return isinstance(security_definitions, dict) and any(
        isinstance(v, dict) and v.get("type") == "oauth2" for v in security_definitions.values())


def _host_parameter(host: str | None) -> dict:
    param: dict = {
        "type": "string",
        "uiDefinition": {
            "displayName": "Instance host name",
            "description": "The host name of your Marketing Actions instance, without https:// "
                           f"(for example {host or DEFAULT_HOST}).",
            "tooltip": "The host name of the Marketing Actions service this connection calls",
            "constraints": {"tabIndex": 1, "clearText": True, "required": "true"},
        },
    }
    if host:
        param["defaultValue"] = normalize_host(host)
    return param


def _api_key_parameter() -> dict:
    return {
        "type": "securestring",
        "uiDefinition": {
            "displayName": "API key",
            "description": "The API key of your Marketing Actions instance, sent as the X-API-Key header.",
            "tooltip": "Provide your Marketing Actions API key",
            "constraints": {"tabIndex": 2, "clearText": False, "required": "true"},
        },
    }


def _token_parameter(entra: EntraConnection) -> dict:
    """The Entra ID sign-in (identity provider ``aad``): the connector's app signs the user in to the service's
    app (``resourceUri``); the service receives ``Authorization: Bearer`` and may act on behalf of the user."""
    return {
        "type": "oauthSetting",
        "oAuthSettings": {
            "identityProvider": "aad",
            "clientId": entra.client_id,
            "scopes": [ENTRA_SCOPE],
            "redirectMode": ENTRA_REDIRECT_MODE,
            "properties": {"IsFirstParty": "False", "AzureActiveDirectoryResourceId": entra.resource},
            "customParameters": {
                "loginUri": {"value": ENTRA_LOGIN_URI},
                "tenantId": {"value": "common"},
                "resourceUri": {"value": entra.resource},
            },
        },
        "uiDefinition": {
            "displayName": "Sign in with Microsoft Entra ID",
            "description": "Sign in with your work account; Marketing Actions acts as you (also in Dataverse).",
            "tooltip": "Sign in with your Microsoft Entra ID work account",
            "constraints": {"required": "true", "hidden": "false"},
        },
    }


def _hosted_host_parameter(host: str | None) -> dict:
    """A hosted connection calls the publisher's one deployment: its host is fixed (a dropdown of one entry,
    pre-selected), so the dynamichosturl policy routes every connection type the same way."""
    fixed = normalize_host(host or DEFAULT_HOST)
    return {
        "type": "string",
        "uiDefinition": {
            "displayName": "Hosted service",
            "description": f"The publisher's hosted Marketing Actions service ({fixed}).",
            "tooltip": "The hosted Marketing Actions service this connection calls",
            "constraints": {"tabIndex": 1, "clearText": True, "required": "true",
                            "allowedValues": [{"text": fixed, "value": fixed}]},
        },
        "defaultValue": fixed,
    }


def _platform_parameters() -> dict:
    """The platform account a hosted connection brings: platform (dropdown), key and secret (securestring).
    Every parameter of a connection type must be required (multi-auth docs), so Piggy and Spoki makers fill the
    secret with a dash: the service ignores ``X-Platform-Secret`` for them."""
    return {
        PLATFORM_PARAMETER: {
            "type": "string",
            "uiDefinition": {
                "displayName": "Platform",
                "description": "The marketing platform of your account: Spotler Mail+, Piggy (Leat) or Spoki.",
                "tooltip": "Choose the platform your account is on",
                "constraints": {"tabIndex": 2, "clearText": True, "required": "true",
                                "allowedValues": [{"text": text, "value": value} for value, text in HOSTED_PLATFORMS]},
            },
        },
        PLATFORM_KEY_PARAMETER: {
            "type": "securestring",
            "uiDefinition": {
                "displayName": "Platform key",
                "description": "Spotler Mail+: the consumer key of a REST API key pair made for this connection; "
                               "Piggy: a personal access token; Spoki: the API key.",
                "tooltip": "The key of your platform account",
                "constraints": {"tabIndex": 3, "clearText": False, "required": "true"},
            },
        },
        PLATFORM_SECRET_PARAMETER: {
            "type": "securestring",
            "uiDefinition": {
                "displayName": "Platform secret",
                "description": "Spotler Mail+: the consumer secret of that key pair. Piggy and Spoki have no "
                               "secret: enter a dash (-).",
                "tooltip": "Spotler's consumer secret, or - for Piggy and Spoki",
                "constraints": {"tabIndex": 4, "clearText": False, "required": "true"},
            },
        },
    }


def _publisher_key_parameter() -> dict:
    param = _api_key_parameter()
    param["uiDefinition"] = {
        "displayName": "Publisher key",
        "description": "The key the publisher of the hosted service gave you, sent as the X-API-Key header.",
        "tooltip": "Provide the publisher's key",
        "constraints": {"tabIndex": 5, "clearText": False, "required": "true"},
    }
    return param


def _hosted_sets(host: str | None, entra: EntraConnection, publisher_key: bool) -> list[dict]:
    """The hosted connection types: the platform account alone (with the publisher's key when it asks for one),
    and the platform account plus the Entra ID sign-in (docs/hosted.md: why both fit in one type)."""
    keyed = {HOST_PARAMETER: _hosted_host_parameter(host), **_platform_parameters()}
    if publisher_key:
        keyed[API_KEY_PARAMETER] = _publisher_key_parameter()
    return [
        {
            "name": HOSTED_SET,
            "uiDefinition": {"displayName": "Hosted: platform account",
                             "description": "Your own Spotler Mail+, Piggy or Spoki account, on the publisher's "
                                            "hosted service."},
            "metadata": {"allowSharing": False},
            "parameters": keyed,
        },
        {
            "name": HOSTED_ENTRA_SET,
            "uiDefinition": {"displayName": "Hosted: platform account and Microsoft Entra ID",
                             "description": "Your own platform account on the publisher's hosted service, and "
                                            "sign in with your work account (Microsoft Entra ID)."},
            "metadata": {"allowSharing": False},
            "parameters": {HOST_PARAMETER: _hosted_host_parameter(host), **_platform_parameters(),
                           TOKEN_PARAMETER: _token_parameter(entra)},
        },
    ]


def _header_policies() -> list[dict]:
    """``setheader`` per platform header, on every operation. ``override``: a header a flow sets itself never
    replaces the connection's. The default ``''`` is what the single-mode types (which lack these parameters)
    send: the service treats an empty platform header as absent."""
    return [
        {
            "templateId": "setheader",
            "title": f"Forward {header} (hosted connections)",
            "parameters": {
                "x-ms-apimTemplateParameter.name": header,
                "x-ms-apimTemplateParameter.value": f"@connectionParameters('{param}','')",
                "x-ms-apimTemplateParameter.existsAction": "override",
                "x-ms-apimTemplate-policySection": "Request",
            },
        }
        for param, header in HOSTED_HEADERS.items()
    ]


def build_properties(host: str | None = None, base_path: str = "/", security_definitions: Any = None,
                     entra: EntraConnection | None = None, *, triggers: bool = False,
                     hosted_publisher_key: bool = False) -> dict:
    """``apiProperties.json``: the connection parameters, instance host parameter (dynamichosturl policy),
    brand colour, publisher, stack owner, capabilities (``triggers`` too when the definition has any). ``host``
    pre-fills the host parameter.

    When ``security_definitions`` (the definition's) has an OAuth 2.0 scheme besides the API key, the
    connection offers its types through ``connectionParameterSets``: API key, and Microsoft Entra ID (``entra``:
    the connector's app and the service's app id URI), for an instance of one's own; and the two hosted types
    (the maker's platform account, alone or with the Entra ID sign-in) on the publisher's deployment at ``host``,
    forwarded by ``setheader`` policies (``hosted_publisher_key``: the hosted type also asks for the publisher's
    API key). Otherwise ``connectionParameters`` holds the API key (no hosted types)."""
    props: dict = {}
    if has_entra_scheme(security_definitions):
        entra = entra or EntraConnection()
        props["connectionParameterSets"] = {
            "uiDefinition": {"displayName": "Authentication type",
                             "description": "How this connection signs in to Marketing Actions."},
            "values": [
                {
                    "name": API_KEY_SET,
                    "uiDefinition": {"displayName": "API key",
                                     "description": "An API key of your Marketing Actions instance."},
                    "metadata": {"allowSharing": True},
                    "parameters": {HOST_PARAMETER: _host_parameter(host), API_KEY_PARAMETER: _api_key_parameter()},
                },
                {
                    "name": ENTRA_SET,
                    "uiDefinition": {"displayName": "Microsoft Entra ID",
                                     "description": "Sign in with your work account (Microsoft Entra ID)."},
                    "metadata": {"allowSharing": False},
                    "parameters": {HOST_PARAMETER: _host_parameter(host), TOKEN_PARAMETER: _token_parameter(entra)},
                },
                *_hosted_sets(host, entra, hosted_publisher_key),
            ],
        }
    else:
        props["connectionParameters"] = {HOST_PARAMETER: _host_parameter(host),
                                         API_KEY_PARAMETER: _api_key_parameter()}
    props.update({
        "iconBrandColor": BRAND_COLOR,
        "capabilities": ["actions", "triggers"] if triggers else ["actions"],
        "policyTemplateInstances": [
            {
                "templateId": "dynamichosturl",
                "title": "Route to the instance host",
                "parameters": {"x-ms-apimTemplateParameter.urlTemplate": _host_url_template(base_path)},
            },
            *(_header_policies() if "connectionParameterSets" in props else []),
        ],
        "publisher": PUBLISHER,
        "stackOwner": STACK_OWNER,
    })
    return {"properties": props}
