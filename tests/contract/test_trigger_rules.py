"""Trigger rules of the connector checker: the real triggers comply, apiProperties declares the capability, and
each rule catches its violation on a small fixture with one polling trigger."""

from __future__ import annotations

import json

import pytest

from service.connector import build_definition, build_properties, check_properties, check_rules, load_spec
from service.connector import render_files
from service.connector.rules import has_triggers
from service.connector.spec import PROPERTIES_FILE, README_FILE, iter_operations
from tests.contract import minimal_spec, op

HOST = "items.example.com"


def with_trigger() -> dict:
    spec = minimal_spec()
    spec["paths"]["/triggers/items"] = {"get": {
        "tags": ["Items"], "operationId": "OnNewItem", "x-swagger-router-controller": "service.api.items",
        "x-ms-visibility": "important", "x-ms-trigger": "batch",
        "x-ms-trigger-metadata": {"kind": "query", "mode": "polling"},
        "x-ms-trigger-hint": "To see it work now, add an item.",
        "summary": "When an item is added", "description": "Fires for each new item.",
        "parameters": [{"name": "state", "in": "query", "required": False, "type": "string",
                        "x-ms-visibility": "internal", "x-ms-summary": "State", "description": "Set by the service."}],
        "responses": {
            "200": {"description": "New items.", "schema": {"$ref": "#/definitions/ItemList"}},
            "202": {"description": "Nothing new yet."},
            "default": {"description": "Error, as problem JSON."},
        },
    }}
    return spec


def test_real_triggers_are_polling_batch_triggers():
    """Every trigger but the webhook trigger (tests/contract/test_webhook_trigger.py) polls."""
    spec = load_spec()
    triggers = [o for _, _, o, _ in iter_operations(spec) if o.get("x-ms-trigger") and
                o["operationId"] != "OnPlatformEvent"]
    assert {o["operationId"] for o in triggers} == {"OnContactAdded", "OnContactChanged", "OnContactBounced",
                                                   "OnContactUnsubscribed", "OnMailingInteraction"}
    for o in triggers:
        assert o["x-ms-trigger"] == "batch" and o["x-ms-trigger-metadata"] == {"kind": "query", "mode": "polling"}
        assert o["x-ms-trigger-hint"].strip()
        for code in ("200", "202"):
            assert set(o["responses"][code]["headers"]) == {"Location", "Retry-After"}
        state = [p for p in o["parameters"] if p.get("$ref", "").endswith("/TriggerState")]
        assert state, f"{o['operationId']} needs the internal state parameter"
    assert spec["parameters"]["TriggerState"]["x-ms-visibility"] == "internal"


def test_fixture_with_a_trigger_complies():
    spec = with_trigger()
    assert check_rules(spec) == []
    definition = build_definition(spec, HOST)
    assert check_rules(definition) == []
    assert has_triggers(definition)
    props = build_properties(HOST, triggers=True)
    assert props["properties"]["capabilities"] == ["actions", "triggers"]
    assert check_properties(props, definition) == []


def _mutate(path: tuple, value):
    def mutate(o):
        node = o
        for key in path[:-1]:
            node = node[key]
        if value is _DELETE:
            del node[path[-1]]
        else:
            node[path[-1]] = value
    return mutate


_DELETE = object()

CASES = {
    "unknown trigger kind": (_mutate(("x-ms-trigger",), "many"), "x-ms-trigger must be single or batch"),
    "no hint": (_mutate(("x-ms-trigger-hint",), _DELETE), "x-ms-trigger-hint"),
    "no polling metadata": (_mutate(("x-ms-trigger-metadata",), _DELETE), "x-ms-trigger-metadata"),
    "push metadata": (_mutate(("x-ms-trigger-metadata",), {"kind": "query", "mode": "push"}),
                      "x-ms-trigger-metadata must be"),
    "no 202": (_mutate(("responses", "202"), _DELETE), "needs a 202 response"),
    "200 without schema": (_mutate(("responses", "200"), {"description": "New items."}),
                           "needs a 200 response with the events' schema"),
    "batch that is no array": (_mutate(("responses", "200", "schema"), {"$ref": "#/definitions/Item"}),
                               "a batch trigger answers an array"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_trigger_rule_catches_its_violation(case):
    mutate, what = CASES[case]
    spec = with_trigger()
    mutate(op(spec, "OnNewItem"))
    problems = check_rules(spec)
    assert any("OnNewItem" in p and what in p for p in problems), problems


def test_a_schemaless_202_is_only_allowed_for_polling_triggers():
    spec = minimal_spec()
    op(spec, "TagItem")["responses"]["202"] = {"description": "Accepted."}
    assert any("TagItem" in p and "2xx response needs a schema" in p for p in check_rules(spec))
    spec = with_trigger()
    trigger = op(spec, "OnNewItem")
    trigger["x-ms-trigger-metadata"] = {"kind": "query", "mode": "push"}
    assert any("OnNewItem" in p and "responses/202: 2xx response needs a schema" in p for p in check_rules(spec))


def test_a_post_polling_trigger_is_refused():
    spec = with_trigger()
    spec["paths"]["/triggers/items"]["post"] = spec["paths"]["/triggers/items"].pop("get")
    assert any("must be a GET operation" in p for p in check_rules(spec))


def test_properties_must_declare_the_capabilities_the_definition_has():
    definition = build_definition(with_trigger(), HOST)
    problems = check_properties(build_properties(HOST), definition)
    assert any("must list 'triggers'" in p for p in problems), problems
    plain = build_definition(minimal_spec(), HOST)
    problems = check_properties(build_properties(HOST, triggers=True), plain)
    assert any("lists 'triggers' but the definition has none" in p for p in problems), problems


def test_rendered_folder_declares_triggers_and_lists_them_in_the_readme():
    files = render_files(with_trigger(), HOST)
    assert json.loads(files[PROPERTIES_FILE])["properties"]["capabilities"] == ["actions", "triggers"]
    readme = files[README_FILE].decode()
    assert "## Triggers" in readme and "When an item is added" in readme
    assert readme.index("## Triggers") < readme.index("## Obtaining Credentials")
    plain = render_files(minimal_spec(), HOST)
    assert json.loads(plain[PROPERTIES_FILE])["properties"]["capabilities"] == ["actions"]
    assert "## Triggers" not in plain[README_FILE].decode()
