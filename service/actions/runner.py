"""The job runner: every write action at most once per idempotency key, answered within a deadline.

One :class:`JobRunner` per process (the runtime builds it after a gunicorn fork). What it guarantees:

* **Exactly once.** A new key inserts one ``InProgress`` record (the database's unique constraint decides races
  between threads, processes and instances) and runs the work. The same key with the same inputs replays the
  stored answer (``Answer.replayed``); with other inputs it is a 422 ``IDEMPOTENCY_KEY_REUSED``.
* **A repeat while the first attempt runs waits for it** (at most ``wait_seconds``) and replays its answer; if it
  still runs, the repeat gets a 503 ``REQUEST_IN_PROGRESS`` with ``Retry-After`` (Power Automate retries 503,
  never 409). After a crash the same holds until the job is resumed or settled.
* **Every synchronous answer within the deadline.** The work runs on a pooled thread; the request waits at most
  ``sync_budget`` seconds. Work still running then (hundreds of run ids, thousands of contacts, a slow platform)
  goes on in the background and the call answers ``202`` (the HTTP layer adds ``Location: /jobs/{id}/result``);
  the Location answers 202 until the job is done, then exactly the answer a synchronous call would have given.
  Short works (one contact: a few upstream calls) run instead in the calling thread, with no hand-off, when the
  caller's transport keeps the deadline: :meth:`JobRunner.begin` records the call and returns a
  :class:`RunningCall`; the caller runs it (``execute()``), and its transport's deadline calls ``detach()``
  from another thread to get the same 202 while the work goes on in the caller's thread.
* **A live job is never declared dead.** Leases are short and renewed (with the job's progress) by this
  process's one runner thread, for jobs running longer than a third of the lease: short calls cost nothing.
* **A dead worker's job is resumed or settled, never lost and never doubled.** The same runner thread claims
  ``InProgress`` jobs whose lease expired (PostgreSQL ``FOR UPDATE SKIP LOCKED``; SQLite: a conditional UPDATE)
  from the request kept encrypted in the record: a job that never sent a call which is not safe to repeat is
  run again (its calls are safe to repeat); one that may have sent such a call is settled by a read-back where
  the platform can be asked, else it ends as ``OUTCOME_UNKNOWN`` with what to check. ``attempts`` fences the
  old worker off the record if it was merely slow.
* **A call that is not safe to repeat is never repeated.** Each attempt's :class:`JobContext` carries a guard
  that the work hands to the provider method (``guard=job.guard``); the client tells it before it sends such a
  call (the record notes it: one UPDATE) and raises OutcomeUnknown when its answer is lost
  (:func:`service.providers.http.send_unsafe`); such a job is settled, never retried.
* Transient failures (408/429/5xx) of a synchronous call release the key: a retry runs the work again on
  the same record (``attempts`` + 1). A background job retries them itself with backoff.
"""

from __future__ import annotations

import contextvars
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

from service.actions.idempotency import (
    ASYNC,
    COMPLETED,
    FAILED,
    IN_PROGRESS,
    ActionCall,
    ActionResult,
    Answer,
    JobContext,
    merge_upstream_ids,
    outcome_unknown_problem,
    problem_body,
)
from service.actions.ledger import Claimed, Ledger
from service.actions.problems import CREDENTIALS_REFUSED, ActionError, Problem, to_problem
from service.providers import errors as perr

log = logging.getLogger(__name__)

Work = Callable[[JobContext], ActionResult]

#: Retry-After of a 202 (how soon Power Automate polls the Location again) and of REQUEST_IN_PROGRESS
POLL_AFTER_SECONDS = 5


class Operations(Protocol):  # pragma: no cover - typing only
    """What the runner needs to know about the actions (service.actions.operations implements it)."""

    def work(self, call: ActionCall) -> Work: ...

    def settle(self, call: ActionCall, unsafe_call: dict[str, Any], job_id: str) -> tuple[str, ActionResult | None]:
        ...

    def check_hint(self, call: ActionCall) -> str: ...


