"""The documented capabilities agree with what the service answers.

* ``docs/capabilities.md`` holds the table (the README links to it), and each cell (✓ or "no") matches
  ``GET /capabilities`` of that platform in sandbox mode, with the reasons.
* Every action's description in ``openapi.yaml`` ends with the sentence naming the platforms that support it.

The expected answers come from the running API (the real app factory, one app per platform), not from
``service.capabilities_table``, so a mistake in the generator cannot hide itself.
"""

from __future__ import annotations

import re
import socket

import pytest
import yaml

from service import capabilities_table as table
from service.actions.catalog import OPERATION_IDS, OPERATIONS
from service.app import create_app
from service.config import PROVIDERS
from tests.conftest import API_KEY

ROOT = table.ROOT
HTTP_METHODS = ("get", "put", "post", "delete", "patch")
ROW = re.compile(r"^\|\s*([A-Za-z]+)\s*\|(.*)\|\s*$")


def _closed_loopback_url() -> str:
    """A loopback URL nobody listens on: GetCapabilities must not need the platform at all."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


@pytest.fixture(scope="module")
def api_capabilities(tmp_path_factory) -> dict[str, dict[str, dict]]:
    """platform -> operationId -> the GetCapabilities item, from each platform's app in sandbox mode."""
    from service.config import Settings

    out = {}
    for platform in PROVIDERS:
        db = tmp_path_factory.mktemp(platform) / "ledger.db"
        settings = Settings(provider=platform, api_keys=(API_KEY,), database_url=f"sqlite:///{db}",
                            validate_responses=True, sandbox_upstream_url=_closed_loopback_url())
        with create_app(settings).test_client() as client:
            r = client.get("/capabilities", headers={"X-API-Key": API_KEY})
            assert r.status_code == 200, r.text
            body = r.json()
            health = client.get("/health").json()
        assert body["provider"] == health["provider"] == platform
        assert body["mode"] == health["mode"] == "sandbox"
        out[platform] = {item["operationId"]: item for item in body["operations"]}
    return out


def parse_table(block: str) -> tuple[list[str], dict[str, list[str]]]:
    """Header platform names and operationId -> cells, from the markdown block."""
    lines = [x for x in block.splitlines() if x.startswith("|")]
    assert len(lines) >= 3, f"no markdown table in:\n{block}"
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    rows = {}
    for line in lines[2:]:
        m = ROW.match(line)
        assert m, f"unreadable table row: {line!r}"
        rows[m.group(1)] = [c.strip() for c in m.group(2).split("|")]
    return header, rows


def check_block(block: str, api_capabilities: dict, where: str) -> None:
    header, rows = parse_table(block)
    names = [table.DISPLAY_NAMES[p] for p in PROVIDERS]
    assert header[1:] == names, f"{where}: columns must be {names}, got {header[1:]}"
    assert list(rows) == [o.operation_id for o in OPERATIONS], f"{where}: one row per action, in catalog order"
    for op, cells in rows.items():
        assert len(cells) == len(PROVIDERS), f"{where}: row {op} needs one cell per platform"
        for platform, cell in zip(PROVIDERS, cells, strict=True):
            item = api_capabilities[platform][op]
            expected = table.YES if item["supported"] else table.NO
            assert cell == expected, f"{where}: {op} on {platform} says {cell!r}, GetCapabilities says {expected!r}"
            if not item["supported"]:
                assert item["reason"] in block, f"{where}: the reason for {op} on {platform} is missing"


def test_docs_capabilities_matches_get_capabilities(api_capabilities):
    path = ROOT / "docs" / "capabilities.md"
    assert path.exists(), "docs/capabilities.md is missing: run python -m service.capabilities_table --write"
    check_block(path.read_text(encoding="utf-8"), api_capabilities, "docs/capabilities.md")


def test_docs_capabilities_is_what_the_generator_writes():
    assert (ROOT / "docs" / "capabilities.md").read_text(encoding="utf-8") == table.render_markdown(), \
        "docs/capabilities.md is stale: run python -m service.capabilities_table --write"


def test_readme_links_the_capability_table():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "](docs/capabilities.md)" in readme, "README.md must link to docs/capabilities.md"
    assert table.START_MARKER not in readme, "the capability table lives in docs/capabilities.md only"


def test_generator_agrees_with_get_capabilities(api_capabilities):
    matrix = table.capability_matrix()
    for platform in PROVIDERS:
        for op in OPERATION_IDS:
            item = api_capabilities[platform][op]
            assert (matrix[platform][op] is None) == item["supported"], (platform, op)
            if not item["supported"]:
                assert matrix[platform][op] == item["reason"], (platform, op)


def test_replace_readme_block_keeps_the_rest():
    text = f"intro\n{table.START_MARKER}\nold\n{table.END_MARKER}\noutro\n"
    out = table.replace_readme_block(text, "| new |\n")
    assert out == f"intro\n{table.START_MARKER}\n| new |\n{table.END_MARKER}\noutro\n"
    assert table.readme_block(out) == "| new |"
    with pytest.raises(ValueError):
        table.replace_readme_block("no markers here", "x")


@pytest.mark.parametrize("platforms, sentence", [
    (["Spotler"], "Supported on Spotler."),
    (["Spotler", "Spoki"], "Supported on Spotler and Spoki."),
    (["Spotler", "Piggy", "Spoki"], "Supported on Spotler, Piggy and Spoki."),
])
def test_support_sentence(platforms, sentence):
    assert table.support_sentence(platforms) == sentence


# -- the connector's descriptions -------------------------------------------------------------------------

def spec_operations() -> dict[str, dict]:
    spec = yaml.safe_load((ROOT / "openapi.yaml").read_text(encoding="utf-8"))
    ops = {}
    for item in spec["paths"].values():
        for method, op in item.items():
            if method in HTTP_METHODS and isinstance(op, dict) and op.get("operationId"):
                ops[op["operationId"]] = op
    return ops


def test_every_catalog_action_is_in_the_spec():
    missing = sorted(OPERATION_IDS - set(spec_operations()))
    assert not missing, f"openapi.yaml has no operation for {missing}"


@pytest.mark.parametrize("operation_id", [o.operation_id for o in OPERATIONS])
def test_description_names_the_platforms_that_support_it(operation_id, api_capabilities):
    op = spec_operations().get(operation_id)
    assert op is not None, f"openapi.yaml has no operation {operation_id}"
    platforms = [table.DISPLAY_NAMES[p] for p in PROVIDERS if api_capabilities[p][operation_id]["supported"]]
    sentence = table.support_sentence(platforms)
    description = " ".join(str(op.get("description", "")).split())
    assert description.endswith(" " + sentence), \
        f"{operation_id}: the description must end with {sentence!r}; it is {description!r}"
    assert description.count("Supported on") == 1, f"{operation_id}: one support sentence only"
