"""``.env.example``, written from the declarations: every variable the service and its tools read, once.

    .venv/bin/python -m service.env_example          # rewrite .env.example
    .venv/bin/python -m service.env_example --check  # exit 1 when the checked-in file differs

The service's own settings come with their comments from :class:`service.config.Settings` (and its Microsoft
part); each platform's variables are the fields of its config dataclass (``SPOTLER_READ_TIMEOUT`` is
``SpotlerConfig.read_timeout``, ``PIGGY_WEBHOOK_PATH`` is ``PiggyWebhookConfig.path``, see
:mod:`service.providers.factory`), shown with their defaults - empty where the shared ``UPSTREAM_*`` setting is
the default. ``tests/test_config.py`` keeps the file and this in step.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from service.config import Settings
from service.microsoft.config import MicrosoftSettings
from service.settings_schema import assignment, comment, example_lines, section_title

PATH = Path(__file__).resolve().parent.parent / ".env.example"

HEADER = """\
# Marketing Actions - every environment variable the service reads. Copy to .env for local use: the service
# reads .env itself (python-dotenv; a variable set in the environment wins over the file; ENV_FILE names
# another file). The file is also valid shell: `set -a; . ./.env; set +a` gives the same values.
# Quote a value that holds spaces, braces or quotes in single quotes, as below (JSON templates, routes).
# In production set the variables in the platform's config.
# Leave a platform's credentials empty to run in SANDBOX mode against the built-in simulator.
# Written from the settings' declarations by `.venv/bin/python -m service.env_example`: edit those."""

#: variables read by a tool, not by the service: (name, comment)
TOOL_VARIABLES = (
    ("ENTRA_CONNECTOR_CLIENT_ID", "Connector build only (.venv/bin/python -m service.connector build): the connector's own "
                                  "app registration (client) id."),
)

#: per platform: (section title, comment at its top, {variable: comment above it})
PLATFORMS = {
    "spotler": ("Spotler Mail+ (PROVIDER=spotler)",
                "OAuth 1.0a consumer key and secret (Spotler Mail+: Account settings > Integrations > New "
                "authentication; docs/credentials.md). Setting them switches to live mode.",
                {"SPOTLER_AUTOMATION_FIELDS_KEY": "Assumed wire formats (not in Spotler's published description; "
                                                  'see docs/spotler-api-coverage.md):'}),
    "piggy": ("Piggy / Leat (PROVIDER=piggy)",
              "A personal access token, or OAuth client credentials. Setting either switches to live mode. Guessed "
              "paths and formats are listed in docs/piggy-spoki-coverage.md.", {}),
    "spoki": ("Spoki (PROVIDER=spoki)",
              "The API key (X-Spoki-Api-Key). Setting it switches to live mode. Guessed details: "
              "docs/piggy-spoki-coverage.md.", {}),
}

#: per platform with webhooks: the comment above its ``<PLATFORM>_WEBHOOK_*`` variables
WEBHOOKS = {
    "piggy": "Webhook triggers (docs/piggy-spoki-coverage.md): the subscriptions resource, the signature header, "
             "whether our own per-webhook secret is sent on create, the account's webhook secret (Piggy signs with it "
             "when a subscription has none), the key under data that would list a contact_updated's changed "
             "attributes (a guess), the name prefix.",
    "spoki": "Webhook triggers (docs/piggy-spoki-coverage.md): the external webhooks resource, how old a signature "
             "may be (s), and the key under data that holds a tag event's tag (a guess).",
}


def _platform_default(f: dataclasses.Field) -> str:
    from service.providers.factory import SHARED_SETTINGS

    if f.name in SHARED_SETTINGS or f.default is dataclasses.MISSING or f.default is None:
        return ""
    value = f.default
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    return "" if isinstance(value, tuple) else str(value)


def _fields_lines(config_cls: type, prefix: str, notes: dict[str, str]) -> list[str]:
    lines: list[str] = []
    for f in dataclasses.fields(config_cls):
        if f.init:
            name = f"{prefix}_{f.name.upper()}"
            lines += comment(notes.get(name, "")) + [assignment(name, _platform_default(f))]
    return lines


def platform_lines(provider: str) -> list[str]:
    from service.providers.factory import config_class, webhook_config_class

    title, intro, notes = PLATFORMS[provider]
    lines = ["", section_title(title), *comment(intro)]
    lines += _fields_lines(config_class(provider), provider.upper(), notes)
    webhooks = webhook_config_class(provider)
    if webhooks is not None:
        prefix = f"{provider.upper()}_WEBHOOK"
        first = next(f.name for f in dataclasses.fields(webhooks) if f.init)
        lines += _fields_lines(webhooks, prefix, {f"{prefix}_{first.upper()}": WEBHOOKS[provider]})
    return lines


def render() -> str:
    lines = HEADER.splitlines() + example_lines(Settings) + example_lines(MicrosoftSettings)
    for name, text in TOOL_VARIABLES:
        lines += comment(text) + [assignment(name, "")]
    for provider in PLATFORMS:
        lines += platform_lines(provider)
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when .env.example is not what this writes")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        if PATH.read_text(encoding="utf-8") != text:
            print(f"{PATH.name} differs from the declarations: run python -m service.env_example", file=sys.stderr)
            return 1
        return 0
    PATH.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
