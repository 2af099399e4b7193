"""The generator: what goes into connector-definition/, and that the checked-in folder is current."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from service import connector
from service.connector import (
    BRAND_COLOR,
    DEFINITION_FILE,
    FILES,
    ICON_FILE,
    ICON_SIZE,
    ICON_SOURCE,
    PROPERTIES_FILE,
    README_FILE,
    ConnectorError,
    build_definition,
    build_properties,
    build_readme,
    check_output_current,
    iter_operations,
    load_spec,
    normalize_host,
    render_files,
    strip_vendor_extensions,
    write_all,
)
from tests.contract import minimal_spec, op

HOST = "marketing-actions.example.com"


@pytest.fixture(scope="module")
def spec() -> dict:
    return load_spec()


@pytest.fixture(scope="module")
def definition(spec) -> dict:
    return build_definition(spec, HOST)


def _ops(doc: dict) -> dict[str, tuple[str, str, dict]]:
    return {o["operationId"]: (path, method, o) for path, method, o, _ in iter_operations(doc)}


def _vendor_keys(node, found: set[str]) -> set[str]:
    if isinstance(node, dict):
        found.update(k for k in node if k.startswith("x-"))
        for v in node.values():
            _vendor_keys(v, found)
    elif isinstance(node, list):
        for v in node:
            _vendor_keys(v, found)
    return found


# ------------------------------------------------------------------------------------------ operations


def test_connector_has_exactly_the_non_excluded_operations(spec, definition):
    source, generated = _ops(spec), _ops(definition)
    excluded = {i for i, (_, _, o) in source.items() if o.get("x-connector-exclude") is True}
    assert "Health" in excluded  # the spec's own health endpoint stays out
    assert set(generated) == set(source) - excluded
    for opid in excluded:
        path, method, _ = source[opid]
        assert method not in definition["paths"].get(path, {})


def test_operations_are_copied_without_connexion_keys(spec, definition):
    """Every kept operation equals its source minus the non x-ms vendor keys; x-ms-* keys all survive."""
    generated = _ops(definition)
    for opid, (path, method, source_op) in _ops(spec).items():
        if opid not in generated:
            continue
        assert generated[opid][:2] == (path, method)
        assert generated[opid][2] == strip_vendor_extensions(source_op), opid
        ms_keys = {k for k in _vendor_keys(source_op, set()) if k.startswith("x-ms-")}
        assert ms_keys <= _vendor_keys(generated[opid][2], set()), opid


def test_no_connexion_only_key_is_left(definition):
    text = json.dumps(definition)
    for key in ("x-swagger-router-controller", "x-apikeyInfoFunc", "x-connector-exclude"):
        assert key not in text
    assert {k for k in _vendor_keys(definition, set()) if not k.startswith("x-ms-")} == set()


def test_strip_keeps_names_and_data():
    node = {
        "x-swagger-router-controller": "a.b", "x-ms-summary": "S", "x-nullable": True,
        "properties": {"x-custom": {"type": "string", "x-nullable": True, "example": {"x-data": 1}}},
        "headers": {"x-request-id": {"type": "string"}},
        "x-ms-dynamic-values": {"parameters": {"x-param": {"parameter": "p"}}},
    }
    assert strip_vendor_extensions(node) == {
        "x-ms-summary": "S",
        "properties": {"x-custom": {"type": "string", "example": {"x-data": 1}}},
        "headers": {"x-request-id": {"type": "string"}},
        "x-ms-dynamic-values": {"parameters": {"x-param": {"parameter": "p"}}},
    }


def test_security_definitions_are_the_api_key_header_or_entra_id(definition):
    schemes = definition["securityDefinitions"]
    assert schemes["api_key"] == {"type": "apiKey", "in": "header", "name": "X-API-Key"}
    entra = schemes["oauth2_auth"]
    assert entra["type"] == "oauth2" and entra["flow"] == "accessCode"
    assert entra["authorizationUrl"].startswith("https://login.microsoftonline.com/")
    assert "x-tokenInfoFunc" not in entra  # Connexion's key stays in openapi.yaml
    assert definition["security"] == [{"api_key": []}, {"oauth2_auth": []}]  # either one


# ------------------------------------------------------------------------------------------ root


def test_host_schemes_and_base_path(spec, definition):
    assert definition["host"] == HOST
    assert definition["schemes"] == ["https"]
    assert definition["basePath"] == (spec.get("basePath") or "/")
    assert definition["swagger"] == "2.0" and definition["info"] == spec["info"]
    assert definition["x-ms-connector-metadata"] == spec["x-ms-connector-metadata"]


@pytest.mark.parametrize("given,expected", [
    ("api.example.com", "api.example.com"),
    ("https://api.example.com/", "api.example.com"),
    ("http://api.example.com:8443", "api.example.com:8443"),
    ("  api.example.com  ", "api.example.com"),
])
def test_host_is_normalised(given, expected):
    assert normalize_host(given) == expected
    assert build_definition(minimal_spec(), given)["host"] == expected


@pytest.mark.parametrize("bad", ["", "api.example.com/v1", "api example.com", "{tenant}.example.com", "https://"])
def test_invalid_host_is_refused(bad):
    with pytest.raises(ConnectorError):
        build_definition(minimal_spec(), bad)


def test_default_host_comes_from_public_host(monkeypatch):
    monkeypatch.setenv("PUBLIC_HOST", "https://actions.acme.test/")
    assert connector.default_host() == "actions.acme.test"
    monkeypatch.delenv("PUBLIC_HOST")
    assert connector.default_host() == connector.DEFAULT_HOST


def test_unused_definitions_are_dropped_and_used_ones_kept():
    spec = minimal_spec()
    definition = build_definition(spec, HOST)
    # Health is only used by the excluded operation, Unused by nothing; Item only through ItemList (transitive).
    assert "Health" not in definition["definitions"] and "Unused" not in definition["definitions"]
    assert {"Item", "ItemList", "Tag", "TagRequest", "TagResult", "Status", "FieldsSchema"} == set(
        definition["definitions"])
    assert definition["parameters"] == strip_vendor_extensions(spec["parameters"])
    assert [t["name"] for t in definition["tags"]] == ["Items", "System"]
    del spec["paths"]["/connection"]
    assert [t["name"] for t in build_definition(spec, HOST)["tags"]] == ["Items"]


def test_the_real_definition_has_no_unused_definition(spec, definition):
    found: set[str] = set()
    connector.collect_refs(definition, found)
    for name in definition.get("definitions", {}):
        assert f"#/definitions/{name}" in found, name


def test_source_spec_is_not_modified(spec):
    before = json.dumps(spec, sort_keys=True)
    build_definition(spec, HOST)
    assert json.dumps(spec, sort_keys=True) == before


# ------------------------------------------------------------------------------------------ testConnection


def test_test_connection_capability_is_added_at_the_root(definition):
    assert definition["x-ms-capabilities"] == {"testConnection": {"operationId": "TestConnection", "parameters": {}}}
    path, method, test_op = _ops(definition)["TestConnection"]
    assert method == "get" and "x-ms-capabilities" not in test_op


def test_operation_level_test_connection_moves_to_the_root():
    spec = minimal_spec()
    op(spec, "TestConnection")["x-ms-capabilities"] = {"testConnection": {"operationId": "ListItems",
                                                                          "parameters": {}}}
    definition = build_definition(spec, HOST)
    assert definition["x-ms-capabilities"] == {"testConnection": {"operationId": "ListItems", "parameters": {}}}
    assert "x-ms-capabilities" not in op(definition, "TestConnection")


def test_existing_root_capability_is_kept():
    spec = minimal_spec()
    spec["x-ms-capabilities"] = {"testConnection": {"operationId": "ListItems", "parameters": {}}}
    assert build_definition(spec, HOST)["x-ms-capabilities"]["testConnection"]["operationId"] == "ListItems"


def test_no_capability_without_a_test_connection_operation():
    spec = minimal_spec()
    del spec["paths"]["/connection"]
    assert "x-ms-capabilities" not in build_definition(spec, HOST)


# ------------------------------------------------------------------------------------------ properties, icon, readme


def test_properties(definition):
    props = build_properties(HOST)["properties"]  # without an oauth2 scheme: the API key alone
    params = props["connectionParameters"]
    assert params["api_key"]["type"] == "securestring"
    assert params["api_key"]["uiDefinition"]["constraints"]["required"] == "true"
    host_param = params[connector.HOST_PARAMETER]
    assert host_param["type"] == "string" and host_param["defaultValue"] == HOST
    [policy] = props["policyTemplateInstances"]
    assert policy["templateId"] == "dynamichosturl"
    assert policy["parameters"] == {
        "x-ms-apimTemplateParameter.urlTemplate": f"https://@connectionParameters('{connector.HOST_PARAMETER}')"}
    assert props["iconBrandColor"].lower() not in ("#007ee5", "#ffffff")
    assert props["publisher"] and props["stackOwner"] and props["capabilities"] == ["actions"]
    assert "defaultValue" not in build_properties()["properties"]["connectionParameters"][connector.HOST_PARAMETER]


def test_base_path_is_folded_into_the_host_template():
    """dynamichosturl replaces the host and drops basePath, so a base path must be in the template."""
    spec = minimal_spec()
    spec["basePath"] = "/v1"
    files = render_files(spec, HOST)
    template = json.loads(files[PROPERTIES_FILE])["properties"]["policyTemplateInstances"][0]["parameters"]
    assert template["x-ms-apimTemplateParameter.urlTemplate"].endswith("')/v1")


def test_icon_is_230_square_opaque_in_the_brand_colour():
    import png  # pypng: reads any PNG (the icon is a checked-in file, not drawn by code)

    width, height, rows, info = png.Reader(bytes=ICON_SOURCE.read_bytes()).asRGBA8()
    assert (width, height) == (ICON_SIZE, ICON_SIZE) == (230, 230)
    pixels = [tuple(row[i:i + 4]) for row in rows for i in range(0, len(row), 4)]
    assert {p[3] for p in pixels} == {255}  # opaque: no transparent pixel
    brand = (*(int(BRAND_COLOR[i:i + 2], 16) for i in (1, 3, 5)), 255)
    for x, y in ((0, 0), (229, 0), (0, 229), (229, 229), (115, 5)):
        assert pixels[y * width + x] == brand
    white = sum(1 for p in pixels if p == (255, 255, 255, 255))  # the white glyph is drawn
    assert 0.05 < white / (width * height) < 0.5


def test_every_build_copies_the_checked_in_icon(tmp_path, spec):
    write_all(tmp_path, HOST, spec=spec)
    assert (tmp_path / ICON_FILE).read_bytes() == ICON_SOURCE.read_bytes()


def test_readme_has_the_template_sections_and_every_operation(spec, definition):
    readme = build_readme(definition, build_properties(HOST))
    sections = ["## Publisher: ", "## Prerequisites", "## Supported Operations", "## Obtaining Credentials",
                "## Getting Started", "## Known Issues and Limitations", "## Deployment Instructions"]
    positions = [readme.index(s) for s in sections]
    assert positions == sorted(positions)
    for _, _, o, _ in iter_operations(definition):
        assert o["summary"] in readme and " ".join(o["description"].split()) in readme
    kept = {o["operationId"] for _, _, o, _ in iter_operations(definition)}
    for _, _, o, _ in iter_operations(spec):
        if o["operationId"] not in kept:  # excluded operations are not documented as connector actions
            assert f"### {o['summary']}\n" not in readme and f"- {o['summary']}:" not in readme


# ------------------------------------------------------------------------------------------ files


def test_output_is_deterministic_ascii_with_trailing_newline(spec):
    first, second = render_files(spec, HOST), render_files(spec, HOST)
    assert first == second and set(first) == set(FILES)
    for name in (DEFINITION_FILE, PROPERTIES_FILE):
        assert first[name].endswith(b"\n") and first[name].isascii()
        assert json.loads(first[name])
    assert first[README_FILE].endswith(b"\n")


def test_checked_in_connector_definition_is_current():
    problems = check_output_current()
    assert problems == [], "\n".join(problems)


def test_drift_is_detected_with_a_build_hint(tmp_path, spec):
    write_all(tmp_path, HOST, spec=spec)
    assert check_output_current(tmp_path, spec) == []
    readme = tmp_path / README_FILE
    readme.write_text(readme.read_text() + "edited\n")
    icon = tmp_path / ICON_FILE
    icon.write_bytes(icon.read_bytes()[:-12])  # a file cut short
    problems = check_output_current(tmp_path, spec)
    assert len(problems) == 2
    assert all("python -m service.connector build" in p for p in problems)
    (tmp_path / PROPERTIES_FILE).unlink()
    assert any("apiProperties.json is missing" in p for p in check_output_current(tmp_path, spec))


def test_current_check_uses_the_host_recorded_in_the_folder(tmp_path, spec):
    write_all(tmp_path, "self-hosted.acme.test", spec=spec)
    assert check_output_current(tmp_path, spec) == []


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "service.connector", *args], cwd=connector.ROOT,
                          capture_output=True, text=True, timeout=120)


def test_cli_build_then_check(tmp_path):
    out = tmp_path / "cd"
    result = _run("build", "--host", "https://cli.example.com", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in out.iterdir()) == sorted(FILES)
    assert json.loads((out / DEFINITION_FILE).read_text())["host"] == "cli.example.com"
    result = _run("check", "--out", str(out))
    # Other helpers may have left openapi.yaml mid-edit: the check must at least not see this folder as stale.
    assert "differs from what the generator produces" not in result.stdout
    assert result.returncode in (0, 1) and ("violation" in result.stdout or result.returncode == 0)


def test_cli_check_fails_with_the_list_of_violations(tmp_path):
    spec = minimal_spec()
    op(spec, "TagItem")["summary"] = "Tag an item."
    del spec["definitions"]["Tag"]["properties"]["label"]["x-ms-summary"]
    spec_path = tmp_path / "openapi.yaml"
    spec_path.write_text(json.dumps(spec))  # JSON is YAML
    out = tmp_path / "cd"
    assert _run("build", "--spec", str(spec_path), "--out", str(out), "--host", HOST).returncode == 0
    result = _run("check", "--spec", str(spec_path), "--out", str(out))
    assert result.returncode == 1
    assert "summary must not end with punctuation" in result.stdout
    assert "definitions/Tag/properties/label: x-ms-summary is required" in result.stdout
    assert "violation(s)" in result.stdout


def test_cli_check_passes_on_a_compliant_folder(tmp_path):
    spec_path = tmp_path / "openapi.yaml"
    spec_path.write_text(json.dumps(minimal_spec()))
    out = tmp_path / "cd"
    assert _run("build", "--spec", str(spec_path), "--out", str(out), "--host", HOST).returncode == 0
    result = _run("check", "--spec", str(spec_path), "--out", str(out))
    # The fixture names no dropdown-rule parameter, so every rule applies and passes.
    assert result.returncode == 0, result.stdout + result.stderr


def test_cli_rejects_a_bad_host(tmp_path):
    result = _run("build", "--host", "bad host/x", "--out", str(tmp_path))
    assert result.returncode == 2 and "invalid host" in result.stderr
