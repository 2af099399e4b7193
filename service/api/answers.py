"""The one place where an outcome becomes an HTTP answer: Content-Type (the problem content type is spelled here
only), the absolute ``Location`` and ``Retry-After`` of a 202, ``Idempotent-Replayed`` of a replay, and the
``application/problem+json`` document of a problem. ``service.actions`` returns results, typed problems and
:class:`~service.actions.idempotency.Answer` s; it never builds HTTP headers."""

from __future__ import annotations

from collections.abc import Callable

import flask
from connexion.lifecycle import ConnexionResponse

from service.actions.idempotency import Answer
from service.actions.problems import Problem
from service.api import jsonbody
from service.api.urls import request_base_url
from service.logs import request_id_var

PROBLEM_JSON = "application/problem+json"
JSON = "application/json"
REPLAY_HEADER = "Idempotent-Replayed"


def media_type_detail(sent: str | None, *, body_is_json: bool = False, accepted: list[str] | None = None) -> str:
    """The 415's sentence: what is expected and what came, in words (``sent``: the request's Content-Type;
    ``accepted``: the operation's media types when not only JSON). ``body_is_json``: the Content-Type was JSON
    but no JSON object or array came (an empty body)."""
    if body_is_json:
        return "Send the body as a JSON object (Content-Type: application/json); this request sent none."
    media = (sent or "").split(";", 1)[0].strip()
    media = "".join(ch for ch in media if ch.isprintable())[:60]
    came = f"this request sent {media}" if media else "this request sent no Content-Type"
    others = [a for a in accepted or [] if a != JSON]
    if others:
        return f"Send the body as JSON (Content-Type: application/json) or as {' or '.join(others)}; {came}."
    return f"Send the body as JSON (Content-Type: application/json); {came}."


def answer_parts(answer: Answer, base_url: Callable[[], str],
                 job_token: Callable[[str], str] | None = None) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body of ``answer``; ``base_url()`` gives the external base of a 202's Location,
    ``job_token`` (hosted mode) the secret it carries after the job id."""
    headers = dict(answer.headers)
    if "Content-Type" not in headers and "content-type" not in headers:
        headers["Content-Type"] = PROBLEM_JSON if answer.status >= 400 else JSON
    if answer.accepted and answer.job_id:
        ref = f"{answer.job_id}.{job_token(answer.job_id)}" if job_token else answer.job_id
        headers["Location"] = f"{base_url()}/jobs/{ref}/result"
    if answer.retry_after is not None:
        headers["Retry-After"] = str(answer.retry_after)
    if answer.replayed:
        headers[REPLAY_HEADER] = "true"
    return answer.status, headers, jsonbody.dumps(answer.body).encode("utf-8")


def respond(answer: Answer) -> flask.Response:
    """The Flask response of ``answer`` in a request's context."""
    status, headers, body = answer_parts(answer, request_base_url, location_token())
    response = flask.Response(body, status=status)
    response.headers.update(headers)
    return response


def location_token() -> Callable[[str], str] | None:
    """Hosted mode: the token function of 202 Locations (service.hosted.HostedAccounts.job_token); else None."""
    from service.runtime import current_runtime

    hosted = current_runtime().hosted
    return hosted.job_token if hosted is not None else None


def problem_document(problem: Problem, request_id: str | None = None) -> str:
    """The ``application/problem+json`` document of ``problem`` (its members: Problem.to_dict)."""
    return jsonbody.dumps(problem.to_dict(request_id=request_id))


def render_problem(problem: Problem) -> ConnexionResponse:
    """The answer of a problem raised anywhere in a request (Connexion's error handlers)."""
    return ConnexionResponse(status_code=problem.status, mimetype=PROBLEM_JSON, content_type=PROBLEM_JSON,
                             body=problem_document(problem, request_id_var.get()),
                             headers=dict(problem.headers))
