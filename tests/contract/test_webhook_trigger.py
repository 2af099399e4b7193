"""The webhook trigger's contract (power-platform-connector.md §4.1): OnPlatformEvent is a single trigger whose body
carries the notification URL, answers 201 with a Location whose DELETE is an internal operation, types its
outputs per event (x-ms-notification-content with a dynamic schema), and the platforms' inbound URL is left out
of the connector."""

from __future__ import annotations

import json

from service.connector import build_definition, check_rules, load_spec
from service.connector.spec import DEFINITION_FILE, OUT_DIR, iter_operations


def _ops(doc: dict) -> dict[str, tuple[str, str, dict, dict]]:
    return {op["operationId"]: (path, method, op, item) for path, method, op, item in iter_operations(doc)}


def test_on_platform_event_is_a_webhook_trigger():
    spec = load_spec()
    path, method, op, item = _ops(spec)["OnPlatformEvent"]
    assert (path, method, op["x-ms-trigger"]) == ("/hooks", "post", "single")
    assert "x-ms-trigger-metadata" not in op  # no polling
    body = op["parameters"][0]["schema"]
    assert body["required"] == ["event", "callbackUrl"]
    callback = body["properties"]["callbackUrl"]
    assert callback["x-ms-notification-url"] is True and callback["x-ms-visibility"] == "internal"
    assert body["properties"]["event"]["x-ms-dynamic-values"]["operationId"] == "ListPlatformEvents"
    assert set(body["properties"]["filter"]["properties"]) == {"attributes", "tag"}
    assert set(op["responses"]["201"]["headers"]) == {"Location"}
    content = item["x-ms-notification-content"]["schema"]
    assert content["x-ms-dynamic-schema"] == {"operationId": "GetPlatformEventSchema",
                                              "parameters": {"event": {"parameter": "event"}}, "value-path": "schema"}
    assert content["x-ms-dynamic-properties"]["parameters"] == {"event": {"parameterReference": "body/event"}}
    assert set(content["properties"]) == {"eventId", "event", "platform", "occurredAt", "data"}


def test_the_location_delete_and_helpers_are_internal_and_in_the_connector():
    definition = json.loads((OUT_DIR / DEFINITION_FILE).read_text(encoding="utf-8"))
    ops = _ops(definition)
    for name in ("OnPlatformEvent", "DeletePlatformEventHook", "ListPlatformEvents", "GetPlatformEventSchema"):
        assert name in ops, name
    path, method, op, _ = ops["DeletePlatformEventHook"]
    assert (path, method, op["x-ms-visibility"]) == ("/hooks/{hookId}", "delete", "internal")
    # Power Automate may send the DELETE without the connection's key: the Location's token is enough
    assert {} in op["security"]
    assert "x-ms-notification-content" in definition["paths"]["/hooks"]


def test_the_inbound_url_is_not_part_of_the_connector():
    spec = load_spec()
    assert "ReceivePlatformWebhook" in _ops(spec)
    definition = build_definition(spec, "actions.example.com")
    assert "ReceivePlatformWebhook" not in _ops(definition)
    assert not any(p.startswith("/hooks/inbound") for p in definition["paths"])
    assert check_rules(definition) == []


def test_a_notification_url_needs_no_default_but_other_internal_required_properties_do():
    spec = load_spec()
    body = _ops(spec)["OnPlatformEvent"][2]["parameters"][0]["schema"]
    body["properties"]["event"]["x-ms-visibility"] = "internal"
    problems = check_rules(spec)
    assert any("properties/event: internal required property needs a default" in p for p in problems), problems
    assert not any("callbackUrl" in p for p in problems), problems
