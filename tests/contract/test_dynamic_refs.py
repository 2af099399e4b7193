"""Dropdowns and dynamic inputs: every x-ms-dynamic-values/-list/-schema/-properties of the spec resolves, and
every id a maker would otherwise paste has a dropdown. Both checks are proven on a fixture spec too."""

from __future__ import annotations

import pytest

from service.connector import (
    DROPDOWN_PARAMETER_NAMES,
    DYNAMIC_EXTENSIONS,
    build_definition,
    check_dropdown_parameters,
    check_dynamic_references,
    load_spec,
)
from tests.contract import minimal_spec, op


def _fmt(problems: list[str]) -> str:
    return "\n".join(f"- {p}" for p in problems)


def _count_dynamic(node) -> int:
    if isinstance(node, dict):
        return sum(1 for k in node if k in DYNAMIC_EXTENSIONS) + sum(_count_dynamic(v) for v in node.values())
    if isinstance(node, list):
        return sum(_count_dynamic(v) for v in node)
    return 0


@pytest.fixture(scope="module")
def spec() -> dict:
    return load_spec()


# ------------------------------------------------------------------------------------------ the real spec


def test_every_dynamic_reference_of_the_spec_resolves(spec):
    problems = check_dynamic_references(spec)
    assert problems == [], "broken dropdown/dynamic references in openapi.yaml:\n" + _fmt(problems)


def test_every_dynamic_reference_of_the_connector_resolves(spec):
    """Excluding operations must not leave a dropdown pointing at an operation the connector lacks."""
    definition = build_definition(spec, "marketing-actions.example.com")
    problems = check_dynamic_references(definition)
    assert problems == [], "broken references in the generated definition:\n" + _fmt(problems)


def test_ids_a_maker_would_paste_have_dropdowns(spec):
    problems = check_dropdown_parameters(spec)
    assert problems == [], "parameters without a dropdown (see DESIGN.md Dropdowns):\n" + _fmt(problems)


# ------------------------------------------------------------------------------------------ fixture: correct


def test_fixture_with_correct_references_passes():
    spec = minimal_spec()
    assert _count_dynamic(spec) == 4  # one of each kind
    assert check_dynamic_references(spec) == []


def test_root_array_response_needs_no_items_path():
    spec = minimal_spec()
    tag = spec["definitions"]["TagRequest"]["properties"]["tag"]["x-ms-dynamic-list"]
    assert "itemsPath" not in tag and check_dynamic_references(spec) == []


def test_paths_through_refs_and_nested_objects_resolve():
    spec = minimal_spec()
    spec["definitions"]["ItemList"]["properties"]["page"] = {
        "type": "object", "x-ms-summary": "Page", "description": "Paging.",
        "properties": {"items": {"type": "array", "x-ms-summary": "Items", "description": "The items.",
                                 "items": {"$ref": "#/definitions/Item"}}}}
    values = spec["parameters"]["ItemIdPath"]["x-ms-dynamic-values"]
    values["value-collection"] = "page/items"
    assert check_dynamic_references(spec) == []
    values["value-collection"] = "page/missing"
    assert any("value-collection 'page/missing'" in p and "'missing'" in p for p in check_dynamic_references(spec))


# ------------------------------------------------------------------------------------------ fixture: broken


def _values(spec):
    return spec["parameters"]["ItemIdPath"]["x-ms-dynamic-values"]


def _list(spec):
    return spec["definitions"]["TagRequest"]["properties"]["tag"]["x-ms-dynamic-list"]


def _schema(spec):
    return spec["definitions"]["TagRequest"]["properties"]["fields"]["x-ms-dynamic-schema"]


def _props(spec):
    return spec["definitions"]["TagRequest"]["properties"]["fields"]["x-ms-dynamic-properties"]


