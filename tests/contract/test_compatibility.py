"""A stable contract: the generated connector definition against the last released one, under the
breaking-change rules Power Platform applies (no operation removed, no required input added, no output field
removed, no type changed; an incompatible change is a new operation version with the old one deprecated)."""

from __future__ import annotations

import copy
import json
import subprocess
import sys

import pytest

from service import connector
from service.connector import (
    DEFINITION_FILE,
    build_definition,
    check_compatible,
    load_released,
    load_spec,
    released_path,
)
from service.connector.compat import RELEASED_PATH
from tests.contract import minimal_spec, op


@pytest.fixture(scope="module")
def released() -> dict:
    doc = load_released()
    assert doc is not None, f"{RELEASED_PATH} is missing: run `python -m service.connector release`"
    return doc


@pytest.fixture(scope="module")
def generated(released) -> dict:
    return build_definition(load_spec(), released["host"])


@pytest.fixture
def current(generated) -> dict:
    """A fresh copy of what the generator produces now (the test may change it)."""
    return copy.deepcopy(generated)


def _op(doc: dict, operation_id: str) -> dict:
    return op(doc, operation_id)


def _problems_matching(problems: list[str], needle: str) -> list[str]:
    return [p for p in problems if needle in p]


def test_the_generated_definition_is_compatible_with_the_release(released, current):
    assert check_compatible(released, current) == []
    assert released_path() == RELEASED_PATH


def test_additions_are_compatible(released, current):
    """What the other changes in flight do: new operations, optional inputs, new output fields."""
    new_op = copy.deepcopy(_op(current, "ListTags"))
    new_op["operationId"] = "ListSegments"
    current["paths"]["/segments"] = {"get": new_op}
    start = _op(current, "StartAutomation")
    start["parameters"].append({"name": "dryRun", "in": "query", "type": "boolean", "required": False,
                                "x-ms-summary": "Dry run", "description": "Check only."})
    current["definitions"]["StartAutomationRequest"]["properties"]["note"] = {"type": "string"}
    current["definitions"]["StartAutomationResult"]["properties"]["startedAt"] = {"type": "string"}
    assert check_compatible(released, current) == []


def test_a_removed_operation_is_breaking(released, current):
    del current["paths"]["/tags"]
    problems = check_compatible(released, current)
    assert _problems_matching(problems, "ListTags (GET /tags): the operation has been deleted")
    assert _problems_matching(problems, "x-ms-api-annotation")  # says how to do it instead


def test_a_new_required_parameter_is_breaking(released, current):
    _op(current, "ListAutomations").setdefault("parameters", []).append(
        {"name": "folder", "in": "query", "type": "string", "required": True})
    assert _problems_matching(check_compatible(released, current),
                              "ListAutomations (GET /automations): query parameter 'folder': the required input")


def test_an_optional_body_field_made_required_is_breaking(released, current):
    request = current["definitions"]["StartAutomationRequest"]
    request["required"] = [*request.get("required", []), "fieldsText"]
    assert _problems_matching(check_compatible(released, current),
                              "body.fieldsText: the required input field has been added (is now required)")


def test_a_new_required_body_field_is_breaking(released, current):
    request = current["definitions"]["StartAutomationRequest"]
    request["properties"]["campaign"] = {"type": "string"}
    request["required"] = [*request.get("required", []), "campaign"]
    assert _problems_matching(check_compatible(released, current), "body.campaign: the required input field has "
                                                                   "been added (is new and required)")


def test_a_removed_output_field_is_breaking(released, current):
    del current["definitions"]["StartAutomationResult"]["properties"]["automationContactId"]
    assert _problems_matching(check_compatible(released, current),
                              "response 200.automationContactId: the output field has been deleted")


def test_a_nested_output_field_removed_is_breaking(released, current):
    del current["definitions"]["AutomationRunResult"]["properties"]["result"]
    assert _problems_matching(check_compatible(released, current), "response 200.results[].result: the output "
                                                                   "field has been deleted")


def test_a_changed_output_type_is_breaking(released, current):
    current["definitions"]["StartAutomationResult"]["properties"]["jobId"] = {"type": "integer"}
    assert _problems_matching(check_compatible(released, current),
                              "response 200.jobId: the type has been changed for the output field (string -> "
                              "integer)")


def test_a_changed_input_type_is_breaking(released, current):
    current["definitions"]["StartAutomationRequest"]["properties"]["createContactIfMissing"]["type"] = "string"
    assert _problems_matching(check_compatible(released, current), "body.createContactIfMissing: the type has "
                                                                   "been changed for the input field")


def _incompatible_v2(current: dict, *, deprecate_v1: bool) -> None:
    """StartAutomationV2 needs a new required input; StartAutomation stays as it was."""
    v1 = _op(current, "StartAutomation")
    v2 = copy.deepcopy(v1)
    v2["operationId"] = "StartAutomationV2"
    v2["x-ms-api-annotation"] = {"family": "StartAutomation", "revision": 2}
    v2["parameters"].append({"name": "channel", "in": "query", "type": "string", "required": True})
    current["paths"]["/v2/automations/{automationId}/start"] = {"post": v2}
    if deprecate_v1:
        v1["deprecated"] = True
        v1["summary"] += " (deprecated)"


def test_an_incompatible_change_as_a_new_version_with_the_old_one_deprecated_passes(released, current):
    _incompatible_v2(current, deprecate_v1=True)
    assert check_compatible(released, current) == []


def test_a_new_version_needs_the_old_one_deprecated(released, current):
    _incompatible_v2(current, deprecate_v1=False)
    assert _problems_matching(check_compatible(released, current),
                              "StartAutomation: revision 1 of family StartAutomation has a newer revision (2)")


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "service.connector", *args], cwd=connector.ROOT,
                          capture_output=True, text=True, timeout=120)


def test_release_records_the_definition_and_later_checks_compare_with_it(tmp_path):
    spec_path, out = tmp_path / "openapi.yaml", tmp_path / "cd"
    spec = minimal_spec()
    spec_path.write_text(json.dumps(spec))
    assert _run("build", "--spec", str(spec_path), "--out", str(out)).returncode == 0
    result = _run("release", "--spec", str(spec_path), "--out", str(out))
    assert result.returncode == 0, result.stdout + result.stderr
    released = out / "released" / DEFINITION_FILE
    assert released.read_bytes() == (out / DEFINITION_FILE).read_bytes()

    # an operation disappears from the spec: check and release both refuse, the release stays as it was
    path, removed = "/items/{itemId}", "DeleteItem"
    assert spec["paths"][path].pop("delete")["operationId"] == removed
    if not any(k in spec["paths"][path] for k in ("get", "post", "put", "patch", "delete")):
        del spec["paths"][path]
    spec_path.write_text(json.dumps(spec))
    before = released.read_bytes()
    assert _run("build", "--spec", str(spec_path), "--out", str(out)).returncode == 0
    check = _run("check", "--spec", str(spec_path), "--out", str(out))
    assert check.returncode == 1 and f"{removed} (DELETE {path}): the operation has been deleted" in check.stdout
    assert _run("release", "--spec", str(spec_path), "--out", str(out)).returncode == 1
    assert released.read_bytes() == before
