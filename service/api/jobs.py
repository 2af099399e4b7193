"""Job ledger queries: thin handlers over service.actions.jobs. A caller sees only its own jobs."""

from __future__ import annotations

import hmac

from service.actions import jobs as actions
from service.api.answers import respond
from service.api.calls import connection_named, scoped
from service.runtime import current_runtime


def list_jobs(status=None, operation=None, email=None, since=None, until=None, limit=50, cursor=None, user=None):
    return actions.list_jobs(current_runtime().ledger, caller=scoped(user), status=status, operation=operation,
                             email=email, since=since, until=until, limit=limit, cursor=cursor), 200


def get_job(jobId: str, user=None):  # noqa: N803 - name fixed by the spec
    return actions.get_job(current_runtime().ledger, jobId, caller=scoped(user)), 200


def get_job_result(jobId: str, user=None):  # noqa: N803
    """The Location of a 202: 202 while the job runs, then the answer a synchronous call would have given.
    Hosted mode: the Location is ``/jobs/<job id>.<token>/result``; polled without the connection's headers, the
    token alone opens it (another tenant's job stays a 404 with the headers)."""
    rt = current_runtime()
    if rt.hosted is None:
        return respond(rt.runner.result(jobId, user))
    job_id, _, token = jobId.partition(".")
    if not connection_named():
        if not token or not hmac.compare_digest(token, rt.hosted.job_token(job_id)):
            from service.actions.problems import ActionError

            raise ActionError(404, "JOB_NOT_FOUND", "No job with this id was found for this connection.")
        return respond(rt.runner.result(job_id, None))
    return respond(rt.runner.result(job_id, scoped(user)))
