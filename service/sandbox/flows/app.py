"""The Power Automate callback simulator, as a WSGI app.

What a flow's callback URL does (``webhooks-relay.md`` §3.1): ``POST
/workflows/<id>/triggers/manual/paths/invoke?api-version=...&sp=...&sv=1.0&sig=<sig>`` starts the flow and
answers 202 at once [C]; a wrong ``sig`` is 401 ``DirectApiInvalidAuthorizationSignature``; a flow that is off
answers 400 ``WorkflowTriggerIsNotEnabled``, a deleted one 404 ``WorkflowNotFound`` [S].

A test scripts the next answers of a flow (:meth:`FlowsSimulator.script`): a status (500, 202, 404, ...), a
Logic Apps error code (``"WorkflowTriggerIsNotEnabled"``, ``"WorkflowNotFound"``), ``"hang"`` (no answer until
:meth:`release` or 120 s) or ``{"status": 302, "location": url}``. Every request is recorded on arrival, before
it is answered (:meth:`deliveries`).

Control over HTTP (no auth): ``POST /__sim__/flows`` (a new flow: ``{id, callbackUrl}``), ``GET
/__sim__/flows/<id>`` (its deliveries), ``POST /__sim__/flows/<id>/script`` (``{"answers": [...]}``), ``POST
/__sim__/flows/<id>/release``.
"""

from __future__ import annotations

import hmac
import json
import secrets
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from werkzeug.exceptions import HTTPException, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

ERRORS = {
    "WorkflowTriggerIsNotEnabled": (400, "The workflow trigger is not enabled (the flow is off)."),
    "WorkflowNotFound": (404, "The workflow was not found."),
    "DirectApiInvalidAuthorizationSignature": (401, "The provided callback signature is invalid."),
}
HANG_LIMIT_SECONDS = 120.0


class FlowsSimulator:
    def __init__(self, on_delivery: Callable[[str, dict[str, Any]], None] | None = None) -> None:
        self.lock = threading.Lock()
        self.flows: dict[str, dict[str, Any]] = {}
        self.on_delivery = on_delivery
        self.url_map = Map([
            Rule("/workflows/<fid>/triggers/manual/paths/invoke", methods=["POST"], endpoint="invoke"),
            Rule("/__sim__/flows", methods=["POST"], endpoint="create"),
            Rule("/__sim__/flows/<fid>", methods=["GET"], endpoint="show"),
            Rule("/__sim__/flows/<fid>/script", methods=["POST"], endpoint="set_script"),
            Rule("/__sim__/flows/<fid>/release", methods=["POST"], endpoint="do_release"),
        ])

    # -- the Python API (tests) ---------------------------------------------------------------------------
    def create_flow(self, base_url: str, name: str | None = None) -> dict[str, str]:
        fid = name or secrets.token_hex(8)
        sig = secrets.token_urlsafe(32)
        with self.lock:
            self.flows[fid] = {"sig": sig, "script": [], "deliveries": [], "release": threading.Event()}
        url = (f"{base_url.rstrip('/')}/workflows/{fid}/triggers/manual/paths/invoke?api-version=2016-06-01"
               f"&sp={quote('/triggers/manual/run', safe='')}&sv=1.0&sig={sig}")
        return {"id": fid, "callbackUrl": url}

    def script(self, fid: str, answers: list[Any]) -> None:
        with self.lock:
            self.flows[fid]["script"] = list(answers)
            self.flows[fid]["release"].clear()

    def release(self, fid: str) -> None:
        self.flows[fid]["release"].set()

    def deliveries(self, fid: str) -> list[dict[str, Any]]:
        with self.lock:
            return [dict(d) for d in self.flows[fid]["deliveries"]]

    # -- WSGI -----------------------------------------------------------------------------------------------
    def __call__(self, environ, start_response):
        request = Request(environ)
        try:
            endpoint, args = self.url_map.bind_to_environ(environ).match()
            resp = getattr(self, "h_" + endpoint)(request, **args)
        except NotFound:
            resp = _error("WorkflowNotFound")
        except HTTPException as exc:  # pragma: no cover
            return exc(environ, start_response)
        return resp(environ, start_response)

    def h_invoke(self, request: Request, fid: str) -> Response:
        with self.lock:
            flow = self.flows.get(fid)
            if flow is None:
                return _error("WorkflowNotFound")
            if not hmac.compare_digest(request.args.get("sig", ""), flow["sig"]):
                return _error("DirectApiInvalidAuthorizationSignature")
            answer = flow["script"].pop(0) if flow["script"] else 202
            try:
                body = json.loads(request.get_data() or b"null")
            except ValueError:
                body = None
            record = {"body": body, "webhookId": request.headers.get("webhook-id"), "answer": answer,
                      "at": time.time()}
            flow["deliveries"].append(record)
            released = flow["release"]
        if self.on_delivery is not None:
            self.on_delivery(fid, record)
        if answer == "hang":
            released.wait(HANG_LIMIT_SECONDS)
            return Response(status=504)
        if isinstance(answer, str):
            return _error(answer)
        if isinstance(answer, dict):
            return Response(status=int(answer.get("status", 302)), headers={"Location": answer.get("location", "/")})
        return Response(status=int(answer))

    def h_create(self, request: Request) -> Response:
        body = request.get_json(silent=True) or {}
        return _json(self.create_flow(request.host_url, body.get("name")), 201)

    def h_show(self, request: Request, fid: str) -> Response:
        if fid not in self.flows:
            raise NotFound()
        return _json({"id": fid, "deliveries": self.deliveries(fid)})

    def h_set_script(self, request: Request, fid: str) -> Response:
        if fid not in self.flows:
            raise NotFound()
        self.script(fid, (request.get_json(silent=True) or {}).get("answers") or [])
        return _json({"ok": True})

    def h_do_release(self, request: Request, fid: str) -> Response:
        if fid not in self.flows:
            raise NotFound()
        self.release(fid)
        return _json({"ok": True})


def _json(payload: Any, status: int = 200) -> Response:
    return Response(json.dumps(payload), status=status, mimetype="application/json")


def _error(code: str) -> Response:
    status, message = ERRORS.get(code, (400, code))
    return _json({"error": {"code": code, "message": message}}, status)
