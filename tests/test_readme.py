"""The README is a five-minute read that keeps its promises (issue 24, item 5).

* Two commands on a fresh machine: ``make run`` and ``make test``, both Makefile targets, and CI (``.ci/run``)
  runs the README's test command.
* Short: what it is, the commands, the first journeys, links. The wire-format tables and long references live
  in ``docs/`` (no table in the README).
* A section "Hosted mode (for publishers)" of a few lines that links ``docs/hosted.md``.
* Every relative link of the README and of ``docs/*.md`` names a file that exists, and every ``#anchor`` into a
  Markdown file names one of its headings (GitHub's slugs), so moving a section cannot leave a dead link.
* The first journeys use what the sandbox really has: the automation is an active one of the Spotler demo
  account, and the simulator fault the 202 journey sets is one the simulator accepts, on the path the start
  call takes.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^\s*(```|~~~)")


def prose(text: str) -> list[str]:
    """The lines outside fenced code blocks and HTML comments."""
    text = re.sub(r"<!--.*?-->", "", text, flags=re.S)
    lines, fenced = [], False
    for line in text.splitlines():
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            lines.append(line)
    return lines


def code_blocks(text: str) -> list[str]:
    return re.findall(r"^```[a-z]*\n(.*?)^```", text, flags=re.S | re.M)


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"`", "", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    for line in prose(path.read_text(encoding="utf-8")):
        m = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if m:
            base = slug(m.group(1))
            n = seen.get(base, 0)
            seen[base] = n + 1
            out.add(base if n == 0 else f"{base}-{n}")
    return out


def test_the_two_commands_come_first_and_are_make_targets():
    text = README.read_text(encoding="utf-8")
    first = code_blocks(text)[0]
    commands = [line.split("#")[0].strip() for line in first.splitlines() if line.strip()]
    assert commands == ["make run", "make test"]
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    for target in ("run", "test"):
        assert re.search(rf"^{target}:", makefile, flags=re.M), f"the Makefile has no '{target}' target"
    ci = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()
          if line.strip() and not line.lstrip().startswith("#")]
    assert "make test" in ci, "CI must run the README's test command"


def test_the_readme_is_a_five_minute_read():
    text = README.read_text(encoding="utf-8")
    lines = text.splitlines()
    assert 60 <= len(lines) <= 180, f"README.md has {len(lines)} lines: keep it to a five-minute read"
    tables = [line for line in prose(text) if line.lstrip().startswith("|")]
    assert tables == [], "tables belong in docs/ (the README links to them)"
    headings = [line for line in prose(text) if line.startswith("## ")]
    assert headings[0].startswith("## Two commands") and headings[-1] == "## Where to go next", headings


def test_hosted_mode_section_is_short_and_links_its_page():
    body = README.read_text(encoding="utf-8").split("\n## Hosted mode (for publishers)\n", 1)
    assert len(body) == 2, 'README.md needs a section titled exactly "Hosted mode (for publishers)"'
    section = body[1].split("\n## ", 1)[0]
    assert 1 <= len([line for line in section.splitlines() if line.strip()]) <= 30
    assert "](docs/hosted.md)" in section
    # issue 22: two accounts side by side, the maker's connection, what a publisher sets
    from service.sandbox.launch import SANDBOX_ACCOUNTS

    for account in SANDBOX_ACCOUNTS["spotler"][:2]:
        assert account["consumer_key"] in section and account["consumer_secret"] in section
    for needle in ("TENANCY=hosted make run", "Hosted: platform account", "TENANT_HASH_KEY", "CREDENTIALS_KEYS",
                   "REDIS_URL", "rotate-credentials"):
        assert needle in section, needle


def test_the_readme_links_the_credentials_guide():
    text = README.read_text(encoding="utf-8")
    assert "](docs/credentials.md)" in text
    guide = (ROOT / "docs" / "credentials.md").read_text(encoding="utf-8")
    for needle in ("SPOTLER_CONSUMER_KEY", "SPOTLER_CONSUMER_SECRET", "PIGGY_API_TOKEN", "SPOKI_API_KEY",
                   "paconn create", "pac connector create", "Import an OpenAPI file", "Import\nfrom GitHub"):
        assert needle in guide, f"docs/credentials.md does not say {needle!r}"
    for name in ("apiDefinition.swagger.json", "apiProperties.json", "icon.png"):  # the files it imports
        assert (ROOT / "connector-definition" / name).exists() and f"connector-definition/{name}" in guide


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(page):
    dead = []
    for line in prose(page.read_text(encoding="utf-8")):
        for target in LINK.findall(line):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto:
                continue
            path_part, _, anchor = target.partition("#")
            path = (page.parent / path_part).resolve() if path_part else page
            if not path.exists():
                dead.append(f"{target}: no file {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
            elif anchor and path.suffix == ".md" and anchor not in anchors(path):
                dead.append(f"{target}: no heading with that anchor in {path.relative_to(ROOT)}")
    assert dead == [], f"{page.relative_to(ROOT)}: dead links:\n" + "\n".join(dead)


def test_nothing_points_into_sections_the_readme_no_longer_has():
    readme_anchors = anchors(README)
    stale = []
    for path in [*ROOT.glob("*.md"), *ROOT.glob("docs/*.md"), *ROOT.glob("service/**/*.py"), ROOT / "openapi.yaml"]:
        for m in re.finditer(r"README\.md#([\w-]+)", path.read_text(encoding="utf-8")):
            if m.group(1) not in readme_anchors:
                stale.append(f"{path.relative_to(ROOT)}: README.md#{m.group(1)}")
    assert stale == []


def _readme_shell() -> str:
    return "\n".join(code_blocks(README.read_text(encoding="utf-8")))


def test_the_journeys_use_an_active_automation_and_contacts_of_the_spotler_demo_account():
    from service.sandbox.spotler.demo import DEMO, seed

    shell = _readme_shell()
    automation = re.search(r"^A=(\S+)$", shell, flags=re.M).group(1)
    runs = [a for a in seed()["automations"] if a["triggerCode"] == automation]
    assert runs and all(a["active"] for a in runs), f"{automation} is not an active demo automation"
    for name in re.findall(r'"fields": \{"(\w+)"', shell):
        assert name in runs[0]["fields"], f"the demo automation has no field {name}"
    emails = set(re.findall(r'"email": "([^"]+)"', shell))
    assert {"jan@example.com", "piet@example.com"} <= emails <= {*DEMO.emails.values(), "nobody@example.com",
                                                                   "eva@example.com"}
    assert "nobody@example.com" not in DEMO.emails.values() and "eva@example.com" not in DEMO.emails.values()


def test_the_202_journeys_fault_is_one_the_simulator_takes_on_the_start_calls_path():
    from service.sandbox.faults import FaultConfig
    from service.sandbox.spotler.app import BASE_PATH

    line = next(x for x in _readme_shell().splitlines() if "__sim__/faults" in x and " -d " in x)
    body = json.loads(shlex.split(line)[shlex.split(line).index("-d") + 1])
    config = FaultConfig.from_dict(body)
    assert config.latency_ms / 1000 > float(re.search(r"SYNC_DEADLINE_SECONDS=(\S+)", _readme_shell()).group(1))
    assert f"{BASE_PATH}/automation/trigger/x".startswith(config.path_prefix)
