"""Job ledger queries: thin handlers over service.actions.jobs. A caller sees only its own jobs."""

from __future__ import annotations

from service.actions import jobs as actions
from service.api.answers import respond
from service.api.calls import scoped
from service.runtime import current_runtime


def list_jobs(status=None, operation=None, email=None, since=None, until=None, limit=50, cursor=None, user=None):
    return actions.list_jobs(current_runtime().ledger, caller=scoped(user), status=status, operation=operation,
                             email=email, since=since, until=until, limit=limit, cursor=cursor), 200


def get_job(jobId: str, user=None):  # noqa: N803 - name fixed by the spec
    return actions.get_job(current_runtime().ledger, jobId, caller=scoped(user)), 200


def get_job_result(jobId: str, user=None):  # noqa: N803
    """The Location of a 202: 202 while the job runs, then the answer a synchronous call would have given."""
    return respond(current_runtime().runner.result(jobId, scoped(user)))