BROKEN = {
    "values: unknown operation": (lambda s: _values(s).__setitem__("operationId", "ListItemz"),
                                  "parameters/ItemIdPath", "operation 'ListItemz', which does not exist"),
    "values: no operationId": (lambda s: _values(s).pop("operationId"), "parameters/ItemIdPath",
                               "needs an operationId"),
    "values: unknown collection": (lambda s: _values(s).__setitem__("value-collection", "items"),
                                   "parameters/ItemIdPath", "value-collection 'items' is not in ListItems"),
    "values: collection is not an array": (lambda s: _values(s).__setitem__("value-collection", ""),
                                           "parameters/ItemIdPath", "is not an array"),
    "values: unknown value-path": (lambda s: _values(s).__setitem__("value-path", "code"),
                                   "parameters/ItemIdPath", "value-path 'code' is not in the items of ListItems"),
    "values: unknown value-title": (lambda s: _values(s).__setitem__("value-title", "title"),
                                    "parameters/ItemIdPath", "value-title 'title'"),
    "values: no value-path": (lambda s: _values(s).pop("value-path"), "parameters/ItemIdPath",
                              "value-path is required"),
    "values: parameter not on target": (lambda s: _values(s).__setitem__("parameters", {"top": 10}),
                                        "parameters/ItemIdPath", "'top' is not a parameter of ListItems"),
    "values: target without 2xx schema": (
        lambda s: op(s, "ListItems").__setitem__("responses", {"204": {"description": "Nothing."}}),
        "parameters/ItemIdPath", "ListItems has no 2xx response schema"),
    "list: unknown operation": (lambda s: _list(s).__setitem__("operationId", "ListTagz"),
                                "definitions/TagRequest/properties/tag", "operation 'ListTagz'"),
    "list: unknown itemsPath": (lambda s: _list(s).__setitem__("itemsPath", "value"),
                                "definitions/TagRequest/properties/tag", "itemsPath 'value' is not in ListTags"),
    "list: unknown itemValuePath": (lambda s: _list(s).__setitem__("itemValuePath", "id"),
                                    "definitions/TagRequest/properties/tag", "itemValuePath 'id'"),
    "list: unknown itemTitlePath": (lambda s: _list(s).__setitem__("itemTitlePath", "name"),
                                    "definitions/TagRequest/properties/tag", "itemTitlePath 'name'"),
    "list: parameter not on target": (
        lambda s: _list(s)["parameters"].__setitem__("owner", {"value": "me"}),
        "definitions/TagRequest/properties/tag", "'owner' is not a parameter of ListTags"),
    "list: required target parameter not supplied": (
        lambda s: _list(s).pop("parameters"),
        "definitions/TagRequest/properties/tag", "ListTags requires parameter 'itemId'"),
    "list: parameter with wrong shape": (
        lambda s: _list(s)["parameters"].__setitem__("itemId", {"parameter": "itemId"}),
        "definitions/TagRequest/properties/tag", "must be {value: ...} or {parameterReference: ...}"),
    "list: caller reference to unknown parameter": (
        lambda s: _list(s)["parameters"].__setitem__("itemId", {"parameterReference": "item"}),
        "definitions/TagRequest/properties/tag", "refers to 'item', which is not a parameter of POST"),
    "list: caller reference into unknown body property": (
        lambda s: _list(s)["parameters"].__setitem__("itemId", {"parameterReference": "body/owner"}),
        "definitions/TagRequest/properties/tag", "refers to 'body/owner'"),
    "schema: unknown operation": (lambda s: _schema(s).__setitem__("operationId", "GetSchema"),
                                  "definitions/TagRequest/properties/fields", "operation 'GetSchema'"),
    "schema: unknown value-path": (lambda s: _schema(s).__setitem__("value-path", "fields"),
                                   "definitions/TagRequest/properties/fields", "value-path 'fields' is not in"),
    "schema: parameter not on target": (
        lambda s: _schema(s)["parameters"].__setitem__("id", {"parameter": "itemId"}),
        "definitions/TagRequest/properties/fields", "'id' is not a parameter of GetItemSchema"),
    "schema: caller parameter missing": (
        lambda s: _schema(s)["parameters"].__setitem__("itemId", {"parameter": "item"}),
        "definitions/TagRequest/properties/fields", "refers to 'item'"),
    "properties: unknown operation": (lambda s: _props(s).__setitem__("operationId", "GetSchema"),
                                      "definitions/TagRequest/properties/fields", "operation 'GetSchema'"),
    "properties: unknown itemValuePath": (lambda s: _props(s).__setitem__("itemValuePath", "schema/x"),
                                          "definitions/TagRequest/properties/fields", "itemValuePath 'schema/x'"),
    "properties: required target parameter not supplied": (
        lambda s: _props(s).__setitem__("parameters", {}),
        "definitions/TagRequest/properties/fields", "GetItemSchema requires parameter 'itemId'"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_each_broken_reference_is_reported(case):
    mutate, where, what = BROKEN[case]
    spec = minimal_spec()
    mutate(spec)
    problems = check_dynamic_references(spec)
    assert any(where in p and what in p for p in problems), f"{case}: expected '{where}' + '{what}' in:\n" + _fmt(
        problems)


def test_unused_definition_with_a_broken_reference_is_still_checked():
    spec = minimal_spec()
    spec["definitions"]["Unused"]["properties"]["x"]["x-ms-dynamic-values"] = {
        "operationId": "Nope", "value-path": "id"}
    assert any("definitions/Unused/properties/x" in p and "'Nope'" in p for p in check_dynamic_references(spec))


def test_builtin_dynamic_values_need_no_operation():
    spec = minimal_spec()
    spec["parameters"]["ItemIdPath"]["x-ms-dynamic-values"] = {"builtInOperation": "AadGraph.GetUsers",
                                                               "value-path": "mail"}
    assert check_dynamic_references(spec) == []


# ------------------------------------------------------------------------------------------ dropdown coverage


def test_default_dropdown_names_cover_design():
    wanted = {n.lower() for n in DROPDOWN_PARAMETER_NAMES}
    assert {"automationid", "campaignid", "audienceid", "field", "tag", "permissions"} <= wanted


def test_fixture_dropdowns_pass_with_configured_names():
    assert check_dropdown_parameters(minimal_spec(), names=("itemId", "tag")) == []


def test_path_parameter_without_dropdown_fails():
    spec = minimal_spec()
    del spec["parameters"]["ItemIdPath"]["x-ms-dynamic-values"]
    problems = check_dropdown_parameters(spec, names=("itemId",))
    # TagItem and DeleteItem use it; GetItemSchema is internal (a dropdown helper) and is skipped.
    assert len(problems) == 2 and all("path parameter 'itemId'" in p for p in problems), _fmt(problems)
    assert any("(TagItem)" in p for p in problems) and any("(DeleteItem)" in p for p in problems)


def test_query_parameter_without_dropdown_fails_case_insensitively():
    spec = minimal_spec()
    op(spec, "DeleteItem")["parameters"].append({
        "name": "AutomationId", "in": "query", "type": "string", "x-ms-summary": "Automation",
        "description": "The automation."})
    problems = check_dropdown_parameters(spec)
    assert problems == ["DELETE /items/{itemId} (DeleteItem): query parameter 'AutomationId' needs a dropdown "
                        "(x-ms-dynamic-values or x-ms-dynamic-list)"]


def test_body_property_without_dropdown_fails():
    spec = minimal_spec()
    del spec["definitions"]["TagRequest"]["properties"]["tag"]["x-ms-dynamic-list"]
    problems = check_dropdown_parameters(spec, names=("tag",))
    assert len(problems) == 1 and "body property 'tag'" in problems[0] and "(TagItem)" in problems[0], problems


def test_nested_body_property_and_array_items():
    spec = minimal_spec()
    options = spec["definitions"]["TagRequest"]["properties"]["options"]["properties"]
    options["permissions"] = {"type": "array", "x-ms-summary": "Permissions", "description": "Permissions.",
                              "items": {"type": "string"}}
    problems = check_dropdown_parameters(spec, names=("permissions",))
    assert len(problems) == 1 and "body.options property 'permissions'" in problems[0], problems
    options["permissions"]["items"]["x-ms-dynamic-values"] = {"operationId": "ListTags", "value-path": "tag",
                                                              "parameters": {"itemId": {"parameter": "itemId"}}}
    assert check_dropdown_parameters(spec, names=("permissions",)) == []


def test_internal_and_excluded_operations_are_skipped():
    spec = minimal_spec()
    op(spec, "ListTags")["parameters"][0]["name"] = "campaignId"
    op(spec, "Health")["parameters"] = [{"name": "audienceId", "in": "query", "type": "string",
                                         "x-ms-summary": "Audience", "description": "An audience."}]
    assert check_dropdown_parameters(spec) == []
    op(spec, "ListTags")["x-ms-visibility"] = "advanced"
    assert any("(ListTags): query parameter 'campaignId'" in p for p in check_dropdown_parameters(spec))
