"""``readme.md`` of the connector folder, written from the definition (the repository's template sections)."""

from __future__ import annotations

from service.connector.spec import (
    DEFINITION_FILE,
    HOSTED_SET,
    ICON_FILE,
    PROPERTIES_FILE,
    PUBLISHER,
    iter_operations,
)


def _md(text: str) -> str:
    return " ".join(str(text or "").split())


def build_readme(definition: dict, properties: dict) -> str:
    """``readme.md`` with the certification template sections; Supported Operations comes from the spec."""
    info = definition.get("info") or {}
    props = properties.get("properties") or {}
    entra = "connectionParameterSets" in props
    hosted = entra and any(isinstance(v, dict) and v.get("name") == HOSTED_SET
                           for v in (props["connectionParameterSets"].get("values") or []))
    title = info.get("title", "Marketing Actions")
    visible, helpers, triggers = [], [], []
    for _, _, op, _ in iter_operations(definition):
        entry = f"### {_md(op.get('summary'))}\n{_md(op.get('description'))}\n"
        if op.get("x-ms-trigger"):
            triggers.append(entry)
        else:
            (helpers if op.get("x-ms-visibility") == "internal" else visible).append(entry)
    lines = [
        f"# {title}",
        _md(info.get("description")),
        "",
        f"## Publisher: {props.get('publisher', PUBLISHER)}",
        "",
        "## Prerequisites",
        "- A Power Automate, Power Apps or Logic Apps plan that allows custom connectors (premium).",
        "- A running Marketing Actions instance (hosted, or self-hosted from this repository) reachable over HTTPS.",
        "- An API key of that instance, and an account on the marketing platform it drives (Spotler Mail+, "
        "Piggy or Spoki). Without platform credentials the instance runs in sandbox mode against its simulator.",
        *(["- For Microsoft Entra ID connections: two app registrations in your tenant (the service's API and this "
           "connector's client) and, for notes on Dataverse timelines, the service's app as an application user "
           "in Dataverse. See docs/entra-id.md in the repository."] if entra else []),
        *(["- For a hosted connection (the publisher's shared service): only your own platform account's key "
           "(Spotler Mail+: a REST API key and secret made for this connection; Piggy: a personal access token; "
           "Spoki: the API key). See docs/hosted.md in the repository."] if hosted else []),
        "",
        "## Supported Operations",
        "The connector supports the following operations:",
        "",
        *visible,
    ]
    if triggers:
        lines += ["## Triggers",
                  "Spotler's triggers poll: each event starts the flow once, a few minutes after it happened; the "
                  "first poll starts from now. Piggy and Spoki push their events: the webhook trigger starts the flow "
                  "within seconds, at least once (a repeat carries the same eventId).", "", *triggers]
    if helpers:
        lines += ["### Helper operations",
                  "These operations are hidden in the designer; they feed dropdowns and the connection test:", ""]
        lines += [f"- {h.splitlines()[0][4:]}: {h.splitlines()[1]}" for h in helpers]
        lines.append("")
    lines += [
        "## Obtaining Credentials",
        "The operator of your Marketing Actions instance issues the API key (the `API_KEYS` setting of the "
        "service). Ask them for a key per team or flow owner; keys can be rotated without changing flows. "
        "The instance holds the marketing platform credentials itself: makers never see them.",
        "",
        *(["With a **Microsoft Entra ID** connection there is no key to share: makers sign in with their work "
           "account, the instance records who called each action, and notes on Dataverse "
           "timelines are written on their behalf.", ""] if entra else []),
        *(["With a **hosted** connection the maker brings the platform account: the connection forwards the "
           "platform, key and secret to the publisher's service in the `X-Platform`, `X-Platform-Key` and "
           "`X-Platform-Secret` headers; the service keeps them only while a job it accepted still needs them "
           "(encrypted), and each account sees only its own jobs and data.", ""] if hosted else []),
        "## Getting Started",
        ("1. Create a connection: choose *API key* (enter the host name of your instance, without `https://`, and "
         "your API key) or *Microsoft Entra ID* (enter the host name and sign in)"
         + ("; on the publisher's hosted service, choose *Hosted: platform account* (pick the platform, enter its "
            "key and secret; a dash as secret for Piggy and Spoki), with or without the Entra ID sign-in"
            if hosted else "") + ". " if entra else
         "1. Create a connection: enter the host name of your instance (without `https://`) and your API key. ")
        + "The connection test calls the *Test the connection* operation.",
        "2. Add an action such as *Get platform capabilities* to see which actions your platform supports.",
        "3. Pick automations, campaigns, audiences, fields, tags and permissions from the dropdowns instead of "
        "pasting ids.",
        "",
        "## Known Issues and Limitations",
        "- Power Apps handles dynamic schemas poorly: every action with dynamic inputs also accepts fixed-type "
        "inputs (for automation fields: the `fieldsText` text, `a=b;c={1,2}`, or a plain name/value map).",
        "- Power Automate retries failed calls (408, 429, 5xx) up to 8 times; write actions are idempotent, so a "
        "retried call causes one change on the platform and returns the same answer.",
        "- A platform that lacks an operation answers 400 `NOT_SUPPORTED_BY_PLATFORM` with the reason; *Get platform capabilities* lists them.",
        "- Custom connectors are limited to 500 requests per minute per connection, and a call must finish "
        "within 120 seconds.",
        "",
        "## Deployment Instructions",
        "Generate the files from `openapi.yaml` (the host is the public host name of your instance):",
        "",
        "```",
        "python -m service.connector build --host your-instance.example.com"
        + (" --entra-client-id <connector app id> --entra-resource api://<service app id>" if entra else ""),
        "```",
        "",
        "Then import the folder with the Power Platform CLI:",
        "",
        "```",
        f"pac connector create --api-definition-file {DEFINITION_FILE} --api-properties-file {PROPERTIES_FILE} "
        f"--icon-file {ICON_FILE} --environment <environment id>",
        "```",
        "",
        "or with the paconn CLI:",
        "",
        "```",
        f"paconn validate --api-def {DEFINITION_FILE}",
        f"paconn create --api-def {DEFINITION_FILE} --api-prop {PROPERTIES_FILE} --icon {ICON_FILE} "
        "-e <environment id>" + (" --secret <connector app client secret>" if entra else ""),
        "```",
        "",
        *(["Multiple connection types (API key or Microsoft Entra ID) cannot be edited in the custom connector "
           "wizard; use the CLIs. After the first import, add the connector's redirect URL (Security tab) to the "
           "connector app registration.", ""] if entra else []),
        "`paconn update` fails when `stackOwner` is present in `apiProperties.json`: remove it from a copy used "
        "for updates.",
        "",
    ]
    return "\n".join(lines)
