"""The connector folder on disk: render, write, and check that the checked-in copy is current."""

from __future__ import annotations

import json
import os
from pathlib import Path

from service.connector.compat import RELEASED_DIR, check_compatible, load_released
from service.connector.definition import build_definition, build_properties
from service.connector.dynamic import check_dropdown_parameters, check_dynamic_references
from service.connector.readme import build_readme
from service.connector.rules import (
    check_connector_definition,
    check_properties,
    check_rules,
    has_triggers,
    validate_schemas,
)
from service.connector.spec import (
    DEFINITION_FILE,
    ICON_FILE,
    ICON_SOURCE,
    OUT_DIR,
    PROPERTIES_FILE,
    README_FILE,
    SPEC_PATH,
    ConnectorError,
    EntraConnection,
    default_entra,
    default_host,
    load_spec,
    recorded_entra,
    recorded_publisher_key,
)


def _dump_json(data: dict) -> bytes:
    return (json.dumps(data, indent=2, ensure_ascii=True) + "\n").encode("ascii")


def _properties(definition: dict, entra: EntraConnection | None, publisher_key: bool = False) -> dict:
    return build_properties(definition["host"], definition.get("basePath", "/"),
                            definition.get("securityDefinitions"), entra, triggers=has_triggers(definition),
                            hosted_publisher_key=publisher_key)


def _recorded(out: Path) -> tuple[str, EntraConnection, bool]:
    """The host, the Entra ID values and the hosted publisher key choice the checked-in folder was built with."""
    host, entra, publisher_key = default_host(), EntraConnection(), False
    try:
        host = json.loads((out / DEFINITION_FILE).read_text(encoding="utf-8")).get("host") or host
    except (OSError, ValueError):
        pass
    try:
        properties = json.loads((out / PROPERTIES_FILE).read_text(encoding="utf-8"))
        entra = recorded_entra(properties) or entra
        publisher_key = recorded_publisher_key(properties)
    except (OSError, ValueError):
        pass
    return host, entra, publisher_key


def render_files(spec: dict, host: str, entra: EntraConnection | None = None,
                 hosted_publisher_key: bool = False) -> dict[str, bytes]:
    """Every file of the connector folder, as bytes, keyed by file name. ``entra``: the Entra ID connection's
    app ids (placeholders when None); ``hosted_publisher_key``: the hosted connection asks for the publisher's
    API key too."""
    definition = build_definition(spec, host)
    properties = _properties(definition, entra, hosted_publisher_key)
    return {
        DEFINITION_FILE: _dump_json(definition),
        PROPERTIES_FILE: _dump_json(properties),
        ICON_FILE: ICON_SOURCE.read_bytes(),
        README_FILE: build_readme(definition, properties).encode("utf-8"),
    }


def write_all(out_dir: str | os.PathLike = OUT_DIR, host: str | None = None,
              spec: dict | None = None, entra: EntraConnection | None = None,
              hosted_publisher_key: bool = False) -> list[Path]:
    """Generate the connector folder; returns the written paths. ``entra`` defaults to the environment
    (``ENTRA_CONNECTOR_CLIENT_ID``, ``ENTRA_APP_ID_URI``/``ENTRA_CLIENT_ID``), else placeholders."""
    spec = spec if spec is not None else load_spec()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, data in render_files(spec, host or default_host(), entra or default_entra(),
                                   hosted_publisher_key).items():
        target = out / name
        target.write_bytes(data)
        written.append(target)
    return written


def check_output_current(out_dir: str | os.PathLike = OUT_DIR, spec: dict | None = None) -> list[str]:
    """The checked-in folder equals what the generator produces (with the host and Entra ID app ids recorded
    in it)."""
    out = Path(out_dir)
    hint = "run `python -m service.connector build` and commit connector-definition/"
    current = out / DEFINITION_FILE
    if not current.is_file():
        return [f"{current} is missing: {hint}"]
    try:
        json.loads(current.read_text(encoding="utf-8"))
        host, entra, publisher_key = _recorded(out)
        expected = render_files(spec if spec is not None else load_spec(), host, entra, publisher_key)
    except (ValueError, ConnectorError) as exc:
        return [f"{current}: cannot compare ({exc}): {hint}"]
    problems = []
    for name, data in expected.items():
        target = out / name
        if not target.is_file():
            problems.append(f"{target} is missing: {hint}")
            continue
        if target.read_bytes() != data:
            problems.append(f"{target} differs from what the generator produces: {hint}")
    return problems


def check_all(spec_path: str | os.PathLike = SPEC_PATH, out_dir: str | os.PathLike = OUT_DIR) -> list[str]:
    """Everything ``python -m service.connector check`` verifies."""
    spec = load_spec(spec_path)
    out = Path(out_dir)
    problems = [f"openapi.yaml: {p}" for p in check_rules(spec)]
    problems += [f"openapi.yaml: {p}" for p in check_dynamic_references(spec)]
    problems += [f"openapi.yaml: {p}" for p in check_dropdown_parameters(spec)]
    host, entra, publisher_key = _recorded(out)
    definition = build_definition(spec, host)
    properties = _properties(definition, entra, publisher_key)
    problems += [f"{DEFINITION_FILE}: {p}" for p in check_rules(definition)]
    problems += [f"{DEFINITION_FILE}: {p}" for p in check_connector_definition(definition)]
    problems += [f"{PROPERTIES_FILE}: {p}" for p in check_properties(properties, definition)]
    problems += validate_schemas(definition, properties)
    problems += check_output_current(out, spec)
    problems += check_against_release(definition, out)
    return list(dict.fromkeys(problems))


def released_path(out_dir: str | os.PathLike = OUT_DIR) -> Path:
    """Where the last released definition of the connector folder ``out_dir`` is kept."""
    return Path(out_dir) / RELEASED_DIR.name / DEFINITION_FILE


def check_against_release(definition: dict, out_dir: str | os.PathLike = OUT_DIR) -> list[str]:
    """The breaking-change rules between the folder's released copy and ``definition`` (nothing to compare
    before the first release)."""
    released = load_released(released_path(out_dir))
    if released is None:
        return []
    return [f"compared with {RELEASED_DIR.name}/{DEFINITION_FILE}: {p}" for p in check_compatible(released, definition)]


def release(spec_path: str | os.PathLike = SPEC_PATH, out_dir: str | os.PathLike = OUT_DIR) -> tuple[Path, list[str]]:
    """Record the current definition as released: only when every check passes (the folder is current and
    compatible with the previous release). Returns the released copy's path and the problems (then nothing
    is written)."""
    problems = check_all(spec_path, out_dir)
    target = released_path(out_dir)
    if problems:
        return target, problems
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes((Path(out_dir) / DEFINITION_FILE).read_bytes())
    return target, []
