"""Schemathesis hooks for bench/fuzz.py (loaded through ``SCHEMATHESIS_HOOKS=bench.fuzz_hooks``).

``problem_json_content_type`` states the content-type contract of DESIGN.md: a 2xx answer is
``application/json`` (or what the operation's own ``produces`` declares: ``GET /metrics`` is Prometheus text), an
error is ``application/problem+json`` with type, title, status, detail and code. It
replaces schemathesis's ``content_type_conformance``, which compares with the spec's ``produces``
(``application/json`` only; see bench/RESULTS.md).
"""

import schemathesis


def _content_type(response) -> str:
    values = response.headers.get("content-type") or [""]  # lower-case keys, list values
    return values[0].split(";")[0].strip().lower()


def _declared(case) -> set[str]:
    """The media types the operation itself declares in ``produces`` (none: the spec's application/json)."""
    raw = getattr(getattr(case.operation, "definition", None), "raw", None)
    produces = raw.get("produces") if isinstance(raw, dict) else None
    return {p.split(";")[0].strip().lower() for p in produces or ()} or {"application/json"}


@schemathesis.check
def problem_json_content_type(ctx, response, case):
    ctype = _content_type(response)
    status = response.status_code
    expected = _declared(case)
    if 200 <= status < 300 and status != 204 and ctype not in expected:
        raise AssertionError(f"{status} answered with Content-Type {ctype!r}, expected {' or '.join(sorted(expected))}")
    if status >= 400:
        if ctype != "application/problem+json":
            raise AssertionError(f"{status} answered with Content-Type {ctype!r}, expected application/problem+json")
        body = response.json()
        missing = {"type", "title", "status", "detail", "code"} - set(body if isinstance(body, dict) else {})
        if missing:
            raise AssertionError(f"the problem document lacks {sorted(missing)}")
        if body["status"] != status:
            raise AssertionError(f"problem status {body['status']} differs from the HTTP status {status}")
