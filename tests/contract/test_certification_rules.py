"""Certification rules (reference §2): the real spec and the generated definition comply, and every rule is
proven to catch its violation on a small fixture."""

from __future__ import annotations

import copy

import pytest

from service import connector
from service.connector import (
    build_definition,
    build_properties,
    check_connector_definition,
    check_properties,
    check_rules,
    iter_operations,
    load_spec,
    validate_schemas,
)
from tests.contract import minimal_spec, op


@pytest.fixture(scope="module")
def spec() -> dict:
    return load_spec()


@pytest.fixture(scope="module")
def definition(spec) -> dict:
    return build_definition(spec, "marketing-actions.example.com")


def _fmt(problems: list[str]) -> str:
    return "\n".join(f"- {p}" for p in problems)


# ------------------------------------------------------------------------------------------ the real documents


def test_source_spec_complies(spec):
    """Every operation of openapi.yaml, present and future, follows the rules (so a new operation without
    x-ms-summary fails here)."""
    problems = check_rules(spec)
    assert problems == [], "openapi.yaml breaks certification rules:\n" + _fmt(problems)


def test_generated_definition_complies(definition):
    problems = check_rules(definition) + check_connector_definition(definition)
    assert problems == [], "the generated definition breaks rules:\n" + _fmt(problems)


def test_generated_files_validate_against_official_schemas(definition):
    properties = build_properties(definition["host"], security_definitions=definition["securityDefinitions"],
                                  triggers=True)  # the spec has polling triggers
    assert "connectionParameterSets" in properties["properties"]  # API key and Entra ID: both are checked
    problems = validate_schemas(definition, properties) + check_properties(properties, definition)
    assert problems == [], _fmt(problems)


def test_rules_see_every_operation_of_the_spec(spec):
    """The checker iterates the document, not a fixed list: breaking any one operation is reported with its id."""
    for path, method, operation, _ in iter_operations(spec):
        broken = copy.deepcopy(spec)
        del broken["paths"][path][method]["summary"]
        problems = check_rules(broken)
        assert any(operation["operationId"] in p and "summary is required" in p for p in problems), problems


def test_fixture_complies():
    spec = minimal_spec()
    assert check_rules(spec) == []
    definition = build_definition(spec, "items.example.com")
    assert check_rules(definition) == [] and check_connector_definition(definition) == []
    assert validate_schemas(definition, build_properties("items.example.com")) == []


# ------------------------------------------------------------------------------------------ each rule can fail


def _set(path: tuple, value):
    def mutate(spec):
        node = spec
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
    return mutate


def _delete(path: tuple):
    def mutate(spec):
        node = spec
        for key in path[:-1]:
            node = node[key]
        del node[path[-1]]
    return mutate


def _op_set(operation_id: str, key: str, value):
    return lambda spec: op(spec, operation_id).__setitem__(key, value)


def _op_del(operation_id: str, key: str):
    return lambda spec: op(spec, operation_id).pop(key)


def _tag_param(index: int, key: str, value=None, delete: bool = False):
    def mutate(spec):
        param = op(spec, "TagItem")["parameters"][index]
        if delete:
            del param[key]
        else:
            param[key] = value
    return mutate


def _tag_request_prop(name: str, key: str):
    return _delete(("definitions", "TagRequest", "properties", name, key))


