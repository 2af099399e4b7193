from service.actions.problems import ActionError, from_provider_error
from service.providers import errors as perr


def test_extensions_never_replace_rfc7807_members():
    doc = ActionError(400, "INVALID_FIELD_VALUE", "bad", type="date", requestId="x", field="f").problem.to_dict()
    assert doc["type"].startswith("https://") and doc["status"] == 400 and doc["code"] == "INVALID_FIELD_VALUE"
    assert doc["field"] == "f"


def test_transient_provider_errors_carry_retry_after_and_business_ones_do_not():
    p = from_provider_error(perr.RateLimited("slow down", retry_after=2.2))
    assert (p.status, p.headers["Retry-After"], p.transient) == (503, "3", True)
    p = from_provider_error(perr.UpstreamTimeout("late"))
    assert p.status == 504 and int(p.headers["Retry-After"]) > 0
    p = from_provider_error(perr.Rejected("inactive", error_type="NOT_TRIGGERED"))
    assert (p.status, p.transient, p.ext["upstreamErrorType"]) == (409, False, "NOT_TRIGGERED")
    assert from_provider_error(perr.NotSupported("no")).transient is False


def test_every_problem_a_flow_retries_says_when_and_every_other_is_a_4xx():
    unreadable = from_provider_error(perr.ProviderError("odd answer", code="UPSTREAM_BAD_RESPONSE"))
    assert (unreadable.status, unreadable.transient, unreadable.headers["Retry-After"]) == (502, True, "5")
    bug = ActionError(500, "INTERNAL_ERROR", "ours").problem
    assert bug.headers["Retry-After"] == "5"
    lacks = from_provider_error(perr.NotSupported("Piggy has no such thing", code="NOT_SUPPORTED_BY_PLATFORM"))
    assert (lacks.status, lacks.transient, lacks.headers) == (400, False, {})
    kept = ActionError(503, "LEDGER_UNAVAILABLE", "later", headers={"retry-after": "10"}).problem
    assert kept.headers == {"retry-after": "10"}  # a figure given is kept, in whatever case it was written
