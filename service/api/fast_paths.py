"""Work Connexion 3.3 repeats on every request, done once per operation instead (connexion is pinned).

Connexion's ``FlaskOperation`` builds a new ``FlaskDecorator`` on every request (its ``fn`` property), and the
decorator, on every request again, builds the operation's URI parser and decorates the handler (parameter and
response decorators, each inspecting the handler's signature with ``inspect.signature``). None of it depends on
the request: one route is one operation, the parser is stateless after it is built, and the decorated function
takes the request as its argument. Here each ``FlaskOperation`` builds them once, at its first request (inside
the operation's context, which the URI parser reads), and reuses them. Every API test goes through this path.
"""

from __future__ import annotations

import functools
import typing as t

from connexion.apps.flask import FlaskOperation
from connexion.decorators import FlaskDecorator

from service.api.security import install_security_fast_path


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


def install_fast_paths() -> None:
    """Called by create_app; idempotent."""
    FlaskOperation.fn = property(_operation_fn)
    install_security_fast_path()