TAG_POST = "POST /items/{itemId}/tags (TagItem)"
RULE_CASES = {
    "title too long": (_set(("info", "title"), "Item Actions For Every Platform Out There"), "info/title",
                       "at most 30"),
    "title with API": (_set(("info", "title"), "Item API"), "info/title", "'API' or 'Connector'"),
    "title with Connector": (_set(("info", "title"), "Item Connector"), "info/title", "'API' or 'Connector'"),
    "title with product name": (_set(("info", "title"), "Items for Power Automate"), "info/title", "product name"),
    "title trailing punctuation": (_set(("info", "title"), "Item Actions."), "info/title", "letter or digit"),
    "description too short": (_set(("info", "description"), "Tags items."), "info/description", "30 to 500"),
    "description too long": (_set(("info", "description"), "Tags items. " * 50), "info/description", "30 to 500"),
    "no contact": (_delete(("info", "contact")), "info/contact", "required"),
    "no connector metadata": (_delete(("x-ms-connector-metadata",)), "x-ms-connector-metadata", "required"),
    "no privacy policy": (lambda s: s["x-ms-connector-metadata"].pop(1), "x-ms-connector-metadata",
                          "Privacy policy"),
    "no website": (lambda s: s["x-ms-connector-metadata"].pop(0), "x-ms-connector-metadata", "Website"),
    "categories without Marketing": (_set(("x-ms-connector-metadata", 2, "propertyValue"), "Productivity"),
                                     "x-ms-connector-metadata", "Marketing"),
    "unknown category": (_set(("x-ms-connector-metadata", 2, "propertyValue"), "Marketing;Gardening"),
                         "x-ms-connector-metadata", "Gardening"),
    "operationId not PascalCase": (_op_set("TagItem", "operationId", "tag_item"), "tag_item", "PascalCase"),
    "operationId with hyphen": (_op_set("TagItem", "operationId", "Tag-Item"), "Tag-Item", "PascalCase"),
    "operationId duplicate": (_op_set("DeleteItem", "operationId", "TagItem"), "DELETE /items/{itemId}",
                              "not unique"),
    "operationId missing": (_op_del("TagItem", "operationId"), "POST /items/{itemId}/tags", "operationId is required"),
    "summary missing": (_op_del("TagItem", "summary"), TAG_POST, "summary is required"),
    "summary too long": (_op_set("TagItem", "summary", "Tag " + "an item " * 12), TAG_POST, "at most 80"),
    "summary with slash": (_op_set("TagItem", "summary", "Tag an item/contact"), TAG_POST, "restricted characters"),
    "summary with question mark": (_op_set("TagItem", "summary", "Tag an item? maybe"), TAG_POST,
                                   "restricted characters"),
    "summary with ampersand": (_op_set("TagItem", "summary", "Tag & label an item"), TAG_POST,
                               "restricted characters"),
    "summary trailing period": (_op_set("TagItem", "summary", "Tag an item."), TAG_POST, "must not end"),
    "summary trailing space": (_op_set("TagItem", "summary", "Tag an item "), TAG_POST, "must not end"),
    "summary in Title Case": (_op_set("TagItem", "summary", "Tag An Item"), TAG_POST, "sentence case"),
    "summary lower case": (_op_set("TagItem", "summary", "tag an item"), TAG_POST, "sentence case"),
    "description missing": (_op_del("TagItem", "description"), TAG_POST, "description is required"),
    "description without period": (_op_set("TagItem", "description", "Adds a tag to the item"), TAG_POST,
                                    "end with a period"),
    "description equals summary": (_op_set("TagItem", "description", "Tag an item."), TAG_POST,
                                   "differ from the summary"),
    "visibility missing": (_op_del("TagItem", "x-ms-visibility"), TAG_POST, "x-ms-visibility is required"),
    "visibility invalid": (_op_set("TagItem", "x-ms-visibility", "hidden"), TAG_POST, "x-ms-visibility is required"),
    "parameter without x-ms-summary": (_tag_param(1, "x-ms-summary", delete=True), "parameters[1] (mode)",
                                       "x-ms-summary is required"),
    "parameter without description": (_tag_param(1, "description", delete=True), "parameters[1] (mode)",
                                      "description is required"),
    "body parameter without x-ms-summary": (_tag_param(2, "x-ms-summary", delete=True), "parameters[2] (body)",
                                            "x-ms-summary is required"),
    "shared parameter without x-ms-summary": (_delete(("parameters", "ItemIdPath", "x-ms-summary")),
                                              "parameters/ItemIdPath", "x-ms-summary is required"),
    "internal required parameter without default": (_tag_param(1, "default", delete=True), "parameters[1] (mode)",
                                                    "needs a default"),
    "string path parameter without url encoding": (_delete(("parameters", "ItemIdPath", "x-ms-url-encoding")),
                                                   "parameters/ItemIdPath", "x-ms-url-encoding"),
    "path parameter not required": (_set(("parameters", "ItemIdPath", "required"), False),
                                    "parameters/ItemIdPath", "must be required"),
    "path template parameter undeclared": (_op_set("DeleteItem", "parameters", []), "DELETE /items/{itemId}",
                                           "{itemId} is not declared"),
    "response property without x-ms-summary": (_delete(("definitions", "Item", "properties", "name",
                                                        "x-ms-summary")),
                                                "definitions/Item/properties/name", "x-ms-summary is required"),
    "response property without description": (_delete(("definitions", "Tag", "properties", "label", "description")),
                                               "definitions/Tag/properties/label", "description is required"),
    "array item property without x-ms-summary": (
        _delete(("definitions", "TagResult", "properties", "changes", "items", "properties", "tag", "x-ms-summary")),
        "definitions/TagResult/properties/changes/items/properties/tag", "x-ms-summary is required"),
    "nested object property without x-ms-summary": (
        _delete(("definitions", "TagRequest", "properties", "options", "properties", "notify", "x-ms-summary")),
        "definitions/TagRequest/properties/options/properties/notify", "x-ms-summary is required"),
    "inline response schema property without x-ms-summary": (
        lambda s: op(s, "TagItem")["responses"]["200"].__setitem__("schema", {
            "type": "object", "properties": {"ok": {"type": "boolean", "description": "Whether it worked."}}}),
        "responses/200/schema/properties/ok", "x-ms-summary is required"),
    "inline body property without x-ms-summary": (
        lambda s: op(s, "TagItem")["parameters"][2].__setitem__("schema", {
            "type": "object", "properties": {"tag": {"type": "string", "description": "The tag."}}}),
        "parameters[2]/schema/properties/tag", "x-ms-summary is required"),
    "internal required property without default": (
        lambda s: s["definitions"]["TagRequest"]["properties"]["tag"].__setitem__("x-ms-visibility", "internal"),
        "definitions/TagRequest/properties/tag", "needs a default"),
    "no 2xx response": (_op_set("TagItem", "responses", {"default": {"description": "Error."}}), TAG_POST,
                        "a 2xx response is required"),
    "2xx response without schema": (_op_set("TagItem", "responses", {"200": {"description": "Tagged."}}),
                                    "responses/200", "needs a schema"),
    "201 response without schema": (_op_set("TagItem", "responses", {"201": {"description": "Tagged."}}),
                                    "responses/201", "needs a schema"),
    "2xx schema without type": (_delete(("definitions", "TagResult", "type")), "responses/200",
                                "needs a declared type"),
    "default response with schema": (
        lambda s: op(s, "TagItem")["responses"]["default"].__setitem__("schema", {"$ref": "#/definitions/Status"}),
        "responses/default", "must not have a schema"),
    "meaningless response description": (
        lambda s: op(s, "TagItem")["responses"]["default"].__setitem__("description", "default"),
        "responses/default", "meaningful description"),
    "deep $ref": (
        lambda s: op(s, "TagItem")["responses"]["200"].__setitem__(
            "schema", {"$ref": "#/definitions/TagResult/properties/tags"}),
        "responses/200/schema", "must point to #/definitions/X"),
    "external $ref": (
        lambda s: op(s, "TagItem")["responses"]["200"].__setitem__("schema", {"$ref": "other.yaml#/Foo"}),
        "responses/200/schema", "must point to #/definitions/X"),
    "dangling $ref": (
        lambda s: op(s, "TagItem")["responses"]["200"].__setitem__("schema", {"$ref": "#/definitions/Nope"}),
        "responses/200/schema", "points to nothing"),
    "paths differing by case": (lambda s: s["paths"].__setitem__("/Items", {}), "paths /Items", "only by case"),
    "testConnection to a missing operation": (
        _set(("x-ms-capabilities",), {"testConnection": {"operationId": "Nope", "parameters": {}}}),
        "x-ms-capabilities/testConnection", "must name an operation"),
    "testConnection to a POST": (
        _set(("x-ms-capabilities",), {"testConnection": {"operationId": "TagItem", "parameters": {}}}),
        "x-ms-capabilities/testConnection", "must be a GET"),
}


