"""External base URL behind proxies: one rule for every absolute URL the service hands out."""

import pytest

from service.api.urls import external_base_url


@pytest.mark.parametrize(("headers", "scheme", "host", "expected"), [
    ({}, "http", "localhost:9000", "http://localhost:9000"),
    ({"x-forwarded-proto": "https", "x-forwarded-host": "api.example.com"}, "http", "10.0.0.5:8000",
     "https://api.example.com"),
    ({"x-forwarded-proto": "https, http", "x-forwarded-host": "a.example.com, b.internal"}, "http", "x:1",
     "https://a.example.com"),
    ({"x-forwarded-proto": "https", "x-forwarded-host": "api.example.com", "x-forwarded-port": "8443"}, "http",
     "10.0.0.5:8000", "https://api.example.com:8443"),
    ({"x-forwarded-proto": "https", "x-forwarded-host": "api.example.com:443"}, "http", "h", "https://api.example.com"),
    ({"forwarded": 'for=1.2.3.4;proto=https;host="gw.example.com"'}, "http", "h:1", "https://gw.example.com"),
    ({"x-forwarded-prefix": "/marketing/"}, "http", "h:1", "http://h:1/marketing"),
    # forged values that are not a scheme, host or prefix are ignored
    ({"x-forwarded-proto": "javascript", "x-forwarded-host": "evil.example/path?x=1"}, "https", "h.example",
     "https://h.example"),
    ({"x-forwarded-prefix": "/a b"}, "http", "h:1", "http://h:1"),
])
def test_external_base_url(headers, scheme, host, expected):
    assert external_base_url(headers, scheme, host) == expected