@dataclass
class RunnerConfig:
    #: how long a request waits for its work before answering 202 (the whole answer must stay under 100 s)
    sync_budget: float = 90.0
    #: how long a repeat waits for the first attempt before answering 503 REQUEST_IN_PROGRESS
    wait_seconds: float = 20.0
    #: background jobs (resumed or retried) this process runs at once
    background_slots: int = 4
    #: seconds between two looks for due jobs (None: from the lease)
    poll_seconds: float | None = None
    #: a background job that keeps failing transiently is given up after this many attempts
    max_attempts: int = 6
    #: threads for works (synchronous calls and background jobs)
    threads: int = 64


class _Running:
    """One attempt of a job executing in this process."""

    __slots__ = ("job_id", "attempt", "ctx", "started", "done", "answer", "lock", "detached", "finishing",
                 "unsafe_noted", "lost", "connection")

    def __init__(self, job_id: str, attempt: int, ctx: JobContext) -> None:
        self.job_id = job_id
        self.attempt = attempt
        self.ctx = ctx
        self.started = time.monotonic()
        self.done = threading.Event()
        self.answer: Answer | None = None
        self.lock = threading.Lock()
        self.detached = ctx.background
        self.finishing = False
        self.unsafe_noted = False
        self.lost = False
        #: hosted mode: the call's connection, kept (sealed) with the record once the job answers 202
        self.connection = None


class _Guard:
    """The :class:`~service.providers.http.UnsafeCallGuard` of one attempt: before a call that is not safe to
    repeat is sent, the ledger notes it (with the read-back data), so that a crashed worker's job is settled, not
    run again; an attempt whose job was taken over sends nothing."""

    __slots__ = ("runner", "running")

    def __init__(self, runner: JobRunner, running: _Running) -> None:
        self.runner = runner
        self.running = running

    def before_unsafe_call(self, call: str) -> None:
        self.runner._before_unsafe(self.running, call)


class RunningCall:
    """A recorded call whose work runs in the caller's thread (:meth:`JobRunner.begin`). ``execute()`` runs it
    and returns its answer; ``detach()`` - called from another thread, by the transport's deadline - stops
    waiting for it: the 202 ``accepted`` (the work goes on in the caller's thread, in the background; its own
    answer is then recorded, not sent), or None when the work is finishing anyway and its own answer is the
    one to give."""

    __slots__ = ("_runner", "_running", "_call", "_work")

    def __init__(self, runner: JobRunner, running: _Running, call: ActionCall, work: Work) -> None:
        self._runner, self._running, self._call, self._work = runner, running, call, work

    @property
    def job_id(self) -> str:
        return self._running.job_id

    def execute(self) -> Answer:
        self._runner._execute(self._running, self._call, self._work)
        return self._running.answer  # type: ignore[return-value]

    def detach(self) -> Answer | None:
        return self._runner._detach(self._running)


