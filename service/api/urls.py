"""The address a caller used to reach us, for absolute URLs we hand out (``Location``, the served spec).

The service runs behind proxies (the Power Platform gateway, a load balancer, a PaaS router), so the host and
scheme it sees are not always the ones the caller used. ``X-Forwarded-Proto`` / ``X-Forwarded-Host`` /
``X-Forwarded-Port`` / ``X-Forwarded-Prefix`` (first value of a list) and RFC 7239 ``Forwarded`` win over
the request's own. One piece of code for every absolute URL: the polling ``Location`` of triggers, the
``Location`` of asynchronous jobs and the ``host``/``schemes`` of the spec served to ``/ui``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

_HOST_RE = re.compile(r"^[A-Za-z0-9.\-]+(:\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](:\d{1,5})?$")
_PREFIX_RE = re.compile(r"^(/[A-Za-z0-9._~\-]+)*$")


def _first(value: str | None) -> str | None:
    if not value:
        return None
    first = value.split(",")[0].strip()
    return first or None


def _forwarded(value: str | None) -> dict[str, str]:
    """The first element of an RFC 7239 ``Forwarded`` header as a dict (``proto``, ``host``)."""
    out: dict[str, str] = {}
    first = _first(value)
    if not first:
        return out
    for pair in first.split(";"):
        name, _, val = pair.partition("=")
        out[name.strip().lower()] = val.strip().strip('"')
    return out


def external_origin(headers: Mapping[str, str], scheme: str, host: str) -> tuple[str, str, str]:
    """``(scheme, host[:port], prefix)`` as the caller sees us.

    ``headers`` is a case-insensitive mapping (Werkzeug/Starlette headers, or a dict with lower-case keys);
    ``scheme`` and ``host`` are what the server saw. Forwarded values that are not a plain scheme, host or path
    prefix are ignored, so a forged header cannot inject anything into a URL.
    """
    def get(name: str) -> str | None:
        return headers.get(name) or headers.get(name.lower())

    fwd = _forwarded(get("Forwarded"))
    proto = (_first(get("X-Forwarded-Proto")) or fwd.get("proto") or scheme or "http").lower()
    if proto not in ("http", "https"):
        proto = scheme if scheme in ("http", "https") else "http"
    fhost = _first(get("X-Forwarded-Host")) or fwd.get("host")
    if fhost and _HOST_RE.match(fhost):
        host = fhost
    port = _first(get("X-Forwarded-Port"))
    if port and port.isdigit() and ":" not in host.rsplit("]", 1)[-1]:
        if not ((proto == "https" and port == "443") or (proto == "http" and port == "80")):
            host = f"{host}:{port}"
    # drop a default port so the URL reads the way a caller would write it
    if (proto == "https" and host.endswith(":443")) or (proto == "http" and host.endswith(":80")):
        host = host.rsplit(":", 1)[0]
    prefix = (_first(get("X-Forwarded-Prefix")) or "").rstrip("/")
    if not _PREFIX_RE.match(prefix):
        prefix = ""
    return proto, host, prefix


def external_base_url(headers: Mapping[str, str], scheme: str, host: str) -> str:
    """``scheme://host[:port][/prefix]`` without a trailing slash."""
    proto, host, prefix = external_origin(headers, scheme, host)
    return f"{proto}://{host}{prefix}"


def request_base_url() -> str:
    """The external base URL of the current Flask request (handlers only)."""
    import flask

    req = flask.request
    return external_base_url(req.headers, req.scheme, req.host)


def absolute_url(path_and_query: str) -> str:
    """An absolute URL for a path of ours (``/triggers/...?state=...``) as the current caller reaches us."""
    if not path_and_query.startswith("/"):
        path_and_query = "/" + path_and_query
    return request_base_url() + path_and_query
