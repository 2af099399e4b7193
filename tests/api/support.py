"""Assertions shared by the contact, tag, permission and audience API tests."""

from __future__ import annotations

PROBLEM_KEYS = {"type", "title", "status", "detail", "code"}


def assert_problem(resp, status: int, code: str) -> dict:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    body = resp.json()
    assert PROBLEM_KEYS <= body.keys(), body
    assert body["status"] == status
    assert body["code"] == code, body
    return body


def assert_ok(resp) -> dict:
    assert resp.status_code == 200, resp.text
    body = resp.json()
    if "jobId" in body or "resultCode" in body:
        assert body["jobId"] and body["resultCode"], body
    return body