class JobRunner:
    def __init__(self, ledger: Ledger, operations: Operations | None = None,
                 config: RunnerConfig | None = None) -> None:
        self.ledger = ledger
        self.operations = operations
        self.config = config or RunnerConfig()
        lease = ledger.lease_seconds
        self._tick = self.config.poll_seconds or max(0.2, min(5.0, lease / 4))
        self._renew_after = lease / 3
        self._pool = ThreadPoolExecutor(max_workers=max(4, self.config.threads), thread_name_prefix="job")
        self._lock = threading.Lock()
        self._running: dict[str, _Running] = {}
        self._background = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- lifecycle ----------------------------------------------------------------------------------------
    def start(self) -> JobRunner:
        """Start this process's runner thread (lease renewal + claiming due jobs). Idempotent."""
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._stop.clear()
                self._thread = threading.Thread(target=self._loop, name="job-runner", daemon=True)
                self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        self._pool.shutdown(wait=False, cancel_futures=True)

    # -- the API ------------------------------------------------------------------------------------------
    def run(self, call: ActionCall, work: Work) -> Answer:
        """Record ``call`` and run ``work`` at most once per idempotency key (see the module docstring), on a
        pooled thread: the answer when it is done, or the 202 ``accepted`` after the sync budget.

        Returns the Answer (success, a problem, a replay, or a 202 ``accepted``). Raises ActionError 422
        ``IDEMPOTENCY_KEY_REUSED`` and 503 ``REQUEST_IN_PROGRESS``."""
        admitted = self._admit(call)
        if isinstance(admitted, Answer):
            return admitted
        admitted.connection = call.connection
        return self._on_pool(admitted, call, work)

    def begin(self, call: ActionCall, work: Work) -> Answer | RunningCall:
        """As :meth:`run`, but the work runs in the calling thread: a replay (or another answer that needs no
        work) comes back at once; else the call is recorded and the :class:`RunningCall` returned, for the
        caller to ``execute()`` - and for its transport's deadline to ``detach()``."""
        admitted = self._admit(call)
        if isinstance(admitted, Answer):
            return admitted
        admitted.connection = call.connection
        return RunningCall(self, admitted, call, work)

    def _admit(self, call: ActionCall) -> Answer | _Running:
        """The stored answer of ``call``'s key (a replay, a 202 of a job in the background), or the new attempt,
        recorded and registered, that runs it."""
        if call.idempotency_key is None:
            job_id = self.ledger.insert(call)
            assert job_id is not None
            return self._attempt(job_id, 1, None)
        give_up = time.monotonic() + self.config.wait_seconds
        pause = 0.02
        last = None
        for _ in range(10_000):
            job_id = self.ledger.insert(call)
            if job_id is not None:
                return self._attempt(job_id, 1, None)
            state = self.ledger.key_state(call.idempotency_key)
            if state is None:  # purged between our INSERT and SELECT: try again
                continue
            last = state
            if state.body_hash != call.body_hash:
                raise ActionError(422, "IDEMPOTENCY_KEY_REUSED",
                                  "This idempotency key was already used for a call with different inputs. Use a "
                                  "new key for a new call.", jobId=state.job_id)
            if state.status == IN_PROGRESS:
                if state.mode == ASYNC:
                    return self.accepted(state.job_id, replayed=True)
                remaining = give_up - time.monotonic()
                if remaining <= 0:
                    break
                local = self._running.get(state.job_id)
                if local is not None:
                    local.done.wait(min(remaining, 1.0))
                else:  # the first attempt runs in another process (or its worker died): look again soon
                    self._stop.wait(min(pause, remaining))
                    pause = min(pause * 2, 0.5)
                continue
            if state.status == FAILED and state.retryable:
                taken = self.ledger.take_over(state.job_id, state.attempts, call)
                if taken is None:  # someone else took it first (or it changed): look again
                    continue
                return self._attempt(state.job_id, state.attempts + 1, taken)
            answer = self.ledger.stored_answer(state.job_id)
            if answer is not None:
                return answer
        raise self._in_progress(last.job_id if last else None)

    def accepted(self, job_id: str, *, replayed: bool = False, progress: dict[str, int] | None = None) -> Answer:
        """The 202 of a job that goes on in the background (the HTTP layer adds its Location)."""
        body: dict[str, Any] = {"jobId": job_id, "status": IN_PROGRESS, "resultCode": "ACCEPTED",
                                "message": "The call takes longer than a synchronous answer allows; it goes on in "
                                           "the background. Its result is at the Location."}
        if progress:
            body["progress"] = progress
        return Answer(202, body, replayed=replayed, job_id=job_id, accepted=True, retry_after=POLL_AFTER_SECONDS)

    def result(self, job_id: str, caller: str | None) -> Answer:
        """The answer of ``GET /jobs/{jobId}/result``: 202 while the job runs, then its stored answer."""
        record = self.ledger.get(job_id, caller=caller)
        if record is None:
            raise ActionError(404, "JOB_NOT_FOUND", f"There is no job '{job_id[:64]}'. Use the Location a 202 "
                              "answer gave, or the jobId an action returned.")
        if record.status == IN_PROGRESS:
            local = self._running.get(job_id)
            progress = local.ctx.progress if local is not None else record.progress
            return self.accepted(job_id, progress=progress)
        answer = self.ledger.stored_answer(job_id, caller=caller)
        if answer is None:  # a synchronous call that failed transiently: its retry runs it again
            raise ActionError(409, "JOB_RETRY_PENDING", "The call failed with a temporary error and has not been "
                              "retried yet. Run it again (same idempotency key) to retry it.", jobId=job_id)
        answer.replayed = False
        return answer

    # -- executing ----------------------------------------------------------------------------------------
    def _attempt(self, job_id: str, attempt: int, upstream_ids: dict[str, list[str]] | None) -> _Running:
        running = _Running(job_id, attempt, JobContext(job_id, attempt, upstream_ids, sink=self))
        self._register(running)
        return running

    def _on_pool(self, running: _Running, call: ActionCall, work: Work) -> Answer:
        """Run the work on a pooled thread; answer when it is done, or 202 after the sync budget."""
        try:
            self._pool.submit(contextvars.copy_context().run, self._execute, running, call, work)
        except RuntimeError:  # the pool is shut down (the process is stopping)
            self._unregister(running)
            raise self._in_progress(running.job_id) from None
        if running.done.wait(self.config.sync_budget):
            return running.answer  # type: ignore[return-value]
        accepted = self._detach(running)
        if accepted is not None:
            return accepted
        if running.done.wait(5.0):  # it finished while we decided
            return running.answer  # type: ignore[return-value]
        raise self._in_progress(running.job_id)

    def _detach(self, running: _Running) -> Answer | None:
        """Stop waiting for a running job: it goes on in the background. Its 202, or None when it is finishing
        (or finished) and its own answer is the one to give."""
        with running.lock:
            if not running.finishing:
                running.detached = True
        if running.detached and self.ledger.mark_async(running.job_id, running.attempt, running.connection):
            log.info("job %s goes on in the background after %.0f s", running.job_id,
                     time.monotonic() - running.started)
            return self.accepted(running.job_id, progress=running.ctx.progress)
        return None

    def _execute(self, running: _Running, call: ActionCall, work: Work) -> None:
        running.ctx.guard = _Guard(self, running)  # handed down by the work to the provider (providers.http)
        started = time.monotonic()
        answer: Answer
        try:
            try:
                result = work(running.ctx)
                if not isinstance(result, ActionResult):
                    raise TypeError(f"work must return an ActionResult, not {type(result).__name__}")
            except Exception as exc:  # noqa: BLE001 - every outcome is recorded
                answer = self._failed(running, call, exc, started)
            else:
                answer = self._completed(running, call, result, started)
        except Exception:  # the database failed while recording: the lease expires and the job is resumed
            log.exception("job %s: recording the outcome failed", running.job_id)
            problem = Problem(503, "LEDGER_UNAVAILABLE", "Service Unavailable",
                              "The job ledger could not record the outcome; retry in a few seconds.",
                              headers={"Retry-After": str(POLL_AFTER_SECONDS)})
            answer = Answer(503, problem_body(problem, job_id=running.job_id, request_id=call.request_id),
                            dict(problem.headers), job_id=running.job_id)
        with running.lock:
            running.answer = answer
        running.done.set()
        self._unregister(running)

    def _completed(self, running: _Running, call: ActionCall, result: ActionResult, started: float) -> Answer:
        with running.lock:
            running.finishing = True
        ctx = running.ctx
        merge_upstream_ids(ctx.upstream_ids, result.upstream_ids)
        headers = dict(result.headers)
        body = dict(result.body)
        self.ledger.finish(running.job_id, running.attempt, status=COMPLETED, http_status=result.status,
                           result_code=result.result_code, message=result.message, upstream_ids=ctx.upstream_ids,
                           duration_ms=_ms(started), retryable=False, response=(result.status, headers, body),
                           known_secrets=call.known_secrets, progress=ctx.progress)
        return Answer(result.status, body, headers, job_id=running.job_id)

    def _failed(self, running: _Running, call: ActionCall, exc: Exception, started: float) -> Answer:
        ctx = running.ctx
        problem = to_problem(exc, hosted_platform=call.connection.platform if call.connection else None)
        if isinstance(exc, perr.OutcomeUnknown) and self.operations is not None:
            problem = outcome_unknown_problem(
                f"{exc.message} {self.operations.check_hint(call)}",
                upstreamCall=exc.call)
        if problem is None:  # a bug: recorded (the call may be retried), answered 500
            log.error("job %s: unexpected error", running.job_id, exc_info=exc)
            problem = Problem(500, "INTERNAL_ERROR", "Internal Server Error",
                              f"Something went wrong on our side. Quote request id {call.request_id} when you "
                              "report it.")
            with running.lock:
                running.finishing = True
            self.ledger.finish(running.job_id, running.attempt, status=FAILED, http_status=500,
                               result_code=problem.code, message=f"Unexpected error ({type(exc).__name__}); "
                               "the call may be retried.", upstream_ids=ctx.upstream_ids,
                               duration_ms=_ms(started), retryable=True, response=None,
                               known_secrets=call.known_secrets)
            return Answer(500, problem_body(problem, job_id=running.job_id, request_id=call.request_id),
                          dict(problem.headers), job_id=running.job_id)
        body = problem_body(problem, job_id=running.job_id, request_id=call.request_id)
        headers = dict(problem.headers)
        with running.lock:
            running.finishing = True
            background = running.detached
        if problem.transient and background:
            if running.attempt < self.config.max_attempts:
                delay = min(300, POLL_AFTER_SECONDS * 2 ** running.attempt)
                self.ledger.reschedule(running.job_id, running.attempt,
                                       self.ledger.now() + timedelta(seconds=delay), problem, ctx.upstream_ids)
                log.info("job %s: %s in the background; retried in %s s", running.job_id, problem.code, delay)
                return self.accepted(running.job_id)
            transient = False  # given up: the last problem is the job's answer
        else:
            # hosted mode: the platform refused the connection's credentials before doing anything - once the
            # maker fixes the connection, the same call (same Idempotency-Key) must run, not replay the 401
            transient = problem.transient or (problem.code == CREDENTIALS_REFUSED and not ctx.upstream_ids)
        self.ledger.finish(running.job_id, running.attempt, status=FAILED, http_status=problem.status,
                           result_code=problem.code, message=problem.detail, upstream_ids=ctx.upstream_ids,
                           duration_ms=_ms(started), retryable=transient, known_secrets=call.known_secrets,
                           response=None if transient else (problem.status, headers, body), progress=ctx.progress)
        return Answer(problem.status, body, headers, job_id=running.job_id)

    def _before_unsafe(self, running: _Running, name: str) -> None:
        if running.lost:
            raise perr.Unavailable("The job was taken over by another worker; nothing was sent.")
        if running.unsafe_noted:
            return
        if not self.ledger.mark_unsafe(running.job_id, running.attempt,
                                       {"call": name, "readback": running.ctx.readback}):
            running.lost = True
            raise perr.Unavailable("The job was taken over by another worker; nothing was sent.")
        running.unsafe_noted = True

    # -- the runner thread: leases and due jobs -----------------------------------------------------------
    def progress_changed(self, ctx: JobContext) -> None:  # JobSink: progress is stored with the next renewal
        pass

    def _loop(self) -> None:
        next_claim = 0.0
        while not self._stop.wait(self._tick):
            try:
                self._renew()
                if time.monotonic() >= next_claim:
                    next_claim = time.monotonic() + self._tick
                    self.claim_and_run()
            except Exception:  # noqa: BLE001 - the database may be away for a moment: try again next tick
                log.exception("job runner: renewing leases or claiming due jobs failed")

    def _renew(self) -> None:
        now = time.monotonic()
        with self._lock:
            due = [r for r in self._running.values() if now - r.started >= self._renew_after and not r.done.is_set()]
        if not due:
            return
        lost = self.ledger.renew([(r.job_id, r.attempt, r.ctx.progress) for r in due])
        for r in due:
            if r.job_id in lost:
                r.lost = True
                log.warning("job %s: lease lost (taken over); this attempt's outcome will not be recorded",
                            r.job_id)

    def claim_and_run(self) -> int:
        """Claim due jobs (dead workers', background retries) up to the free background slots and start them;
        returns how many were started."""
        with self._lock:
            free = self.config.background_slots - self._background
        if free <= 0:
            return 0
        claimed = self.ledger.claim_due(free)
        for job in claimed:
            with self._lock:
                self._background += 1
            self._pool.submit(contextvars.copy_context().run, self._resume, job)
        return len(claimed)

    def _resume(self, job: Claimed) -> None:
        try:
            self._resume_one(job)
        except Exception:  # noqa: BLE001
            log.exception("job %s: resuming failed", job.job_id)
        finally:
            with self._lock:
                self._background -= 1

    def _resume_one(self, job: Claimed) -> None:
        call = ActionCall(operation=job.operation, provider="", caller=job.caller, request_id=job.request_id,
                          params=job.params, body=job.body, connection=job.connection)
        if self.operations is None or job.body is None or job.credentials_lost or _lacks_connection(job):
            problem = (outcome_unknown_problem() if job.unsafe_call else
                       Problem(503, "JOB_NOT_RESUMABLE", "Service Unavailable",
                               "The service stopped while running this call and could not resume it. Run it "
                               "again.", headers={"Retry-After": str(POLL_AFTER_SECONDS)}))
            if job.unsafe_call:
                self.ledger.settle_unknown(job.job_id, job.attempt, problem, job.request_id, job.upstream_ids)
            else:
                self.ledger.finish(job.job_id, job.attempt, status=FAILED, http_status=problem.status,
                                   result_code=problem.code, message=problem.detail, upstream_ids=job.upstream_ids,
                                   duration_ms=0, retryable=True, response=None)
            return
        if job.unsafe_call:
            verdict, result = self.operations.settle(call, job.unsafe_call, job.job_id)
            if verdict == "applied" and result is not None:
                log.info("job %s: settled by read-back: the call was applied", job.job_id)
                running = _Running(job.job_id, job.attempt, JobContext(job.job_id, job.attempt, job.upstream_ids,
                                                                       background=True))
                self._completed(running, call, result, time.monotonic())
                return
            if verdict != "not_applied":
                hint = self.operations.check_hint(call)
                problem = outcome_unknown_problem(
                    "The service stopped while the marketing platform was being called with a request that is not "
                    f"safe to repeat. {hint}", upstreamCall=str(job.unsafe_call.get("call") or ""))
                self.ledger.settle_unknown(job.job_id, job.attempt, problem, job.request_id, job.upstream_ids)
                log.warning("job %s: settled as OUTCOME_UNKNOWN after its worker stopped", job.job_id)
                return
            log.info("job %s: settled by read-back: the call was not applied; running it again", job.job_id)
        log.info("job %s: resumed (attempt %s)", job.job_id, job.attempt)
        running = _Running(job.job_id, job.attempt, JobContext(job.job_id, job.attempt, job.upstream_ids,
                                                               sink=self, background=True))
        self._register(running)
        self._execute(running, call, self.operations.work(call))

    # -- helpers ------------------------------------------------------------------------------------------
    def _register(self, running: _Running) -> None:
        with self._lock:
            self._running[running.job_id] = running

    def _unregister(self, running: _Running) -> None:
        with self._lock:
            if self._running.get(running.job_id) is running:
                del self._running[running.job_id]

    def _in_progress(self, job_id: str | None) -> ActionError:
        ext = {"jobId": job_id} if job_id else {}
        return ActionError(503, "REQUEST_IN_PROGRESS",
                           "The same call (same idempotency key) is still being processed. Retry in a few seconds "
                           "to get its result.", headers={"Retry-After": str(POLL_AFTER_SECONDS)}, **ext)

    def running_jobs(self) -> list[str]:
        with self._lock:
            return list(self._running)


def _lacks_connection(job: Claimed) -> bool:
    """A hosted job (its caller is a tenant's) kept no credentials: it was not answered 202, so its request is
    gone with the worker; it is not resumable (the client's retry runs it again)."""
    from service.actions.tenancy import is_tenant_caller

    return job.connection is None and is_tenant_caller(job.caller)


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


__all__ = ["JobRunner", "Operations", "RunnerConfig", "RunningCall", "POLL_AFTER_SECONDS"]
