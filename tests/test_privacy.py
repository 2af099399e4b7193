"""service.privacy: masking, keyed hashing and redaction."""

from __future__ import annotations

import pytest

from service import privacy


@pytest.mark.parametrize(("email", "masked"), [
    ("john@example.com", "j***@example.com"),
    ("  John.Doe@Example.COM ", "j***@example.com"),
    ("a@b.co", "a***@b.co"),
    ("not-an-email", "***"),
    ("@example.com", "***"),
])
def test_mask_email(email, masked):
    assert privacy.mask_email(email) == masked


def test_mask_email_none():
    assert privacy.mask_email(None) is None


def test_email_hash_normalises_and_depends_on_the_key():
    h = privacy.email_hash("john@example.com", b"k1")
    assert h == privacy.email_hash("  JOHN@Example.com ", b"k1")
    assert h != privacy.email_hash("john@example.com", b"k2")
    assert h != privacy.email_hash("jane@example.com", b"k1")
    assert len(h) == 64 and "john" not in h
    with pytest.raises(ValueError):
        privacy.email_hash("john@example.com", b"")


def test_api_key_id_is_short_stable_and_not_the_key():
    kid = privacy.api_key_id("sk_live_abcdef")
    assert kid == privacy.api_key_id("sk_live_abcdef") != privacy.api_key_id("sk_live_abcdeg")
    assert len(kid) == 12 and "abcdef" not in kid


@pytest.mark.parametrize("name", ["password", "Password", "clientSecret", "client_secret", "api_key", "apiKey",
                                  "X-Api-Key", "Authorization", "accessToken", "refresh_token", "key", "privateKey",
                                  "Cookie"])
def test_secret_key_names(name):
    assert privacy.is_secret_key(name)


@pytest.mark.parametrize("name", ["email", "externalId", "fields", "automationId", "tags", "name", "score"])
def test_ordinary_key_names(name):
    assert not privacy.is_secret_key(name)


def test_redact_removes_secrets_and_masks_emails_deeply_without_touching_the_input():
    given = {
        "contact": {"email": "ann@example.com", "externalId": "42"},
        "password": "hunter2",
        "config": {"apiKey": "abc123xyz", "nested": [{"token": "t0k3n"}, "mail bob@example.org please"]},
        "fieldsText": "city=Utrecht;password=hunter2;x=1",
        "note": "use Bearer eyJhbGciOi.xyz to call",
        "count": 3, "ok": True, "none": None,
        "echo": "key sk_live_1234 here",
    }
    out = privacy.redact(given, known_secrets=["sk_live_1234"])
    assert out["contact"] == {"email": "a***@example.com", "externalId": "42"}
    assert out["password"] == privacy.REDACTED
    assert out["config"]["apiKey"] == privacy.REDACTED
    assert out["config"]["nested"] == [{"token": privacy.REDACTED}, "mail b***@example.org please"]
    assert out["fieldsText"] == "city=Utrecht;password=***;x=1"
    assert "eyJhbGciOi" not in out["note"]
    assert (out["count"], out["ok"], out["none"]) == (3, True, None)
    assert "sk_live_1234" not in out["echo"]
    assert given["password"] == "hunter2"  # a copy, not in place


def test_redact_bounds_size():
    out = privacy.redact({"s": "x" * 5000, "l": list(range(1000))})
    assert len(out["s"]) <= privacy.MAX_STRING + 1
    assert len(out["l"]) == privacy.MAX_ITEMS + 1 and "800 more" in out["l"][-1]
    deep: dict = {}
    cur = deep
    for _ in range(50):
        cur["d"] = {}
        cur = cur["d"]
    assert "d" in privacy.redact(deep)  # no recursion error


def test_redact_headers():
    out = privacy.redact_headers({"Authorization": "Bearer x", "X-Api-Key": "k", "Accept": "application/json"})
    assert out == {"Authorization": "***", "X-Api-Key": "***", "Accept": "application/json"}
