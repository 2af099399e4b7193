"""One rule, stated in the spec and enforced by the code: Idempotency-Key and identifier limits; every write
operation declares the 202 of long work; the Location target exists."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from service.actions.idempotency import IDEMPOTENCY_KEY_PATTERN, MAX_IDEMPOTENCY_KEY_LENGTH
from service.actions.operations import WRITE_OPERATIONS
from service.actions.resolution import IDENTIFIER_PATTERN, MAX_IDENTIFIER_LENGTH

SPEC = Path(__file__).resolve().parents[2] / "openapi.yaml"


@pytest.fixture(scope="module")
def spec() -> dict:
    return yaml.safe_load(SPEC.read_text())


def _operations(spec):
    for path, item in spec["paths"].items():
        for method, op in item.items():
            if isinstance(op, dict) and "operationId" in op:
                yield path, method, op


def test_idempotency_key_limit_in_the_spec_is_the_codes(spec):
    """Finding: the spec said 200 characters, the code 255 (with two error codes)."""
    param = spec["parameters"]["IdempotencyKey"]
    assert param["maxLength"] == MAX_IDEMPOTENCY_KEY_LENGTH == 200
    assert param["pattern"] == IDEMPOTENCY_KEY_PATTERN


def _identifier_slots(spec):
    for name in ("AutomationIdPath",):
        yield name, spec["parameters"][name]
    for path, _method, op in _operations(spec):
        for p in op.get("parameters", []):
            if "$ref" not in p and p.get("name") in ("triggerId", "campaignId", "audienceId", "externalId"):
                yield f"{path} {p['name']}", p
    yield "ContactRef.externalId", spec["definitions"]["ContactRef"]["properties"]["externalId"]
    yield "CreateAudienceRequest.id", spec["definitions"]["CreateAudienceRequest"]["properties"]["id"]


def test_every_identifier_in_the_spec_follows_the_codes_rule(spec):
    slots = list(_identifier_slots(spec))
    assert len(slots) >= 8
    for where, schema in slots:
        assert schema.get("pattern") == IDENTIFIER_PATTERN, where
        assert schema.get("maxLength", 0) <= MAX_IDENTIFIER_LENGTH, where


def test_every_write_operation_declares_the_202_of_long_work(spec):
    writes = {op["operationId"]: op for _p, _m, op in _operations(spec) if op["operationId"] in WRITE_OPERATIONS}
    assert set(writes) == WRITE_OPERATIONS
    accepted = spec["responses"]["Accepted"]
    assert set(accepted["headers"]) == {"Location", "Retry-After"}
    for op_id, op in writes.items():
        assert op["responses"]["202"] == {"$ref": "#/responses/Accepted"}, op_id
    result = spec["paths"]["/jobs/{jobId}/result"]["get"]
    assert result["operationId"] == "GetJobResult" and result["x-ms-visibility"] == "internal"
    assert {"200", "202"} <= set(result["responses"])
