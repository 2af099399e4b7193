"""The single-mode connection types (API key | Microsoft Entra ID; the hosted ones: test_hosted_connection.py):
what the generator writes, and that the rules and the schema checks catch each violation."""

from __future__ import annotations

import copy
import json
import subprocess
import sys

import pytest

from service.connector import (
    DEFINITION_FILE,
    PROPERTIES_FILE,
    build_definition,
    build_properties,
    check_connector_definition,
    check_output_current,
    check_properties,
    load_spec,
    render_files,
    validate_schemas,
)
from service.connector.spec import EntraConnection

HOST = "marketing-actions.example.com"
ENTRA = EntraConnection("11111111-2222-4333-8444-555555555555", "api://66666666-7777-4888-8999-000000000000")


@pytest.fixture(scope="module")
def definition() -> dict:
    return build_definition(load_spec(), HOST)


def props(definition, entra=ENTRA) -> dict:
    return build_properties(HOST, security_definitions=definition["securityDefinitions"], entra=entra,
                            triggers=True)  # the spec has polling triggers


def sets(properties) -> dict:
    return {v["name"]: v for v in properties["properties"]["connectionParameterSets"]["values"]}


def test_two_connection_types_share_the_host_and_differ_in_credentials(definition):
    p = props(definition)
    assert "connectionParameters" not in p["properties"]
    by_name = sets(p)
    assert set(by_name["apiKey"]["parameters"]) == {"hostName", "api_key"}
    assert set(by_name["entraId"]["parameters"]) == {"hostName", "token"}
    oauth = by_name["entraId"]["parameters"]["token"]["oAuthSettings"]
    assert (oauth["identityProvider"], oauth["clientId"], oauth["redirectMode"]) == (
        "aad", ENTRA.client_id, "GlobalPerConnector")
    assert oauth["customParameters"]["resourceUri"] == {"value": ENTRA.resource}
    assert oauth["customParameters"]["loginUri"] == {"value": "https://login.microsoftonline.com"}
    assert validate_schemas(definition, p) + check_properties(p, definition) == []


def _set_param(name, param, fn):
    def mutate(p):
        fn(sets(p)[name]["parameters"][param])
    return mutate


CASES = {
    "not aad": (_set_param("entraId", "token", lambda t: t["oAuthSettings"].__setitem__("identityProvider", "oauth2")),
                "identityProvider must be aad"),
    "no client id": (_set_param("entraId", "token", lambda t: t["oAuthSettings"].__setitem__("clientId", "")),
                     "clientId"),
    "no resource": (_set_param("entraId", "token", lambda t: t["oAuthSettings"]["customParameters"].pop(
        "resourceUri")), "resourceUri"),
    "global redirect": (_set_param("entraId", "token", lambda t: t["oAuthSettings"].__setitem__(
        "redirectMode", "Global")), "GlobalPerConnector"),
    "first party": (_set_param("entraId", "token", lambda t: t["oAuthSettings"]["properties"].__setitem__(
        "IsFirstParty", "True")), "IsFirstParty"),
    "optional parameter": (_set_param("entraId", "hostName", lambda h: h["uiDefinition"]["constraints"].__setitem__(
        "required", "false")), 'constraints.required must be "true"'),
    "host missing in a type": (lambda p: sets(p)["entraId"]["parameters"].pop("hostName"),
                               "@connectionParameters('hostName') is not a connection parameter"),
    "no api key type": (lambda p: p["properties"]["connectionParameterSets"]["values"].pop(0), "api_key"),
    "one type only": (lambda p: p["properties"]["connectionParameterSets"].__setitem__(
        "values", p["properties"]["connectionParameterSets"]["values"][:1]), "at least two"),
    "duplicate names": (lambda p: sets(p)["entraId"].__setitem__("name", "apiKey"), "unique name"),
    "both forms": (lambda p: p["properties"].__setitem__("connectionParameters", {}), "not both"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_connection_type_rules_catch_violations(definition, case):
    mutate, what = CASES[case]
    p = props(definition)
    mutate(p)
    problems = check_properties(p, definition)
    assert any(what in x for x in problems), f"{case}: {problems}"


def test_the_definition_needs_a_scheme_for_each_type(definition):
    p = props(definition)
    without_oauth = copy.deepcopy(definition)
    without_oauth["securityDefinitions"].pop("oauth2_auth")
    assert any("needs an oauth2 scheme" in x for x in check_properties(p, without_oauth))
    broken = copy.deepcopy(definition)
    broken["securityDefinitions"]["oauth2_auth"]["tokenUrl"] = "https://evil.example.com/token"
    broken["security"].append({"nope": []})
    problems = check_connector_definition(broken)
    assert any("tokenUrl" in x for x in problems) and any("nope is not in securityDefinitions" in x
                                                         for x in problems)


def test_schema_checks_see_inside_each_connection_type(definition):
    p = props(definition)
    sets(p)["entraId"]["parameters"]["token"]["oAuthSettings"]["redirectMode"] = "Sideways"
    sets(p)["apiKey"]["parameters"]["api_key"]["type"] = "password"
    p["properties"]["connectionParameterSets"]["uiDefinition"].pop("description")
    problems = validate_schemas(None, p)
    assert any("connectionParameterSets/values/1/parameters/token" in x and "Sideways" in x for x in problems)
    assert any("connectionParameterSets/values/0/parameters/api_key" in x for x in problems)
    assert any("properties/connectionParameterSets: uiDefinition" in x and "description" in x for x in problems)


def test_built_app_ids_are_recorded_and_checked(tmp_path):
    out = tmp_path / "cd"
    cmd = [sys.executable, "-m", "service.connector"]
    subprocess.run([*cmd, "build", "--out", str(out), "--host", HOST, "--entra-client-id", ENTRA.client_id,
                    "--entra-resource", ENTRA.resource], check=True, capture_output=True, timeout=120)
    written = json.loads((out / PROPERTIES_FILE).read_text())
    assert sets(written)["entraId"]["parameters"]["token"]["oAuthSettings"]["clientId"] == ENTRA.client_id
    assert check_output_current(out) == []  # compared with the ids recorded in the folder
    stale = render_files(load_spec(), HOST)  # placeholders: differs from the recorded build
    assert json.loads(stale[PROPERTIES_FILE]) != written
    assert json.loads(stale[DEFINITION_FILE]) == json.loads((out / DEFINITION_FILE).read_text())
