"""App factory: ``create_app(settings=None) -> connexion.FlaskApp``. No work happens at import time."""

from __future__ import annotations

import contextlib
import copy
import functools
import logging
from pathlib import Path

import connexion
from connexion.middleware import MiddlewarePosition
from connexion.options import SwaggerUIOptions

from service import __version__, metrics, telemetry
from service.api import connexion_patches, errors, fairness
from service.api.capability import require_capability
from service.api.jsonbody import ServiceJsonifier
from service.api.middleware import RequestContextMiddleware, ServedSpecMiddleware
from service.api.resolver import ControllerResolver
from service.api.hooks import start_relay
from service.api.validation import validator_map
from service.boot import settings_or_exit
from service.config import SANDBOX_API_KEY, Settings
from service.logs import configure_logging
from service.providers.factory import check_platform_settings
from service.runtime import Runtime

ROOT = Path(__file__).resolve().parent.parent
SPEC = "openapi.yaml"

log = logging.getLogger("service")


@functools.cache
def _parsed_spec() -> dict:
    """openapi.yaml parsed once per process with libyaml (Connexion parses the file with pure-Python yaml on
    every add_api: ~0.2 s per create_app)."""
    import yaml

    with open(ROOT / SPEC, "rb") as fh:
        return yaml.load(fh, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # noqa: S506 - a safe loader


def spec_document() -> dict:
    """A private copy of the parsed spec for one app (Connexion resolves references in place)."""
    return copy.deepcopy(_parsed_spec())


def create_app(settings: Settings | None = None) -> connexion.FlaskApp:
    """The app for ``settings``; without them, from the environment (and ``.env``), where a bad setting
    stops the process with one line naming it (exit status 2)."""
    if settings is None:
        settings = settings_or_exit()
    else:
        check_platform_settings(settings)  # fail fast on a bad platform variable (no network): ConfigError
    configure_logging(settings.log_level)
    metrics.use_process_files()  # a gunicorn worker: its own files in PROMETHEUS_MULTIPROC_DIR
    # traces: set up here, in the worker after gunicorn's fork (never in the master); off without an endpoint
    tracing = telemetry.configure(settings.otel_exporter_otlp_endpoint, service_name=settings.otel_service_name,
                                  version=__version__)
    runtime = Runtime(settings)

    @contextlib.asynccontextmanager
    async def lifespan(_app):
        yield
        runtime.close()
        if tracing:
            telemetry.shutdown()

    app = connexion.FlaskApp(__name__, specification_dir=ROOT, lifespan=lifespan, jsonifier=ServiceJsonifier())
    app.add_api(
        spec_document(),
        resolver=ControllerResolver(),
        strict_validation=True,
        validate_responses=settings.validate_responses,
        validator_map=validator_map(),
        swagger_ui_options=SwaggerUIOptions(swagger_ui=True, swagger_ui_path="/ui", spec_path="/swagger.json"),
    )
    errors.register(app)
    app.add_middleware(RequestContextMiddleware, position=MiddlewarePosition.BEFORE_EXCEPTION,
                       runtime=runtime, max_body_bytes=settings.max_body_bytes)
    app.add_middleware(ServedSpecMiddleware, position=MiddlewarePosition.BEFORE_SWAGGER)

    flask_app = app.app
    flask_app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    flask_app.before_request(require_capability)
    flask_app.before_request(start_relay)
    if settings.hosted:
        fairness.register(flask_app)  # per-tenant budgets and the refused-credentials throttle
    # Connexion's per-request work done once, and our WSGI bridge: checked against the installed Connexion
    patches = connexion_patches.install(app, settings)
    app.runtime = runtime  # for tests and tooling

    log.info("service configured", extra={
        "version": __version__, "provider": "hosted" if settings.hosted else settings.provider,
        "tenancy": settings.tenancy, "mode": settings.mode, "flaskThreads": settings.flask_threads, "connexionPatches": list(patches),
        "entraIdAndDataverse": settings.microsoft.mode(settings.sandbox),
    })
    if settings.hosted:
        log.warning("HOSTED MODE (%s): each call names its platform account in X-Platform, X-Platform-Key and "
                    "X-Platform-Secret%s.", settings.mode, "; the simulators' demo accounts answer (GET /sandbox)"
                    if settings.sandbox else "")
        if not settings.api_keys:
            log.warning("API_KEYS is empty: hosted mode is open to any caller that brings a platform account.")
    elif settings.sandbox:
        log.warning("SANDBOX MODE: no %s credentials are set; actions run against the in-repo simulator. "
                    "Nothing reaches a real marketing platform.", settings.provider)
        if not settings.api_keys:
            log.warning("API_KEYS is empty: sandbox mode accepts the API key %r. Set API_KEYS to change it.",
                        SANDBOX_API_KEY)
    return app
