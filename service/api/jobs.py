"""Job ledger queries: thin handlers over service.actions.jobs."""

from __future__ import annotations

from service.actions import jobs as actions
from service.runtime import current_runtime


def list_jobs(status=None, operation=None, email=None, since=None, until=None, limit=50, cursor=None, user=None):
    return actions.list_jobs(current_runtime().ledger, status=status, operation=operation, email=email,
                             since=since, until=until, limit=limit, cursor=cursor), 200


def get_job(jobId: str, user=None):  # noqa: N803 - name fixed by the spec
    return actions.get_job(current_runtime().ledger, jobId), 200
