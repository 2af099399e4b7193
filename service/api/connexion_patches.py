"""Every change the service makes to Connexion's internals, in this one module, for speed, and checked at start.

Connexion 3.3 repeats work on every request that depends on nothing in the request; the service does it once:

* ``operation-built-once`` - ``FlaskOperation.fn``: Connexion builds a new ``FlaskDecorator`` on every request,
  and the decorator, on every request again, builds the operation's URI parser and decorates the handler
  (parameter and response decorators, each inspecting the handler's signature). Here each operation builds
  them at its first request (inside the operation's context, which the URI parser reads) and reuses them: one
  route is one operation, the parser is stateless once built, the decorated function takes the request.
* ``security-signature-once`` - ``AbstractSecurityHandler._accepts_kwarg``: Connexion inspects the security
  function's signature twice per request; here once per (function, keyword).
* ``buffered-wsgi-bridge`` - the Flask app is served through :class:`service.api.wsgi_bridge.BufferedWSGIBridge`
  instead of a2wsgi: one thread-pool call per request on ``FLASK_THREADS`` threads (a2wsgi: a thread hop per
  body read and per answer chunk, 10 threads), and the request deadline that lets a short write answer its 202
  from the request's own thread.

:func:`install` (``create_app``) applies them when ``CONNEXION_PATCHES`` is true (the default) and the installed
Connexion is the version they were written and tested against (:data:`TESTED_VERSION`, pinned in
requirements.txt). Otherwise the app runs stock Connexion - the class attributes put back if an earlier app
of the process had patched them - and one log line says so. As in sentry-python's integrations, each patch
first checks that what it replaces is there, and is left out, with the reason in that line, when it is not.

Stock Connexion serves every journey too, only slower: without the bridge there is no request deadline in the
WSGI environ, so ``service.api.calls`` runs a short write on the job runner's threads, which answers 202 after
``SYNC_DEADLINE_SECONDS`` the same way; ``FLASK_THREADS`` does not apply (a2wsgi's own pool). The patches of
the classes are per process; the bridge is per app.
"""

from __future__ import annotations

import functools
import logging
import typing as t
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import connexion
from connexion.apps.flask import FlaskOperation
from connexion.decorators import FlaskDecorator
from connexion.security import AbstractSecurityHandler
from connexion.utils import inspect_function_arguments

from service.api.wsgi_bridge import BufferedWSGIBridge

if t.TYPE_CHECKING:
    from service.config import Settings

log = logging.getLogger("service")

#: the Connexion release the patches were written and tested against
TESTED_VERSION = "3.3.0"

#: Connexion's own attributes, put back when the patches are off
_STOCK_OPERATION_FN = FlaskOperation.__dict__.get("fn")
_STOCK_ACCEPTS_KWARG = AbstractSecurityHandler.__dict__.get("_accepts_kwarg")


class NotApplicable(Exception):
    """What a patch replaces is not there (or not what it expects): the patch is left out."""


def installed_version() -> str:
    """The installed Connexion's version: from its ``connexion-<version>.dist-info`` folder next to the package
    (a directory listing: ``importlib.metadata`` scans every distribution on the path, 15-40 ms at start)."""
    site = Path(connexion.__file__).resolve().parent.parent
    for info in site.glob("connexion-*.dist-info"):
        return info.name[len("connexion-"):-len(".dist-info")]
    try:  # another layout (an editable install): ask importlib.metadata
        return version("connexion")
    except PackageNotFoundError:  # pragma: no cover - connexion is a dependency
        return "unknown"


# -- operation-built-once ---------------------------------------------------------------------------------------

class _BuiltOnceFlaskDecorator(FlaskDecorator):
    def __call__(self, function: t.Callable) -> t.Callable:
        built: list = []  # [uri parser, decorated function], filled by the operation's first request

        @functools.wraps(function)
        def wrapper(*args, **kwargs):
            if not built:  # two first requests racing build it twice: same result, harmless
                built[:] = [self.uri_parser, self.decorate(function)]
            parser, decorated = built
            return decorated(self.framework.get_request(uri_parser=parser))

        return wrapper


