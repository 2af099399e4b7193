"""Contract tests: the spec, the generated connector definition and the Power Platform rules.

``minimal_spec()`` is a small, fully compliant Swagger 2.0 document. The tests mutate copies of it to prove
that each rule of ``service.connector`` catches its violation (a checker that cannot fail proves nothing).
"""

from __future__ import annotations

import copy

_MINIMAL = {
    "swagger": "2.0",
    "info": {
        "title": "Item Actions",
        "version": "1.0",
        "description": "Tag and list the items of a test platform, with dropdowns and typed inputs for makers.",
        "contact": {"name": "Support", "url": "https://example.com/support", "email": "support@example.com"},
    },
    "host": "localhost:8000",
    "basePath": "/",
    "schemes": ["https", "http"],
    "consumes": ["application/json"],
    "produces": ["application/json"],
    "x-ms-connector-metadata": [
        {"propertyName": "Website", "propertyValue": "https://example.com"},
        {"propertyName": "Privacy policy", "propertyValue": "https://example.com/privacy"},
        {"propertyName": "Categories", "propertyValue": "Marketing;Productivity"},
    ],
    "securityDefinitions": {"api_key": {"type": "apiKey", "in": "header", "name": "X-API-Key",
                                        "x-apikeyInfoFunc": "service.api.security.check_api_key"}},
    "security": [{"api_key": []}],
    "tags": [{"name": "Items", "description": "Items."}, {"name": "System", "description": "System."}],
    "parameters": {
        "ItemIdPath": {
            "name": "itemId", "in": "path", "required": True, "type": "string", "x-ms-url-encoding": "single",
            "x-ms-summary": "Item", "description": "The item. Choose it from the list.",
            "x-ms-dynamic-values": {"operationId": "ListItems", "value-collection": "value", "value-path": "id",
                                    "value-title": "name"},
        },
    },
    "paths": {
        "/health": {
            "get": {
                "tags": ["System"], "operationId": "Health", "x-swagger-router-controller": "service.api.system",
                "x-connector-exclude": True, "x-ms-visibility": "internal", "summary": "Service health",
                "description": "Reports whether the service is up.", "security": [],
                "responses": {"200": {"description": "Up.", "schema": {"$ref": "#/definitions/Health"}}},
            }
        },
        "/connection": {
            "get": {
                "tags": ["System"], "operationId": "TestConnection",
                "x-swagger-router-controller": "service.api.system",
                "x-ms-visibility": "internal", "summary": "Test the connection",
                "description": "Checks that the API key is valid.",
                "responses": {"200": {"description": "Valid.", "schema": {"$ref": "#/definitions/Status"}},
                              "default": {"description": "Error, as problem JSON."}},
            }
        },
        "/items": {
            "get": {
                "tags": ["Items"], "operationId": "ListItems", "x-swagger-router-controller": "service.api.items",
                "x-ms-visibility": "internal", "summary": "List items",
                "description": "Lists the items. Feeds the item dropdown.",
                "responses": {"200": {"description": "The items.", "schema": {"$ref": "#/definitions/ItemList"}}},
            }
        },
        "/items/{itemId}/schema": {
            "get": {
                "tags": ["Items"], "operationId": "GetItemSchema", "x-swagger-router-controller": "service.api.items",
                "x-ms-visibility": "internal", "summary": "Get item fields schema",
                "description": "Returns the JSON schema of the item's fields.",
                "parameters": [{"$ref": "#/parameters/ItemIdPath"}],
                "responses": {"200": {"description": "The schema.", "schema": {"$ref": "#/definitions/FieldsSchema"}}},
            }
        },
        "/tags": {
            "get": {
                "tags": ["Items"], "operationId": "ListTags", "x-swagger-router-controller": "service.api.items",
                "x-ms-visibility": "internal", "summary": "List tags",
                "description": "Lists the tags an item may carry. Feeds the tag dropdown.",
                "parameters": [{"name": "itemId", "in": "query", "required": True, "type": "string",
                                "x-ms-summary": "Item", "description": "The item whose tags to list."}],
                "responses": {"200": {"description": "The tags.", "schema": {
                    "type": "array", "items": {"$ref": "#/definitions/Tag"}}}},
            }
        },
        "/items/{itemId}/tags": {
            "post": {
                "tags": ["Items"], "operationId": "TagItem", "x-swagger-router-controller": "service.api.items",
                "x-ms-visibility": "important", "summary": "Tag an item",
                "description": "Adds a tag to the item, with optional typed fields.",
                "parameters": [
                    {"$ref": "#/parameters/ItemIdPath"},
                    {"name": "mode", "in": "query", "required": True, "type": "string", "default": "add",
                     "x-ms-visibility": "internal", "x-ms-summary": "Mode", "description": "Always add."},
                    {"name": "body", "in": "body", "required": True, "x-ms-summary": "Request",
                     "description": "The tag and the fields.", "schema": {"$ref": "#/definitions/TagRequest"}},
                ],
                "responses": {
                    "200": {"description": "Tagged.", "schema": {"$ref": "#/definitions/TagResult"}},
                    "default": {"description": "Error, as problem JSON."},
                },
            }
        },
        "/items/{itemId}": {
            "delete": {
                "tags": ["Items"], "operationId": "DeleteItem", "x-swagger-router-controller": "service.api.items",
                "x-ms-visibility": "advanced", "summary": "Delete an item",
                "description": "Deletes the item for good.",
                "parameters": [{"$ref": "#/parameters/ItemIdPath"}],
                "responses": {"204": {"description": "Deleted."}},
            }
        },
    },
    "definitions": {
        "Health": {"type": "object", "properties": {
            "status": {"type": "string", "x-ms-summary": "Status", "description": "Always ok."}}},
        "Status": {"type": "object", "properties": {
            "status": {"type": "string", "x-ms-summary": "Status", "description": "ok when it works."}}},
        "Item": {"type": "object", "properties": {
            "id": {"type": "string", "x-ms-summary": "ID", "description": "The item id."},
            "name": {"type": "string", "x-ms-summary": "Name", "description": "The item name."}}},
        "ItemList": {"type": "object", "properties": {
            "value": {"type": "array", "x-ms-summary": "Items", "description": "The items.",
                      "items": {"$ref": "#/definitions/Item"}}}},
        "Tag": {"type": "object", "properties": {
            "tag": {"type": "string", "x-ms-summary": "Tag", "description": "The tag value."},
            "label": {"type": "string", "x-ms-summary": "Label", "description": "The tag label."}}},
        "FieldsSchema": {"type": "object", "properties": {
            "schema": {"type": "object", "x-ms-summary": "Schema", "description": "A JSON schema."}}},
        "TagRequest": {"type": "object", "required": ["tag"], "properties": {
            "tag": {"type": "string", "x-ms-summary": "Tag", "description": "The tag to add.",
                    "x-ms-dynamic-list": {"operationId": "ListTags", "itemValuePath": "tag",
                                          "itemTitlePath": "label",
                                          "parameters": {"itemId": {"parameterReference": "itemId"}}}},
            "fields": {"type": "object", "x-ms-summary": "Fields", "description": "The item's typed fields.",
                       "x-ms-dynamic-schema": {"operationId": "GetItemSchema", "value-path": "schema",
                                               "parameters": {"itemId": {"parameter": "itemId"}}},
                       "x-ms-dynamic-properties": {"operationId": "GetItemSchema", "itemValuePath": "schema",
                                                   "parameters": {"itemId": {"parameterReference": "itemId"}}}},
            "options": {"type": "object", "x-ms-summary": "Options", "description": "Extra options.",
                        "properties": {"notify": {"type": "boolean", "x-ms-summary": "Notify",
                                                  "description": "Notify the owner."}}},
        }},
        "TagResult": {"type": "object", "properties": {
            "tags": {"type": "array", "x-ms-summary": "Tags", "description": "The item's tags.",
                     "items": {"$ref": "#/definitions/Tag"}},
            "changes": {"type": "array", "x-ms-summary": "Changes", "description": "What changed.",
                        "items": {"type": "object", "properties": {
                            "tag": {"type": "string", "x-ms-summary": "Tag", "description": "The tag."}}}},
        }},
        "Unused": {"type": "object", "properties": {
            "x": {"type": "string", "x-ms-summary": "X", "description": "Not referenced by any operation."}}},
    },
}


def minimal_spec() -> dict:
    """A fresh deep copy of the compliant fixture spec."""
    return copy.deepcopy(_MINIMAL)


def op(spec: dict, operation_id: str) -> dict:
    """The operation object with this operationId."""
    for item in spec["paths"].values():
        for value in item.values():
            if isinstance(value, dict) and value.get("operationId") == operation_id:
                return value
    raise KeyError(operation_id)
