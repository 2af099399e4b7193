"""Timeline pieces without HTTP: regarding, note ids, the ledger's caller and note record (SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest

from service.actions.idempotency import ActionCall, ActionResult, body_hash
from service.actions.problems import ActionError
from service.actions.runner import JobRunner, RunnerConfig
from service.actions.timeline import Regarding, note_id, parse_regarding

TID, OID = "5a4db0c0-0000-4000-8000-00000000a001", "5a4db0c0-0000-4000-8000-000000000101"
RECORD = "0c0a0001-0000-4000-8000-00000000c001"


def test_regarding_is_normalised_and_checked():
    assert parse_regarding({"table": " Lead ", "id": "{" + RECORD.upper() + "}"}) == Regarding("lead", RECORD)
    for bad, field in (("contact", "regarding"), ({"table": "opportunity", "id": RECORD}, "regarding.table"),
                       ({"table": "contact", "id": "42"}, "regarding.id"), ({"table": "contact"}, "regarding.id")):
        with pytest.raises(ActionError) as info:
            parse_regarding(bad)
        assert info.value.problem.code == "INVALID_REGARDING" and info.value.problem.ext["field"] == field


def test_note_ids_are_stable_per_job_and_record():
    r = Regarding("contact", RECORD)
    assert note_id("job_A", r) == note_id("job_A", r)
    assert len({note_id("job_A", r), note_id("job_B", r), note_id("job_A", Regarding("lead", RECORD))}) == 3


def test_the_ledger_keeps_an_entra_caller_and_the_note(ledger):
    caller = f"aad:{TID}:{OID}"  # 77 characters: longer than the first schema's 64
    call = ActionCall(operation="StartAutomation", provider="spotler", caller=caller, request_id="r",
                      inputs={"regarding": {"table": "contact", "id": RECORD}}, body_hash=body_hash(b"{}"))

    def work(job):
        ledger.record_timeline(job.job_id, {"status": "failed", "reason": "DATAVERSE_UNAVAILABLE",
                                            "message": "Mail j.doe@example.com failed", "other": "dropped"})
        return ActionResult(body={"jobId": job.job_id, "resultCode": "OK"})

    runner = JobRunner(ledger, None, RunnerConfig())
    try:
        answer = runner.run(call, work)
    finally:
        runner.stop()
    record = ledger.get(answer.job_id)
    assert record.caller == caller
    assert [r.job_id for r in ledger.list(caller=caller)[0]] == [answer.job_id]
    timeline = record.to_public_dict()["timeline"]
    assert timeline["status"] == "failed" and timeline["reason"] == "DATAVERSE_UNAVAILABLE"
    assert "j.doe@example.com" not in timeline["message"] and "other" not in timeline