@pytest.mark.parametrize("case", sorted(RULE_CASES))
def test_each_rule_catches_its_violation(case):
    mutate, where, what = RULE_CASES[case]
    spec = minimal_spec()
    mutate(spec)
    problems = check_rules(spec)
    assert any(where in p and what in p for p in problems), f"{case}: expected '{where}' + '{what}' in:\n" + _fmt(
        problems)


def test_204_without_schema_is_allowed():
    spec = minimal_spec()
    assert op(spec, "DeleteItem")["responses"] == {"204": {"description": "Deleted."}}
    assert check_rules(spec) == []


def test_pure_ref_property_needs_no_labels():
    """A property that is only a $ref is labelled by its definition (checked where it is defined)."""
    spec = minimal_spec()
    spec["definitions"]["TagResult"]["properties"]["first"] = {"$ref": "#/definitions/Tag"}
    assert check_rules(spec) == []


def test_every_violation_is_reported_not_only_the_first():
    spec = minimal_spec()
    del spec["definitions"]["Item"]["properties"]["id"]["x-ms-summary"]
    del spec["definitions"]["Tag"]["properties"]["tag"]["x-ms-summary"]
    op(spec, "TagItem")["summary"] = "Tag an item."
    problems = check_rules(spec)
    assert len(problems) == 3, _fmt(problems)


# ------------------------------------------------------------------------------------------ generated-only rules


