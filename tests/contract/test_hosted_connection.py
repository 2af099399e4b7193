"""The hosted connection types (issue 22): the maker's platform account, forwarded by setheader policies to the
publisher's fixed host, alone or with the Entra ID sign-in; the single-mode types unchanged; the rules that
guard the policies' references."""

from __future__ import annotations

import json

import pytest

from service.connector import (
    PROPERTIES_FILE,
    build_definition,
    build_properties,
    check_output_current,
    check_properties,
    load_spec,
    validate_schemas,
    write_all,
)
from service.connector.spec import EntraConnection

HOST = "hosted.marketing-actions.example.com"
ENTRA = EntraConnection("11111111-2222-4333-8444-555555555555", "api://66666666-7777-4888-8999-000000000000")
HEADERS = {"platform": "X-Platform", "platformKey": "X-Platform-Key", "platformSecret": "X-Platform-Secret"}


@pytest.fixture(scope="module")
def definition() -> dict:
    return build_definition(load_spec(), HOST)


def props(definition, **kwargs) -> dict:
    return build_properties(HOST, security_definitions=definition["securityDefinitions"], entra=ENTRA,
                            triggers=True, **kwargs)


def sets(properties) -> dict:
    return {v["name"]: v for v in properties["properties"]["connectionParameterSets"]["values"]}


def test_hosted_types_next_to_the_single_mode_ones(definition):
    p = props(definition)
    by_name = sets(p)
    assert list(by_name) == ["apiKey", "entraId", "hosted", "hostedEntraId"]
    assert set(by_name["apiKey"]["parameters"]) == {"hostName", "api_key"}  # single mode: unchanged
    assert set(by_name["entraId"]["parameters"]) == {"hostName", "token"}
    assert set(by_name["hosted"]["parameters"]) == {"hostName", *HEADERS}
    assert set(by_name["hostedEntraId"]["parameters"]) == {"hostName", *HEADERS, "token"}
    assert by_name["hostedEntraId"]["parameters"]["token"] == by_name["entraId"]["parameters"]["token"]
    for name in ("hosted", "hostedEntraId"):
        params = by_name[name]["parameters"]
        host = params["hostName"]
        assert host["defaultValue"] == HOST
        assert host["uiDefinition"]["constraints"]["allowedValues"] == [{"text": HOST, "value": HOST}]
        platforms = params["platform"]["uiDefinition"]["constraints"]["allowedValues"]
        assert [v["value"] for v in platforms] == ["spotler", "piggy", "spoki"]
        assert params["platform"]["type"] == "string"
        assert params["platformKey"]["type"] == params["platformSecret"]["type"] == "securestring"
        assert all(v["uiDefinition"]["constraints"]["required"] == "true" for v in params.values())
    assert validate_schemas(definition, p) + check_properties(p, definition) == []


def test_setheader_policies_forward_the_platform_account(definition):
    policies = props(definition)["properties"]["policyTemplateInstances"]
    assert policies[0]["templateId"] == "dynamichosturl"
    headers = {}
    for policy in policies[1:]:
        assert policy["templateId"] == "setheader"
        parameters = policy["parameters"]
        assert parameters["x-ms-apimTemplateParameter.existsAction"] == "override"
        assert parameters["x-ms-apimTemplate-policySection"] == "Request"
        assert "x-ms-apimTemplate-operationName" not in parameters  # every operation
        headers[parameters["x-ms-apimTemplateParameter.name"]] = parameters["x-ms-apimTemplateParameter.value"]
    assert headers == {h: f"@connectionParameters('{p}','')" for p, h in HEADERS.items()}


def test_without_an_entra_scheme_there_are_no_hosted_types():
    p = build_properties(HOST)["properties"]
    assert "connectionParameterSets" not in p
    assert [x["templateId"] for x in p["policyTemplateInstances"]] == ["dynamichosturl"]


def _policy(p, header):
    return next(x for x in p["properties"]["policyTemplateInstances"]
                if x["parameters"].get("x-ms-apimTemplateParameter.name") == header)


def test_rules_catch_a_reference_a_type_lacks_without_a_default(definition):
    p = props(definition)
    _policy(p, "X-Platform")["parameters"]["x-ms-apimTemplateParameter.value"] = "@connectionParameters('platform')"
    problems = check_properties(p, definition)
    assert any("@connectionParameters('platform') is not a connection parameter of" in x and "values[0]" in x
               for x in problems), problems
    p = props(definition)
    _policy(p, "X-Platform-Key")["parameters"]["x-ms-apimTemplateParameter.value"] = \
        "@connectionParameters('nowhere','')"
    assert any("@connectionParameters('nowhere')" in x for x in check_properties(p, definition))
    p = props(definition)
    sets(p)["hosted"]["parameters"]["platformKey"]["uiDefinition"]["constraints"]["required"] = "false"
    assert any("platformKey" in x and "required" in x for x in check_properties(p, definition))


def test_publisher_key_is_a_build_choice_recorded_in_the_folder(tmp_path, definition):
    p = props(definition, hosted_publisher_key=True)
    hosted = sets(p)["hosted"]["parameters"]
    assert hosted["api_key"]["type"] == "securestring"
    assert "api_key" not in sets(p)["hostedEntraId"]["parameters"]
    assert validate_schemas(definition, p) + check_properties(p, definition) == []
    out = tmp_path / "cd"
    write_all(out, HOST, entra=ENTRA, hosted_publisher_key=True)
    written = json.loads((out / PROPERTIES_FILE).read_text())
    assert "api_key" in sets(written)["hosted"]["parameters"]
    assert check_output_current(out) == []  # rebuilt with the recorded choice
