"""A simulator of the Microsoft Entra ID endpoints the service uses, as a WSGI app (serve it over HTTPS).

What it models (``/work/shared/reference/microsoft-identity-dataverse.md`` §2-§3):

- OpenID discovery per tenant: ``/{tid}/v2.0/.well-known/openid-configuration`` (issuer
  ``https://<host>/{tid}/v2.0``, what msal reads) and ``/{tid}/.well-known/openid-configuration`` (v1).
- JWKS: ``/{tid}/discovery/v2.0/keys`` and ``/{tid}/discovery/keys``; RS256 keys by ``kid``, with key rotation
  (:meth:`EntraSimulator.rotate_keys`: a new current key, the previous ones stay published until retired).
- Token endpoint ``POST /{tid}/oauth2/v2.0/token`` (form): client authentication by ``client_secret`` or by a
  certificate ``client_assertion`` (PS256/RS256 JWT, ``aud`` = the token endpoint); grants
  ``client_credentials`` (scope ``<resource>/.default`` -> an app-only token for that resource, with the app
  roles granted to the app) and on-behalf-of (``urn:ietf:params:oauth:grant-type:jwt-bearer`` +
  ``requested_token_use=on_behalf_of``: the assertion must be a user token issued by this simulator to the
  calling app - ``aud`` its client id or app id URI - and the app needs consent for the downstream resource,
  else AADSTS65001). Errors have Entra's body: ``{error, error_description: "AADSTSnnnn: ...", error_codes}``.
- Access tokens as Entra issues them: RS256, header ``kid``/``x5t``; v1 claims (``iss``
  ``https://sts.windows.net/{tid}/``, ``appid``, ``unique_name``) or v2 (``iss`` ``.../{tid}/v2.0``, ``azp``,
  ``preferred_username``); ``scp`` (space-separated, user tokens) or ``roles`` (list); ``oid``, ``tid``.

Control endpoints (sandbox and tests): ``GET /__sim__/stats`` (token requests by grant type, JWKS and discovery
fetches), ``POST /__sim__/rotate`` (``{"retire": true}`` also drops the old keys), ``POST /__sim__/reset``, and
``POST /__sim__/token`` (``{"scope"?, "roles"?, "audience"?, "version"?, "expiresIn"?}``): a user token for the
sandbox maker, as the connector would get it after sign-in (``python -m service.sandbox.entra token``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import jwt
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm
from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from service.sandbox.entra import demo

GRANT_CLIENT_CREDENTIALS = "client_credentials"
GRANT_JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
TOKEN_LIFETIME = 3600


class EntraError(Exception):
    """An error answer of the token endpoint (``error`` + ``AADSTSnnnn: ...`` description)."""

    def __init__(self, status: int, error: str, code: int, message: str, suberror: str | None = None) -> None:
        super().__init__(message)
        self.status, self.error, self.code, self.message, self.suberror = status, error, code, message, suberror

    def body(self) -> dict[str, Any]:
        doc = {"error": self.error, "error_description": f"AADSTS{self.code}: {self.message}",
               "error_codes": [self.code], "timestamp": time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime()),
               "trace_id": str(uuid.uuid4()), "correlation_id": str(uuid.uuid4())}
        if self.suberror:
            doc["suberror"] = self.suberror
        return doc


@dataclass
class AppRegistration:
    client_id: str
    #: accepted client secrets
    secrets: set[str] = field(default_factory=set)
    #: uploaded certificates (PEM) for client assertions
    certificates: list[str] = field(default_factory=list)
    app_id_uri: str | None = None
    service_principal_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    #: app roles granted to this app, by resource (app id URI or URL): what its app-only tokens carry
    app_roles: dict[str, list[str]] = field(default_factory=dict)
    #: resources whose delegated permissions are consented (on-behalf-of needs it)
    consented: set[str] = field(default_factory=set)

    def audiences(self) -> set[str]:
        return {self.client_id} | ({self.app_id_uri} if self.app_id_uri else set())


@dataclass
class _SigningKey:
    kid: str
    private_key: rsa.RSAPrivateKey

    def jwk(self) -> dict[str, Any]:
        doc = RSAAlgorithm.to_jwk(self.private_key.public_key(), as_dict=True)
        doc.update({"kid": self.kid, "use": "sig", "x5t": self.kid})
        return doc


def _resource_of(scope: str) -> str:
    """``https://org.crm.dynamics.com/.default`` -> ``https://org.crm.dynamics.com``."""
    return scope.rsplit("/", 1)[0] if "/" in scope else scope