GENERATED_CASES = {
    "http scheme": (lambda d: d.__setitem__("schemes", ["https", "http"]), "schemes"),
    "host with scheme": (lambda d: d.__setitem__("host", "https://items.example.com"), "host"),
    "host with path": (lambda d: d.__setitem__("host", "items.example.com/api"), "host"),
    "Connexion key left": (lambda d: op(d, "TagItem").__setitem__("x-swagger-router-controller", "x"),
                           "x-swagger-router-controller"),
    "exclude flag left": (lambda d: op(d, "TagItem").__setitem__("x-connector-exclude", False), "x-connector-exclude"),
    "apikeyInfoFunc left": (lambda d: d["securityDefinitions"]["api_key"].__setitem__("x-apikeyInfoFunc", "f"),
                            "x-apikeyInfoFunc"),
    "unused definition": (lambda d: d["definitions"].__setitem__("Orphan", {"type": "object"}), "definitions/Orphan"),
    "no testConnection": (lambda d: d.pop("x-ms-capabilities"), "testConnection"),
    "no api key scheme": (lambda d: d.__setitem__("securityDefinitions", {}), "securityDefinitions"),
}


@pytest.mark.parametrize("case", sorted(GENERATED_CASES))
def test_generated_only_rules_catch_violations(case):
    mutate, what = GENERATED_CASES[case]
    definition = build_definition(minimal_spec(), "items.example.com")
    mutate(definition)
    problems = check_connector_definition(definition)
    assert any(what in p for p in problems), f"{case}:\n" + _fmt(problems)


def test_official_schema_validation_catches_violations():
    definition = build_definition(minimal_spec(), "items.example.com")
    definition["host"] = "https://items.example.com/api"
    op(definition, "TagItem")["x-ms-unknown-extension"] = True
    properties = build_properties("items.example.com")
    properties["properties"]["unexpected"] = 1
    problems = validate_schemas(definition, properties)
    assert any(p.startswith("apiDefinition.swagger.json: host:") for p in problems), _fmt(problems)
    assert any("apiDefinition.swagger.json: paths//items/{itemId}/tags/post" in p for p in problems), _fmt(problems)
    assert any(p.startswith("apiProperties.json: properties:") and "unexpected" in p for p in problems), _fmt(problems)


# ------------------------------------------------------------------------------------------ apiProperties rules


def _props_mutation(fn):
    def mutate(props):
        fn(props["properties"])
    return mutate


PROPERTY_CASES = {
    "default blue": (_props_mutation(lambda p: p.__setitem__("iconBrandColor", "#007ee5")), "iconBrandColor"),
    "white": (_props_mutation(lambda p: p.__setitem__("iconBrandColor", "#FFFFFF")), "iconBrandColor"),
    "not a colour": (_props_mutation(lambda p: p.__setitem__("iconBrandColor", "purple")), "iconBrandColor"),
    "no publisher": (_props_mutation(lambda p: p.pop("publisher")), "publisher"),
    "no stackOwner": (_props_mutation(lambda p: p.pop("stackOwner")), "stackOwner"),
    "api key in clear": (_props_mutation(lambda p: p["connectionParameters"]["api_key"].__setitem__("type", "string")),
                         "api_key"),
    "no api key": (_props_mutation(lambda p: p["connectionParameters"].pop("api_key")), "api_key"),
    "no dynamic host policy": (_props_mutation(lambda p: p.__setitem__("policyTemplateInstances", [])),
                               "dynamichosturl"),
    "host policy to unknown parameter": (
        _props_mutation(lambda p: p["policyTemplateInstances"][0]["parameters"].__setitem__(
            "x-ms-apimTemplateParameter.urlTemplate", "https://@connectionParameters('instance')")),
        "@connectionParameters('instance')"),
    "host policy without scheme": (
        _props_mutation(lambda p: p["policyTemplateInstances"][0]["parameters"].__setitem__(
            "x-ms-apimTemplateParameter.urlTemplate", "@connectionParameters('hostName')")),
        "urlTemplate"),
    "policy limited to unknown operation": (
        _props_mutation(lambda p: p["policyTemplateInstances"][0]["parameters"].__setitem__(
            "x-ms-apimTemplate-operationName", ["Nope"])),
        "operation Nope"),
    "parameter without ui text": (
        _props_mutation(lambda p: p["connectionParameters"]["hostName"]["uiDefinition"].pop("description")),
        "hostName"),
}


@pytest.mark.parametrize("case", sorted(PROPERTY_CASES))
def test_property_rules_catch_violations(case):
    mutate, what = PROPERTY_CASES[case]
    definition = build_definition(minimal_spec(), "items.example.com")
    properties = build_properties("items.example.com")
    assert check_properties(properties, definition) == []
    mutate(properties)
    problems = check_properties(properties, definition)
    assert any(what in p for p in problems), f"{case}:\n" + _fmt(problems)


def test_summary_allows_proper_nouns_and_parentheses():
    spec = minimal_spec()
    op(spec, "TagItem")["summary"] = "Tag an item in Spotler (Mail+)"
    assert check_rules(spec) == []
    assert "Spotler" in connector.PROPER_NOUNS
