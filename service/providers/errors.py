"""The exceptions a provider (a marketing platform's client) may raise: the ``ProviderError`` branch of the one
hierarchy in :mod:`service.errors` (its docstring says what each means and what the service answers)."""

from __future__ import annotations

from service.errors import (
    AmbiguousContact,
    AuthFailed,
    ConfigValueError,
    Forbidden,
    InvalidInput,
    NotFound,
    NotSupported,
    OutcomeUnknown,
    ProviderError,
    RateLimited,
    Rejected,
    TransientError,
    Unavailable,
    UpstreamTimeout,
)

__all__ = [
    "AmbiguousContact", "AuthFailed", "ConfigValueError", "Forbidden", "InvalidInput", "NotFound", "NotSupported", "OutcomeUnknown",
    "ProviderError", "RateLimited", "Rejected", "TransientError", "Unavailable", "UpstreamTimeout",
]
