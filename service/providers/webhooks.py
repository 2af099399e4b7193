"""The webhook interface of a platform: what the relay (service.actions.webhooks) needs from Piggy or Spoki.

Two halves, so that the credential-free half can run where no account is at hand:

* :class:`WebhookFormat` - the platform's event catalogue, how it signs a webhook (checked on the raw bytes,
  before anything is parsed) and how its payload reads. No credentials, no network.
* :class:`WebhookManager` - the platform's webhook-management API (list, create, update, delete), bound to one
  account's credentials. The relay asks a :class:`ManagerSource` for the manager of an account scope, so
  that hosted mode can build one from that tenant's (encrypted, stored) credentials.

Implementations: ``service.providers.piggy.webhooks`` and ``service.providers.spoki.webhooks``. They raise only
the errors of :mod:`service.providers.errors` (management) and :class:`SignatureError` (verification).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol


@dataclass(frozen=True)
class EventType:
    """One event a platform pushes, named as the platform names it (``contact_created``, ``contact.created``)."""

    name: str
    label: str
    description: str
    #: the optional filter a flow may give: ``attributes`` (Piggy contact_updated), ``tag`` (Spoki tag events)
    filter: str | None = None
    #: JSON schema properties of the event's ``data`` (the trigger's typed outputs)
    data: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PlatformHook:
    """A webhook as the platform lists it."""

    id: str
    event: str
    url: str
    active: bool = True
    attributes: tuple[str, ...] = ()
    name: str | None = None


@dataclass(frozen=True)
class CreatedHook:
    id: str
    #: the secret the platform signs this webhook's calls with (Spoki generates it; Piggy takes ours)
    secret: str | None


@dataclass(frozen=True)
class Inbound:
    """A verified webhook, read: the platform's event id (None when it sends none), event name, time, data."""

    event: str
    data: Mapping[str, Any]
    platform_event_id: str | None = None
    occurred_at: datetime | None = None
    #: attribute names the platform says changed (Piggy contact_updated), None when it does not say
    changed: tuple[str, ...] | None = None
    #: the tag of a tag event (name and/or id, lower case), None when it does not say
    tags: tuple[str, ...] | None = None


class SignatureError(Exception):
    """The signature is missing, malformed, stale or wrong. ``reason`` is safe to log (no secret, no body)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class WebhookFormat(Protocol):
    platform: str
    events: tuple[EventType, ...]

    def new_secret(self) -> str | None:
        """A fresh secret to register a webhook with, or None when the platform generates it."""

    def verify(self, headers: Mapping[str, str], raw: bytes, secrets: tuple[str, ...], now: float) -> None:
        """Check the signature of ``raw`` (the body exactly as received) against any of ``secrets``; raises
        SignatureError. ``headers`` is case-insensitive; ``now`` is Unix seconds."""

    def parse(self, raw: bytes, event: str) -> Inbound:
        """Read a verified body (``event``: the webhook's registered event). Raises ValueError when unusable."""

    def dedupe_key(self, inbound: Inbound, raw: bytes) -> str:
        """What identifies the event among the platform's repeats (its event id, else a hash of the body)."""


class WebhookManager(Protocol):
    def list_hooks(self, event: str) -> list[PlatformHook]: ...

    def create_hook(self, event: str, url: str, *, secret: str | None, attributes: tuple[str, ...],
                    name: str) -> CreatedHook: ...

    def update_hook(self, hook_id: str, *, url: str, attributes: tuple[str, ...], active: bool = True) -> None: ...

    def delete_hook(self, hook_id: str) -> None:
        """Remove it; a webhook the platform no longer knows counts as removed."""

    def watchable_attributes(self) -> tuple[str, ...]:
        """Every attribute an ``attributes`` filter may name (the union a flow without a filter watches)."""


class ManagerSource(Protocol):
    """The platform account of a scope: single mode has one; hosted mode builds it from stored credentials."""

    def manager(self, scope: str) -> WebhookManager:
        """The manager for ``scope``; raises service.providers.errors.AuthFailed when it has no credentials."""


def body_digest(*parts: bytes) -> str:
    """sha256 hex of the parts, each length-prefixed (a dedupe key where the platform sends no event id)."""
    h = hashlib.sha256()
    for p in parts:
        h.update(len(p).to_bytes(8, "big"))
        h.update(p)
    return h.hexdigest()


def hmac_hex(secret: str, message: bytes) -> str:
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def matches_any(expected: list[str], presented: str) -> bool:
    """Constant-time comparison of ``presented`` against each expected value (all are compared)."""
    ok = False
    for value in expected:
        ok |= hmac.compare_digest(value.encode(), presented.encode())
    return ok


def prop(kind: str, summary: str, description: str, **extra: Any) -> dict[str, Any]:
    """One property of an event's output schema, titled for the flow designer's dynamic content."""
    return {"type": kind, "x-ms-summary": summary, "description": description, **extra}


def obj(summary: str, description: str, properties: Mapping[str, Any]) -> dict[str, Any]:
    return {"type": "object", "x-ms-summary": summary, "description": description, "properties": dict(properties)}
