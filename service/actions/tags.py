"""Tag and score actions, independent of the platform (Spotler's tag calls stay behind the provider)."""

from __future__ import annotations

from typing import Any

from service.actions.contacts import contact_summary, parse_names
from service.actions.idempotency import ActionResult, JobContext
from service.actions.problems import invalid
from service.actions.resolution import contact_ref, resolve_contact

SCORE_MIN, SCORE_MAX = -(2**31), 2**31 - 1
MODES = ("set", "increase", "decrease")
MAX_TAG_LENGTH = 255


def list_tags(rt) -> dict:
    tags = rt.cache.get(("tags",), rt.provider.list_tags)
    return {"value": [{"name": t.name} for t in tags]}


def _score(value: Any, field: str = "score") -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid(field, f"'{field}' must be a whole number.", code="INVALID_SCORE")
    if not SCORE_MIN <= value <= SCORE_MAX:
        raise invalid(field, f"'{field}' must be between {SCORE_MIN} and {SCORE_MAX}.", code="INVALID_SCORE")
    return value


def parse_tags(value: Any) -> list[str]:
    return parse_names(value, "tags", separators=",;", what="tags", max_length=MAX_TAG_LENGTH)


def add_tag(rt, body: dict, job: JobContext) -> ActionResult:
    provider = rt.provider
    ref = contact_ref(body.get("contact"))
    tags = parse_tags(body.get("tags"))
    score = _score(body["score"]) if body.get("score") is not None else None
    contact, _ = resolve_contact(provider, ref)
    provider.add_tags(contact, tags, score)
    message = f"Added {len(tags)} tag(s)" + (f" with score {score}." if score is not None else ".")
    return ActionResult(body={"jobId": job.job_id, "resultCode": "OK", "message": message,
                              "contact": contact_summary(contact), "tags": tags},
                        message=message)


def remove_tag(rt, body: dict, job: JobContext) -> ActionResult:
    provider = rt.provider
    ref = contact_ref(body.get("contact"))
    tags = parse_tags(body.get("tags"))
    contact, _ = resolve_contact(provider, ref)
    provider.remove_tags(contact, tags)
    message = f"Removed {len(tags)} tag(s) and their scores."
    return ActionResult(body={"jobId": job.job_id, "resultCode": "OK", "message": message,
                              "contact": contact_summary(contact), "tags": tags},
                        message=message)


def set_score(rt, body: dict, job: JobContext) -> ActionResult:
    provider = rt.provider
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
    new_score = provider.set_score(contact, tag, score, mode)
    out: dict[str, Any] = {"jobId": job.job_id, "resultCode": "OK", "contact": contact_summary(contact),
                           "tag": tag, "mode": mode}
    if new_score is not None:
        out["score"] = int(new_score)
    verb = {"set": f"set to {score}", "increase": f"increased by {score}", "decrease": f"decreased by {score}"}[mode]
    out["message"] = f"The score on '{tag}' was {verb}" + (f"; it is now {new_score}." if new_score is not None
                                                           else ".")
    return ActionResult(body=out, message=out["message"])
