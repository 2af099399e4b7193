"""The spec served to /ui names the address the caller used (scheme, host, port; X-Forwarded-* and Forwarded
behind a proxy), so "Try it out" calls the service that served the page. The browser half is in
test_ui_browser.py."""

from __future__ import annotations

import pytest
import yaml

from service.app import create_app
from service.config import Settings
from service.connector import load_spec


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path_factory.mktemp('spec')}/ledger.db"))
    with app.test_client() as c:
        yield c


@pytest.mark.parametrize("headers, host, schemes, base_path", [
    ({"Host": "localhost:9000"}, "localhost:9000", ["http"], "/"),
    ({"Host": "127.0.0.1:18080"}, "127.0.0.1:18080", ["http"], "/"),
    ({"Host": "10.0.0.5:8000", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "actions.example.com"},
     "actions.example.com", ["https"], "/"),
    ({"Host": "10.0.0.5:8000", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "actions.example.com",
      "X-Forwarded-Port": "8443", "X-Forwarded-Prefix": "/marketing"},
     "actions.example.com:8443", ["https"], "/marketing"),
    ({"Host": "10.0.0.5:8000", "Forwarded": 'for=1.2.3.4;proto=https;host="gw.example.com"'},
     "gw.example.com", ["https"], "/"),
    ({"Host": "h.example:8000", "X-Forwarded-Host": "evil.example/x?y=1"}, "h.example:8000", ["http"], "/"),
])
def test_served_spec_names_the_callers_address(client, headers, host, schemes, base_path):
    r = client.get("/swagger.json", headers=headers)
    assert r.status_code == 200
    doc = r.json()
    assert (doc["host"], doc["schemes"], doc["basePath"]) == (host, schemes, base_path)
    assert int(r.headers["content-length"]) == len(r.content)


def test_the_yaml_form_too(client):
    r = client.get("/swagger.yaml", headers={"Host": "10.0.0.5:8000", "X-Forwarded-Proto": "https",
                                             "X-Forwarded-Host": "actions.example.com"})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/yaml")
    doc = yaml.load(r.text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    assert (doc["host"], doc["schemes"], doc["basePath"]) == ("actions.example.com", ["https"], "/")


def test_served_spec_is_the_contract_otherwise(client):
    served = client.get("/swagger.json", headers={"Host": "x:1"}).json()
    source = load_spec()
    assert source["host"] == "localhost:8000"  # the file is not rewritten
    assert set(served["paths"]) == set(source["paths"])
    assert served["info"] == source["info"]
    assert client.head("/swagger.json").status_code == 200
