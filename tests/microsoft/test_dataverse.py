"""The Dataverse client against the Dataverse simulator: records, notes exactly once, error mapping, 429."""

from __future__ import annotations

import time

import pytest

from service.microsoft import errors
from service.microsoft.dataverse import DataverseClient, DataverseConfig
from service.sandbox.dataverse import demo as dv
from service.sandbox.entra import demo

NOTE = "2da93b66-1a34-597e-8479-073aa5b8dc2f"


@pytest.fixture
def app_token(ms):
    return ms.entra.issue_token(audience=ms.dataverse_url, app_id=demo.API_CLIENT_ID, user=False,
                                object_id=demo.API_SERVICE_PRINCIPAL_ID)


@pytest.fixture
def waits():
    return []


@pytest.fixture
def client(ms, waits):
    c = DataverseClient(DataverseConfig(url=ms.dataverse_url, ca_bundle=ms.ca_path, connect_timeout=2,
                                        read_timeout=5, max_retries=0), sleep=waits.append)
    yield c
    c.close()


def note(client, token, **kw):
    values = dict(note_id=NOTE, table="contact", record_id=dv.CONTACT_JAN, subject="Automation started",
                  text="Job: job_1", token=token, deadline=time.monotonic() + 10)
    values.update(kw)
    return client.create_note(**values)


def test_records_by_id_with_select(client, app_token):
    jan = client.get_record("contact", dv.CONTACT_JAN, app_token)
    assert (jan.email, jan.first_name, jan.last_name) == ("jan@example.com", "Jan", "Jansen")
    lead = client.get_record("lead", dv.LEAD_LOTTE, app_token)
    assert (lead.email, lead.company) == ("lotte.lead@example.com", "Lead Company")
    account = client.get_record("account", dv.ACCOUNT_CONTOSO, app_token)
    assert (account.email, account.full_name, account.company) == ("info@contoso.example", "Contoso BV",
                                                                   "Contoso BV")
    assert client.get_record("contact", dv.CONTACT_NO_EMAIL, app_token).email is None


def test_errors_are_mapped_at_the_boundary(ms, client, app_token):
    with pytest.raises(errors.DataverseNotFound) as info:
        client.get_record("lead", dv.CONTACT_JAN, app_token)
    assert (info.value.status, info.value.upstream_code) == (404, "0x80040217")
    with pytest.raises(errors.DataverseDenied) as info:
        client.get_record("contact", dv.CONTACT_JAN, ms.entra.issue_token(audience="https://other.crm.dynamics.com"))
    assert info.value.code == "DATAVERSE_UNAUTHORIZED"
    stranger_app = ms.entra.issue_token(audience=ms.dataverse_url, app_id="someone-else", user=False)
    with pytest.raises(errors.DataverseDenied) as info:
        client.get_record("contact", dv.CONTACT_JAN, stranger_app)
    assert (info.value.status, info.value.upstream_code) == (403, "0x80072560")


def test_a_note_is_written_once_per_id(ms, client, app_token):
    first = note(client, app_token)
    again = note(client, app_token, text="a retry with other text")
    assert (first.created, again.created) == (True, False)
    [stored] = ms.dataverse.notes(dv.CONTACT_JAN)
    assert stored["annotationid"] == NOTE and stored["notetext"] == "Job: job_1"
    assert stored["_createdby_value"] == demo.API_CLIENT_ID  # the application user


def test_a_lost_answer_is_retried_and_counted_as_written(ms, client, app_token):
    """Dataverse stores the note, the connection drops before the answer: the retry gets the duplicate-key
    answer for the same id, and there is exactly one note."""
    ms.dataverse_faults.configure(reset_rate=1, reset_phase="after", times=1, methods=["POST"])
    result = note(client, app_token)
    assert (result.created, result.attempts) == (False, 2)
    assert len(ms.dataverse.notes(dv.CONTACT_JAN)) == 1


def test_429_honours_retry_after_within_the_deadline(ms, client, app_token, waits):
    ms.dataverse_faults.configure(fail_rate=1, fail_status=429, retry_after=2, times=2, methods=["POST"])
    result = note(client, app_token)
    assert result.created and result.attempts == 3
    assert waits == [2.0, 2.0]  # the client waited what Dataverse asked for (sleep injected), then wrote


def test_429_beyond_the_deadline_gives_up_without_waiting(ms, client, app_token, waits):
    ms.dataverse_faults.configure(fail_rate=1, fail_status=429, retry_after=30, methods=["POST"])
    with pytest.raises(errors.DataverseUnavailable) as info:
        note(client, app_token, deadline=time.monotonic() + 5)
    assert info.value.code == "DATAVERSE_RATE_LIMITED" and info.value.retry_after == 30
    assert waits == [] and ms.dataverse.notes() == []


def test_note_on_a_missing_record_is_not_found(client, app_token):
    with pytest.raises(errors.DataverseNotFound):
        note(client, app_token, table="account", record_id=dv.CONTACT_JAN)
