"""The official JSON schemas of the Power Platform (``apiDefinition.swagger.schema.json``,
``paconn-apiProperties.schema.json``), with what the platform accepts today and they predate."""

from __future__ import annotations

from typing import Any

from service.connector.spec import DEFINITION_FILE, ENTRA_REDIRECT_MODE, PROPERTIES_FILE, load_official_schema


#: ``connectionParameterSets`` (multi-auth, learn.microsoft.com/connectors/custom-connectors/multi-auth) is newer
#: than the paconn schema, whose ``properties`` allow no such key: the wrapper is checked against this schema, and
#: each connection type's parameters against the official schema as the ``connectionParameters`` they replace.
CONNECTION_PARAMETER_SETS_SCHEMA: dict = {
    "type": "object",
    "required": ["uiDefinition", "values"],
    "additionalProperties": False,
    "properties": {
        "uiDefinition": {"$ref": "#/definitions/ui"},
        "values": {
            "type": "array",
            "minItems": 2,
            "items": {
                "type": "object",
                "required": ["name", "uiDefinition", "parameters"],
                "additionalProperties": False,
                "properties": {
                    "name": {"type": "string", "pattern": "^[A-Za-z][A-Za-z0-9_-]*$"},
                    "uiDefinition": {"$ref": "#/definitions/ui"},
                    "metadata": {"type": "object", "additionalProperties": False,
                                 "properties": {"allowSharing": {"type": "boolean"}}},
                    "parameters": {"type": "object", "minProperties": 1},
                },
            },
        },
    },
    "definitions": {
        "ui": {"type": "object", "required": ["displayName", "description"], "additionalProperties": False,
               "properties": {"displayName": {"type": "string"}, "description": {"type": "string"},
                              "constraints": {"type": "object"}}},
    },
}


def _current_platform(schema: dict) -> dict:
    """The paconn schema with what the platform accepts today and the schema predates: ``redirectMode``
    ``GlobalPerConnector`` (per-connector redirect URIs, mandatory for OAuth connectors since February 2024)."""
    import copy

    schema = copy.deepcopy(schema)
    mode = (((schema.get("definitions") or {}).get("oAuthSettings") or {}).get("properties") or {}).get(
        "redirectMode")
    if isinstance(mode, dict) and isinstance(mode.get("enum"), list) and ENTRA_REDIRECT_MODE not in mode["enum"]:
        mode["enum"] = [*mode["enum"], ENTRA_REDIRECT_MODE]
    return schema


def _schema_errors(validator, data: Any, prefix: str, rename: tuple[str, str] | None = None) -> list[str]:
    problems = []
    for error in sorted(validator.iter_errors(data), key=lambda e: [str(p) for p in e.absolute_path]):
        where = "/".join(str(p) for p in error.absolute_path) or "/"
        if rename and where.startswith(rename[0]):
            where = rename[1] + where[len(rename[0]):]
        message = error.message if len(error.message) < 300 else error.message[:297] + "..."
        problems.append(f"{prefix}: {where}: {message}")
    return problems


def validate_schemas(definition: dict | None = None, properties: dict | None = None) -> list[str]:
    """Validate against the official JSON schemas (``//`` comments stripped). ``apiProperties.json`` with
    ``connectionParameterSets``: the wrapper against :data:`CONNECTION_PARAMETER_SETS_SCHEMA`, and each
    connection type as if its parameters were the ``connectionParameters``."""
    import copy

    import jsonschema  # imported here: only the checks need it

    problems = []
    if definition is not None:
        validator = jsonschema.Draft4Validator(load_official_schema("apiDefinition.swagger.schema.json"))
        problems += _schema_errors(validator, definition, DEFINITION_FILE)
    if properties is not None:
        validator = jsonschema.Draft7Validator(_current_platform(load_official_schema(
            "paconn-apiProperties.schema.json")))
        props = properties.get("properties") if isinstance(properties, dict) else None
        sets = props.get("connectionParameterSets") if isinstance(props, dict) else None
        if sets is None:
            problems += _schema_errors(validator, properties, PROPERTIES_FILE)
        else:
            problems += _schema_errors(jsonschema.Draft7Validator(CONNECTION_PARAMETER_SETS_SCHEMA), sets,
                                       f"{PROPERTIES_FILE}: properties/connectionParameterSets")
            values = sets.get("values") if isinstance(sets, dict) else None
            for i, value in enumerate(values if isinstance(values, list) else []):
                doc = copy.deepcopy(properties)
                doc["properties"].pop("connectionParameterSets")
                doc["properties"]["connectionParameters"] = (value.get("parameters") or {}) \
                    if isinstance(value, dict) else {}
                problems += _schema_errors(validator, doc, PROPERTIES_FILE, (
                    "properties/connectionParameters", f"properties/connectionParameterSets/values/{i}/parameters"))
    return list(dict.fromkeys(problems))
