"""Tag and score actions, independent of the platform (Spotler's tag calls stay behind the provider)."""

from __future__ import annotations

import time
from typing import Any

from service.actions.deps import Platform
from service.actions.contacts import contact_summary, parse_names
from service.actions.idempotency import ActionResult, JobContext
from service.actions.problems import invalid
from service.actions.resolution import contact_ref, resolve_contact
from service.providers.base import Contact, Provider
from service.providers.errors import OutcomeUnknown, ProviderError, TransientError, Unavailable

SCORE_MIN, SCORE_MAX = -(2**31), 2**31 - 1
MODES = ("set", "increase", "decrease")
MAX_TAG_LENGTH = 255


def list_tags(platform: Platform) -> dict:
    tags = platform.cache.get(("tags",), platform.provider.list_tags)
    return {"value": [{"name": t.name} for t in tags]}


def _score(value: Any, field: str = "score") -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid(field, f"'{field}' must be a whole number.", code="INVALID_SCORE")
    if not SCORE_MIN <= value <= SCORE_MAX:
        raise invalid(field, f"'{field}' must be between {SCORE_MIN} and {SCORE_MAX}.", code="INVALID_SCORE")
    return value


def parse_tags(value: Any) -> list[str]:
    return parse_names(value, "tags", separators=",;", what="tags", max_length=MAX_TAG_LENGTH)


def add_tag(platform: Platform, body: dict, job: JobContext) -> ActionResult:
    provider = platform.provider
    ref = contact_ref(body.get("contact"))
    tags = parse_tags(body.get("tags"))
    score = _score(body["score"]) if body.get("score") is not None else None
    contact, _ = resolve_contact(provider, ref)
    provider.add_tags(contact, tags, score)
    message = f"Added {len(tags)} tag(s)" + (f" with score {score}." if score is not None else ".")
    return ActionResult(body={"jobId": job.job_id, "resultCode": "OK", "message": message,
                              "contact": contact_summary(contact), "tags": tags},
                        message=message)


def remove_tag(platform: Platform, body: dict, job: JobContext) -> ActionResult:
    provider = platform.provider
    ref = contact_ref(body.get("contact"))
    tags = parse_tags(body.get("tags"))
    contact, _ = resolve_contact(provider, ref)
    provider.remove_tags(contact, tags)
    message = f"Removed {len(tags)} tag(s) and their scores."
    return ActionResult(body={"jobId": job.job_id, "resultCode": "OK", "message": message,
                              "contact": contact_summary(contact), "tags": tags},
                        message=message)


def set_score(platform: Platform, body: dict, job: JobContext) -> ActionResult:
    provider = platform.provider
    ref = contact_ref(body.get("contact"))
    tag = body.get("tag")
    if not isinstance(tag, str) or not tag.strip():
        raise invalid("tag", "Give the tag that holds the score.", code="TAG_REQUIRED")
    tag = tag.strip()
    if len(tag) > MAX_TAG_LENGTH:
        raise invalid("tag", f"A tag has at most {MAX_TAG_LENGTH} characters.", code="INVALID_TAG")
    score = _score(body.get("score"))
    mode = body.get("mode") or "set"
    if not isinstance(mode, str) or mode.strip().lower() not in MODES:
        raise invalid("mode", "'mode' must be set, increase or decrease.", code="INVALID_MODE")
    mode = mode.strip().lower()
    if mode != "set" and score < 0:
        other = "decrease" if mode == "increase" else "increase"
        raise invalid("score", f"To {mode} by a negative amount, use mode '{other}' with {-score}.",
                      code="INVALID_SCORE")
    contact, _ = resolve_contact(provider, ref)
    if mode == "set":
        new_score = provider.set_score(contact, tag, score, mode, guard=job.guard)
    else:
        new_score = _change_score(provider, contact, tag, score, mode, job)
    return score_result(job.job_id, contact, tag, score, mode, new_score)


def score_result(job_id: str, contact: Contact, tag: str, score: int, mode: str, new_score: int | None) -> ActionResult:
    out: dict[str, Any] = {"jobId": job_id, "resultCode": "OK", "contact": contact_summary(contact),
                           "tag": tag, "mode": mode}
    if new_score is not None:
        out["score"] = int(new_score)
    verb = {"set": f"set to {score}", "increase": f"increased by {score}", "decrease": f"decreased by {score}"}[mode]
    out["message"] = f"The score on '{tag}' was {verb}" + (f"; it is now {new_score}." if new_score is not None
                                                           else ".")
    return ActionResult(body=out, message=out["message"])


# -- an increase or decrease is not safe to repeat: read the score before, and settle a lost answer by reading
#    it again (a read-back) -----------------------------------------------------------------------------------

APPLIED, NOT_APPLIED, UNKNOWN = "applied", "not_applied", "unknown"


def _change_score(provider: Provider, contact: Contact, tag: str, score: int, mode: str,
                  job: JobContext) -> int | None:
    delta = score if mode == "increase" else -score
    before = provider.read_score(contact, tag)
    if before is not None:
        job.note_readback({"externalId": contact.external_id, "tag": tag, "before": int(before), "delta": delta})
    try:
        return provider.set_score(contact, tag, score, mode, guard=job.guard)
    except OutcomeUnknown as exc:
        if before is None:
            raise
        verdict, now = settle_score(provider, contact, tag, int(before), delta)
        if verdict == APPLIED:
            return now
        # an unchanged score proves nothing while the platform may still be working on the request (timeout)
        if verdict == NOT_APPLIED and not exc.in_flight:
            raise Unavailable(f"{provider.name} did not apply the score change (read back: the score is still "
                              f"{before}); retry the call.", code="UPSTREAM_NOT_APPLIED") from None
        raise


def settle_score(provider: Provider, contact: Contact, tag: str, before: int, delta: int,
                 tries: int = 3) -> tuple[str, int | None]:
    """Read the score again: ``before + delta`` means the change was applied, ``before`` that it was not;
    anything else (someone else changed it meanwhile, or the platform cannot tell) stays unknown."""
    for attempt in range(tries):
        try:
            now = provider.read_score(contact, tag)
        except TransientError:
            if attempt + 1 == tries:
                return UNKNOWN, None
            time.sleep(0.2 * (attempt + 1))  # a short pause before reading again (production path only)
            continue
        except ProviderError:
            return UNKNOWN, None
        if now is None:
            return UNKNOWN, None
        if int(now) == before + delta:
            return APPLIED, int(now)
        if int(now) == before:
            return NOT_APPLIED, int(now)
        return UNKNOWN, None
    return UNKNOWN, None