def _operation_fn(self: FlaskOperation) -> t.Callable:
    fn = self.__dict__.get("_built_fn")
    if fn is None:
        fn = self.__dict__["_built_fn"] = _BuiltOnceFlaskDecorator(
            pythonic_params=self.pythonic_params, jsonifier=self.jsonifier)(self._fn)
    return fn


_BUILT_ONCE_FN = property(_operation_fn)


def _operation_built_once(app: connexion.FlaskApp, settings: Settings) -> None:
    if not isinstance(_STOCK_OPERATION_FN, property):
        raise NotApplicable("FlaskOperation.fn is not a property")
    if not all(hasattr(FlaskDecorator, name) for name in ("uri_parser", "decorate", "framework")):
        raise NotApplicable("FlaskDecorator has no uri_parser, decorate or framework")
    FlaskOperation.fn = _BUILT_ONCE_FN


# -- security-signature-once ------------------------------------------------------------------------------------

@functools.cache
def _accepts_kwarg(func, keyword: str) -> bool:
    """Connexion's ``AbstractSecurityHandler._accepts_kwarg``, answered once per (function, keyword)."""
    arguments, has_kwargs = inspect_function_arguments(func)
    return has_kwargs or keyword in arguments


def _security_signature_once(app: connexion.FlaskApp, settings: Settings) -> None:
    if not isinstance(_STOCK_ACCEPTS_KWARG, staticmethod):
        raise NotApplicable("AbstractSecurityHandler._accepts_kwarg is not a static method")
    AbstractSecurityHandler._accepts_kwarg = staticmethod(_accepts_kwarg)


# -- buffered-wsgi-bridge ---------------------------------------------------------------------------------------

def install_bridge(app: connexion.FlaskApp, settings: Settings) -> None:
    """Serve ``app``'s Flask app through a new :class:`BufferedWSGIBridge` (also for a profiler's fresh threads)."""
    middleware_app = getattr(app, "_middleware_app", None)
    if middleware_app is None or not hasattr(middleware_app, "asgi_app"):
        raise NotApplicable("FlaskApp has no _middleware_app.asgi_app")
    middleware_app.asgi_app = BufferedWSGIBridge(app.app.wsgi_app, workers=settings.flask_threads,
                                                 deadline_seconds=settings.sync_deadline_seconds)


def _stock() -> None:
    FlaskOperation.fn = _STOCK_OPERATION_FN
    AbstractSecurityHandler._accepts_kwarg = _STOCK_ACCEPTS_KWARG


#: name -> apply(app, settings); each raises NotApplicable when what it replaces is not there
PATCHES: dict[str, t.Callable[[connexion.FlaskApp, Settings], None]] = {
    "operation-built-once": _operation_built_once,
    "security-signature-once": _security_signature_once,
    "buffered-wsgi-bridge": install_bridge,
}


def install(app: connexion.FlaskApp, settings: Settings) -> tuple[str, ...]:
    """Apply the patches to ``app`` (and Connexion's classes) when they are on and fit the installed Connexion;
    else stock Connexion. Returns the names applied; anything left out is said in one log line."""
    _stock()
    if not settings.connexion_patches:
        log.info("Connexion patches off (CONNEXION_PATCHES=false): stock Connexion serves the API, more slowly")
        return ()
    installed = installed_version()
    if installed != TESTED_VERSION:
        log.warning("Connexion %s is installed; its patches were written for %s: stock Connexion serves the API, "
                    "more slowly (test the patches with it, then set TESTED_VERSION in "
                    "service/api/connexion_patches.py)", installed, TESTED_VERSION)
        return ()
    applied, left_out = [], []
    for name, apply in PATCHES.items():
        try:
            apply(app, settings)
        except NotApplicable as exc:
            left_out.append(f"{name} ({exc})")
        else:
            applied.append(name)
    if left_out:
        log.warning("Connexion %s: patches left out, stock behaviour instead: %s", installed, "; ".join(left_out))
    return tuple(applied)
