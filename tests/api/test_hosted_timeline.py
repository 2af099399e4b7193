"""Hosted mode and the Dataverse timeline (issue 22, item 3: "Dataverse notes"): a hosted connection with the
Entra ID sign-in writes the note on behalf of the user, the note is recorded on the tenant's own job, and another
tenant - with the same user, the same Idempotency-Key and the same body - neither sees that job nor gets its
answer replayed, and writes no note of the first tenant's."""

from __future__ import annotations

from service.sandbox.dataverse import demo as dv
from service.sandbox.spotler import DEMO
from tests.api import test_hosted
from tests.api.support import assert_problem
from tests.api.test_hosted import SHOP_A, SHOP_B

hosted_settings = test_hosted.hosted_settings  # the fixture: the hosted app's settings (three simulators)

WELCOME = DEMO.automations["welcome"]
JAN = {"table": "contact", "id": dv.CONTACT_JAN}


def test_a_tenants_dataverse_note_is_on_its_own_job_and_nobody_elses(make_client, hosted_settings, ms,
                                                                     ms_settings):
    api = make_client(hosted_settings.with_(microsoft=ms_settings.with_(timeline_budget_seconds=2)))
    signed_in = {"Authorization": f"Bearer {ms.entra.user_token()}", "Idempotency-Key": "record-jan-welcome"}
    body = {"regarding": JAN, "fieldsText": "voucherCode=WELCOME10"}

    first = api.post(f"/automations/{WELCOME}/start", json=body, headers={**SHOP_A, **signed_in})
    assert first.status_code == 200, first.text
    done = first.json()
    assert done["timeline"]["status"] == "written"
    [note] = ms.dataverse.notes(dv.CONTACT_JAN)
    assert note["annotationid"] == done["timeline"]["noteId"] and done["jobId"] in note["notetext"]
    job = api.get(f"/jobs/{done['jobId']}", headers={**SHOP_A, "Authorization": signed_in["Authorization"]})
    assert job.status_code == 200 and job.json()["timeline"] == done["timeline"]

    other = {**SHOP_B, "Authorization": signed_in["Authorization"]}  # the same user, another platform account
    assert_problem(api.get(f"/jobs/{done['jobId']}", headers=other), 404, "JOB_NOT_FOUND")
    assert done["jobId"] not in api.get("/jobs", headers=other).text
    again = api.post(f"/automations/{WELCOME}/start", json=body, headers={**SHOP_B, **signed_in})
    assert "Idempotent-Replayed" not in again.headers and again.json().get("jobId") != done["jobId"]
    assert ms.dataverse.notes(dv.CONTACT_JAN) == [note]  # Second shop has no such automation: no note of it