class EntraSimulator:
    """WSGI app. Thread-safe; ``stats()`` counts what was asked (nothing secret is kept)."""

    def __init__(self, *, tenants: tuple[str, ...] = (demo.TENANT_ID, demo.OTHER_TENANT_ID),
                 token_lifetime: int = TOKEN_LIFETIME, consented_resources: tuple[str, ...] = ()) -> None:
        self.tenants = set(tenants)
        self.token_lifetime = token_lifetime
        #: downstream resources (e.g. the Dataverse simulator's URL) the service app may call on behalf of users
        self.consented_resources = set(consented_resources)
        self.lock = threading.RLock()
        self.apps: dict[str, AppRegistration] = {}
        self.users: dict[str, dict[str, str]] = {}
        self.reset()
        self.url_map = Map([
            Rule("/<tid>/v2.0/.well-known/openid-configuration", methods=["GET"], endpoint="discovery_v2"),
            Rule("/<tid>/.well-known/openid-configuration", methods=["GET"], endpoint="discovery_v1"),
            Rule("/<tid>/discovery/v2.0/keys", methods=["GET"], endpoint="keys"),
            Rule("/<tid>/discovery/keys", methods=["GET"], endpoint="keys"),
            Rule("/<tid>/oauth2/v2.0/token", methods=["POST"], endpoint="token"),
            Rule("/<tid>/oauth2/token", methods=["POST"], endpoint="token"),
            Rule("/__sim__/stats", methods=["GET"], endpoint="sim_stats"),
            Rule("/__sim__/rotate", methods=["POST"], endpoint="sim_rotate"),
            Rule("/__sim__/reset", methods=["POST"], endpoint="sim_reset"),
            Rule("/__sim__/token", methods=["POST"], endpoint="sim_token"),
        ])

    # -- state ------------------------------------------------------------------------------------------
    def reset(self) -> None:
        """The sandbox directory (service app, connector client, one user), one fresh key, zero counters."""
        with self.lock:
            self._keys = [self._new_key()]
            self.apps = {}
            self.register_app(AppRegistration(
                client_id=demo.API_CLIENT_ID, secrets={demo.API_CLIENT_SECRET}, app_id_uri=demo.API_APP_ID_URI,
                service_principal_id=demo.API_SERVICE_PRINCIPAL_ID, consented=set(self.consented_resources)))
            self.register_app(AppRegistration(client_id=demo.CONNECTOR_CLIENT_ID))
            self.users = {demo.USER_OBJECT_ID: {"name": demo.USER_NAME, "upn": demo.USER_PRINCIPAL_NAME,
                                                "tenant": demo.TENANT_ID}}
            self.counters: Counter[str] = Counter()

    def consent(self, resource: str) -> None:
        """Admin consent for the service app's delegated permission on ``resource`` (kept across resets)."""
        with self.lock:
            self.consented_resources.add(resource)
            if demo.API_CLIENT_ID in self.apps:
                self.apps[demo.API_CLIENT_ID].consented.add(resource)

    def register_app(self, app: AppRegistration) -> AppRegistration:
        with self.lock:
            self.apps[app.client_id] = app
        return app

    def app(self, client_id: str) -> AppRegistration:
        with self.lock:
            return self.apps[client_id]

    def stats(self) -> dict[str, Any]:
        with self.lock:
            return {"counters": dict(self.counters), "kids": [k.kid for k in self._keys],
                    "tokenRequests": sum(v for k, v in self.counters.items() if k.startswith("token:"))}

    def token_requests(self, grant: str | None = None) -> int:
        """How many token requests arrived (of ``grant``: ``client_credentials`` or ``obo``)."""
        with self.lock:
            if grant is None:
                return sum(v for k, v in self.counters.items() if k.startswith("token:"))
            return self.counters[f"token:{grant}"]

    # -- keys -------------------------------------------------------------------------------------------
    @staticmethod
    def _new_key() -> _SigningKey:
        return _SigningKey(kid=uuid.uuid4().hex[:16], private_key=rsa.generate_private_key(65537, 2048))

    @property
    def current_kid(self) -> str:
        with self.lock:
            return self._keys[-1].kid

    def rotate_keys(self, *, retire: bool = False) -> str:
        """Publish a new signing key and sign with it from now on; ``retire`` drops every older key."""
        key = self._new_key()
        with self.lock:
            self._keys = [key] if retire else [*self._keys, key]
        return key.kid

    def jwks(self) -> dict[str, Any]:
        with self.lock:
            return {"keys": [k.jwk() for k in self._keys]}

    def _key(self, kid: str | None) -> _SigningKey | None:
        with self.lock:
            for k in self._keys:
                if k.kid == kid:
                    return k
        return None

    # -- tokens -----------------------------------------------------------------------------------------
    def issue_token(self, *, audience: str, tenant_id: str = demo.TENANT_ID, object_id: str = demo.USER_OBJECT_ID,
                    scopes: str | None = None, roles: list[str] | None = None, app_id: str = demo.CONNECTOR_CLIENT_ID,
                    version: int = 1, expires_in: int | None = None, not_before: int | None = None,
                    issuer: str | None = None, kid: str | None = None, extra: dict[str, Any] | None = None,
                    user: bool = True) -> str:
        """An access token signed with the current key (or ``kid``'s). ``user=False`` makes an app-only token
        (no name or upn; ``idtyp: app``). Tests use the keyword arguments to forge every wrong kind of token."""
        now = int(time.time())
        lifetime = self.token_lifetime if expires_in is None else expires_in
        claims: dict[str, Any] = {
            "aud": audience, "tid": tenant_id, "oid": object_id, "sub": hashlib.sha256(
                f"{object_id}:{app_id}".encode()).hexdigest()[:43],
            "iat": now, "nbf": now if not_before is None else not_before, "exp": now + lifetime,
            "uti": uuid.uuid4().hex[:22], "ver": "1.0" if version == 1 else "2.0",
        }
        if version == 1:
            claims.update({"iss": f"https://sts.windows.net/{tenant_id}/", "appid": app_id, "appidacr": "1"})
        else:
            claims.update({"iss": f"https://login.microsoftonline.com/{tenant_id}/v2.0", "azp": app_id,
                           "azpacr": "1"})
        if issuer is not None:
            claims["iss"] = issuer
        if user:
            person = self.users.get(object_id, {"name": "Unknown user", "upn": f"{object_id}@sandbox.invalid"})
            claims["name"] = person["name"]
            claims["upn" if version == 1 else "preferred_username"] = person["upn"]
            if version == 1:
                claims["unique_name"] = person["upn"]
            claims["idtyp"] = "user"
        else:
            claims["idtyp"] = "app"
        if scopes is not None:
            claims["scp"] = scopes
        if roles is not None:
            claims["roles"] = list(roles)
        claims.update(extra or {})
        key = self._key(kid) if kid else None
        with self.lock:
            key = key or self._keys[-1]
        return jwt.encode(claims, key.private_key, algorithm="RS256", headers={"kid": key.kid, "x5t": key.kid})

    def user_token(self, *, scope: str = demo.API_SCOPE, audience: str = demo.API_APP_ID_URI,
                   **kwargs: Any) -> str:
        """The token the connector sends after the sandbox maker signed in (delegated scope on our API)."""
        return self.issue_token(audience=audience, scopes=scope, **kwargs)

    def verify(self, token: str, *, audience: str | set[str] | None = None) -> dict[str, Any]:
        """Claims of a token this simulator issued (any published key); raises ``jwt.InvalidTokenError``."""
        header = jwt.get_unverified_header(token)
        key = self._key(header.get("kid"))
        if key is None or header.get("alg") != "RS256":
            raise jwt.InvalidSignatureError("unknown signing key")
        audiences = [audience] if isinstance(audience, str) else (sorted(audience) if audience else None)
        return jwt.decode(token, key.private_key.public_key(), algorithms=["RS256"], audience=audiences,
                          options={"verify_aud": audiences is not None, "require": ["exp", "tid", "oid"]})

    # -- WSGI -------------------------------------------------------------------------------------------
    def __call__(self, environ, start_response):
        request = Request(environ)
        try:
            try:
                endpoint, args = self.url_map.bind_to_environ(environ).match()
            except NotFound:
                raise EntraError(404, "not_found", 90002, "The requested path does not exist.") from None
            except MethodNotAllowed:
                raise EntraError(405, "invalid_request", 900561, "The endpoint only accepts POST requests.") \
                    from None
            tid = args.get("tid")
            if tid is not None and tid not in self.tenants and tid not in ("common", "organizations"):
                raise EntraError(400, "invalid_tenant", 90002, f"Tenant '{tid}' not found. Check to make sure "
                                 "you have the correct tenant ID and are signing into the correct cloud.")
            resp = getattr(self, "h_" + endpoint)(request, **args)
        except EntraError as exc:
            resp = self._json(exc.body(), exc.status)
        return resp(environ, start_response)

    @staticmethod
    def _json(payload: Any, status: int = 200) -> Response:
        resp = Response(json.dumps(payload), status=status, mimetype="application/json")
        resp.headers["Cache-Control"] = "no-store, no-cache"
        return resp

    def _count(self, key: str) -> None:
        with self.lock:
            self.counters[key] += 1

    def h_discovery_v2(self, request: Request, tid: str) -> Response:
        self._count("discovery")
        base = request.host_url.rstrip("/") + f"/{tid}"
        return self._json({
            "issuer": f"{base}/v2.0", "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
            "token_endpoint": f"{base}/oauth2/v2.0/token", "jwks_uri": f"{base}/discovery/v2.0/keys",
            "id_token_signing_alg_values_supported": ["RS256"], "response_types_supported": ["code", "id_token"],
            "subject_types_supported": ["pairwise"], "tenant_region_scope": "EU",
        })

    def h_discovery_v1(self, request: Request, tid: str) -> Response:
        self._count("discovery")
        base = request.host_url.rstrip("/") + f"/{tid}"
        return self._json({
            "issuer": f"https://sts.windows.net/{tid}/", "authorization_endpoint": f"{base}/oauth2/authorize",
            "token_endpoint": f"{base}/oauth2/token", "jwks_uri": f"{base}/discovery/keys",
            "id_token_signing_alg_values_supported": ["RS256"],
        })

    def h_keys(self, request: Request, tid: str) -> Response:
        self._count("jwks")
        return self._json(self.jwks())

    # token endpoint ------------------------------------------------------------------------------------
    def h_token(self, request: Request, tid: str) -> Response:
        form = dict(parse_qsl(request.get_data(as_text=True), keep_blank_values=True))
        grant = form.get("grant_type", "")
        kind = "obo" if grant == GRANT_JWT_BEARER else grant or "none"
        self._count(f"token:{kind}")
        app = self._client(request, form)
        scopes = form.get("scope", "").split()
        resource_scopes = [s for s in scopes if s not in ("openid", "profile", "offline_access")]
        if not resource_scopes:
            raise EntraError(400, "invalid_scope", 70011, "The provided value for the input parameter 'scope' "
                             "is not valid.")
        resource = _resource_of(resource_scopes[0])
        if grant == GRANT_CLIENT_CREDENTIALS:
            if not all(s.endswith("/.default") for s in resource_scopes):
                raise EntraError(400, "invalid_scope", 1002012, "The provided value for scope is not valid. "
                                 "Client credential flows must have a scope value with /.default suffixed to the "
                                 "resource identifier (application ID URI).")
            roles = app.app_roles.get(resource)
            token = self.issue_token(audience=resource, tenant_id=tid, object_id=app.service_principal_id,
                                     app_id=app.client_id, roles=roles, user=False)
            return self._token_answer(token, None)
        if grant == GRANT_JWT_BEARER and form.get("requested_token_use") == "on_behalf_of":
            claims = self._assertion(form.get("assertion", ""), app, tid)
            if resource not in app.consented:
                raise EntraError(400, "invalid_grant", 65001, f"The user or administrator has not consented to "
                                 f"use the application with ID '{app.client_id}'. Send an interactive "
                                 "authorization request for this user and resource.", suberror="consent_required")
            scp = " ".join(s.rsplit("/", 1)[-1] for s in resource_scopes if not s.endswith("/.default")) \
                or "user_impersonation"
            token = self.issue_token(audience=resource, tenant_id=tid, object_id=claims["oid"],
                                     app_id=app.client_id, scopes=scp)
            return self._token_answer(token, " ".join(scopes))
        raise EntraError(400, "unsupported_grant_type", 70003, f"The app requested an unsupported grant type "
                         f"'{grant}'.")

    def _token_answer(self, token: str, scope: str | None) -> Response:
        lifetime = self.token_lifetime
        body = {"token_type": "Bearer", "expires_in": lifetime, "ext_expires_in": lifetime, "access_token": token}
        if scope:
            body["scope"] = scope
        return self._json(body)

    def _client(self, request: Request, form: dict[str, str]) -> AppRegistration:
        client_id = form.get("client_id", "")
        with self.lock:
            app = self.apps.get(client_id)
        if app is None:
            raise EntraError(400, "unauthorized_client", 700016, f"Application with identifier '{client_id}' "
                             "was not found in the directory.")
        secret = form.get("client_secret")
        if secret is not None:
            if not any(hmac.compare_digest(secret.encode(), s.encode()) for s in app.secrets):
                raise EntraError(401, "invalid_client", 7000215, "Invalid client secret provided. Ensure the "
                                 "secret being sent in the request is the client secret value, not the client "
                                 "secret ID.")
            return app
        if form.get("client_assertion_type") == CLIENT_ASSERTION_TYPE and form.get("client_assertion"):
            self._check_client_assertion(form["client_assertion"], app, request.base_url)
            return app
        raise EntraError(401, "invalid_client", 7000218, "The request body must contain the following parameter: "
                         "'client_assertion' or 'client_secret'.")

    @staticmethod
    def _check_client_assertion(assertion: str, app: AppRegistration, token_endpoint: str) -> None:
        for pem in app.certificates:
            public_key = x509.load_pem_x509_certificate(pem.encode()).public_key()
            try:
                claims = jwt.decode(assertion, public_key, algorithms=["PS256", "RS256"], audience=token_endpoint,
                                    options={"require": ["exp", "iss", "sub", "aud"]})
            except jwt.InvalidTokenError:
                continue
            if claims["iss"] == claims["sub"] == app.client_id:
                return
        raise EntraError(401, "invalid_client", 700027, "Client assertion failed signature validation.")

    def _assertion(self, assertion: str, app: AppRegistration, tid: str) -> dict[str, Any]:
        try:
            claims = self.verify(assertion)
        except jwt.ExpiredSignatureError:
            raise EntraError(400, "invalid_grant", 500133, "Assertion is not within its valid time range.") \
                from None
        except jwt.InvalidTokenError:
            raise EntraError(400, "invalid_grant", 50013, "Assertion failed signature validation.") from None
        if claims.get("aud") not in app.audiences():
            raise EntraError(400, "invalid_grant", 50013, "Assertion audience does not match the Client app "
                             "presenting the assertion. The audience in the assertion was "
                             f"'{claims.get('aud')}' and the expected audience is '{app.client_id}'.")
        if claims.get("tid") != tid:
            raise EntraError(400, "invalid_grant", 50013, "Assertion is not valid for this tenant.")
        if "scp" not in claims:
            raise EntraError(400, "invalid_grant", 50027, "Invalid JWT token. On-behalf-of needs a user token; "
                             "an app-only token was given.")
        return claims

    # control ------------------------------------------------------------------------------------------
    def h_sim_stats(self, request: Request) -> Response:
        return self._json(self.stats())

    def h_sim_rotate(self, request: Request) -> Response:
        body = request.get_json(silent=True) or {}
        kid = self.rotate_keys(retire=bool(body.get("retire")))
        return self._json({"kid": kid, "kids": self.stats()["kids"]})

    def h_sim_reset(self, request: Request) -> Response:
        self.reset()
        return self._json({"reset": True})

    def h_sim_token(self, request: Request) -> Response:
        body = request.get_json(silent=True) or {}
        try:
            kwargs: dict[str, Any] = {
                "scope": str(body.get("scope", demo.API_SCOPE)),
                "audience": str(body.get("audience", demo.API_APP_ID_URI)),
                "version": int(body.get("version", 1)),
            }
            if body.get("expiresIn") is not None:
                kwargs["expires_in"] = int(body["expiresIn"])
        except (TypeError, ValueError):
            return self._json({"error": "invalid_request", "error_description": "bad token request"}, 400)
        if body.get("roles"):
            token = self.issue_token(audience=kwargs["audience"], roles=list(body["roles"]), user=False,
                                     object_id=demo.API_SERVICE_PRINCIPAL_ID, app_id=demo.CONNECTOR_CLIENT_ID,
                                     version=kwargs["version"])
        else:
            token = self.user_token(**kwargs)
        return self._json({"token_type": "Bearer", "access_token": token, "expires_in": self.token_lifetime})
