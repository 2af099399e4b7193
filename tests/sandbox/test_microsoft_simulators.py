"""The Entra ID and Dataverse simulators speak like the real services (formats the clients rely on)."""

from __future__ import annotations

import jwt
import requests

from service.sandbox.dataverse import API
from service.sandbox.dataverse import demo as dv
from service.sandbox.entra import demo


def session(ms) -> requests.Session:
    s = requests.Session()
    s.verify, s.trust_env = ms.ca_path, False
    return s


def test_entra_discovery_keys_and_token_errors(ms):
    http, base = session(ms), f"{ms.entra_url}/{demo.TENANT_ID}"
    v2 = http.get(f"{base}/v2.0/.well-known/openid-configuration").json()
    assert v2["issuer"] == f"{base}/v2.0" and v2["token_endpoint"] == f"{base}/oauth2/v2.0/token"
    v1 = http.get(f"{base}/.well-known/openid-configuration").json()
    assert v1["issuer"] == f"https://sts.windows.net/{demo.TENANT_ID}/"
    [key] = http.get(v2["jwks_uri"]).json()["keys"]
    assert (key["kty"], key["use"], key["kid"]) == ("RSA", "sig", ms.entra.current_kid)
    token = ms.entra.user_token()
    assert jwt.get_unverified_header(token) == {"alg": "RS256", "kid": key["kid"], "x5t": key["kid"], "typ": "JWT"}
    unknown = http.get(f"{ms.entra_url}/00000000-0000-4000-8000-000000000000/v2.0/.well-known/openid-configuration")
    assert unknown.status_code == 400 and unknown.json()["error_description"].startswith("AADSTS90002:")
    form = {"client_id": demo.API_CLIENT_ID, "client_secret": demo.API_CLIENT_SECRET}
    no_default = http.post(v2["token_endpoint"], data={**form, "grant_type": "client_credentials",
                                                       "scope": f"{ms.dataverse_url}/user_impersonation"})
    assert no_default.status_code == 400 and no_default.json()["error"] == "invalid_scope"
    app_token = ms.entra.issue_token(audience=demo.API_APP_ID_URI, roles=[demo.API_ROLE], user=False)
    obo_with_app_token = http.post(v2["token_endpoint"], data={
        **form, "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "requested_token_use": "on_behalf_of",
        "assertion": app_token, "scope": f"{ms.dataverse_url}/user_impersonation"})
    assert obo_with_app_token.status_code == 400 and obo_with_app_token.json()["error"] == "invalid_grant"
    wrong = http.post(v2["token_endpoint"], data={**form, "client_secret": "nope", "grant_type": "client_credentials",
                                                  "scope": f"{ms.dataverse_url}/.default"})
    assert wrong.status_code == 401 and wrong.json()["error_codes"] == [7000215]


def test_dataverse_records_notes_and_error_bodies(ms):
    http = session(ms)
    token = ms.entra.issue_token(audience=ms.dataverse_url, app_id=demo.API_CLIENT_ID, user=False)
    auth = {"Authorization": f"Bearer {token}"}
    url = f"{ms.dataverse_url}{API}"
    r = http.get(f"{url}/contacts({dv.CONTACT_JAN})", params={"$select": "fullname"}, headers=auth)
    doc = r.json()
    assert doc["@odata.context"].endswith("#contacts(fullname)/$entity") and set(doc) == {
        "@odata.context", "@odata.etag", "fullname", "contactid"}
    bad = http.get(f"{url}/contacts({dv.CONTACT_JAN})", params={"$select": "nope"}, headers=auth)
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "0x80060888"
    unauth = http.get(f"{url}/contacts({dv.CONTACT_JAN})")
    assert unauth.status_code == 401 and unauth.headers["WWW-Authenticate"].startswith("Bearer authorization_uri=")
    note = {"subject": "s" * 501, "objectid_contact@odata.bind": f"/contacts({dv.CONTACT_JAN})"}
    assert http.post(f"{url}/annotations", json=note, headers=auth).json()["error"]["code"] == "0x80044331"
    note["subject"] = "ok"
    created = http.post(f"{url}/annotations", json=note, headers={**auth, "Prefer": "return=representation"})
    assert created.status_code == 201 and created.headers["OData-EntityId"].endswith(
        f"/annotations({created.json()['annotationid']})")
    dup = http.post(f"{url}/annotations", json={**note, "annotationid": created.json()["annotationid"]}, headers=auth)
    assert dup.status_code == 412 and dup.json()["error"]["code"] == "0x80040237"
    wrong_bind = http.post(f"{url}/annotations", headers=auth,
                           json={"subject": "x", "objectid_lead@odata.bind": f"/contacts({dv.CONTACT_JAN})"})
    assert wrong_bind.status_code == 400
    ms.dataverse_faults.configure(fail_rate=1, fail_status=429, retry_after=3, times=1)
    throttled = http.get(f"{url}/contacts({dv.CONTACT_JAN})", headers=auth)
    assert throttled.status_code == 429 and throttled.headers["Retry-After"] == "3"
    assert set(throttled.json()["error"]) == {"code", "message"}
    assert [n["subject"] for n in http.get(f"{ms.dataverse_url}/__sim__/notes").json()["value"]] == ["ok"]
