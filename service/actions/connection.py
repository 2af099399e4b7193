"""The platform account a call names (kept apart from :mod:`service.actions.deps`, so that the call object
(:class:`service.actions.idempotency.ActionCall`) can carry it without importing what the deps hold)."""

from __future__ import annotations

from dataclasses import dataclass

#: hosted mode: the platforms a connection may name (``X-Platform``) and the connection parameters a maker fills in
PLATFORMS = ("spotler", "piggy", "spoki")
LABELS = {"spotler": "Spotler Mail+", "piggy": "Piggy", "spoki": "Spoki"}
PLATFORM_PARAMETER = "Platform"
#: the connector's hosted connection names them so for every platform (service/connector/definition.py)
KEY_PARAMETER = {"spotler": "Platform key", "piggy": "Platform key", "spoki": "Platform key"}  # X-Platform-Key
SECRET_PARAMETER = {"spotler": "Platform secret"}  # X-Platform-Secret
#: what each parameter holds, in the platform's own words
KEY_MEANING = {"spotler": "the Spotler Mail+ consumer key", "piggy": "the Piggy API token",
               "spoki": "the Spoki API key"}
SECRET_MEANING = {"spotler": "the Spotler Mail+ consumer secret"}


@dataclass(frozen=True, slots=True)
class Connection:
    """The platform account a call names (hosted mode, issue 22: ``X-Platform``, ``X-Platform-Key``,
    ``X-Platform-Secret``). Single mode has none: the service's own account (``None`` wherever a connection
    is asked for)."""

    platform: str
    key: str
    secret: str | None = None

    def __repr__(self) -> str:  # never a credential in a log line or a traceback
        return f"Connection(platform={self.platform!r})"
