"""Webhook triggers for Piggy and Spoki: the platform's webhooks relayed to Power Automate flows.

    platform --signed POST--> /hooks/inbound/<token> --stored once--> outbox --POST, retried--> flow callback

:class:`Relay` is the entry point (one per process, built by :func:`build_relay`; its background worker runs
deliveries, syncs and maintenance). The pieces: ``subscriptions`` (POST /hooks, DELETE on its Location),
``upstream`` (the platform's webhooks, reference-counted and reconciled), ``inbound`` (verify, dedupe, store,
fan out), ``delivery`` (the outbox and its retry schedule), ``worker`` (the thread), ``callbacks`` (the safe
HTTP client), ``keys`` (sealing and derived tokens), ``model`` (the tables). Everything is provider-independent:
the platform comes in as a :class:`~service.providers.webhooks.WebhookFormat` and a
:class:`~service.providers.webhooks.ManagerSource`.

Hosted mode plugs in at three seams: every row carries ``scope`` (single mode: :data:`SINGLE_SCOPE`; hosted: the
tenant's keyed hash, chosen by the HTTP layer per call); :class:`~service.providers.webhooks.ManagerSource` gives
the platform account of a scope (hosted: built from the tenant's stored, encrypted credentials - the reconciler
and the syncs need them when no request brings them); :class:`~service.actions.webhooks.keys.SecretBox` seals
and derives tokens (hosted: a key ring with rotation).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy.engine import Engine

from service.actions.webhooks import inbound, subscriptions, upstream
from service.actions.webhooks.callbacks import LOOPBACK_HOSTS, CallbackClient, callback_session
from service.actions.webhooks.deps import RelayDeps, RelaySettings, SingleAccount, policy
from service.actions.webhooks.keys import KeyBox
from service.actions.webhooks.model import SINGLE_SCOPE
from service.actions.webhooks.subscriptions import Subscription
from service.actions.webhooks.worker import RelayWorker
from service.providers.webhooks import EventType, WebhookManager

log = logging.getLogger(__name__)

__all__ = ["SINGLE_SCOPE", "Relay", "RelayDeps", "RelaySettings", "Subscription", "build_hosted_relay", "build_relay",
           "relay_settings"]


class Relay:
    def __init__(self, deps: RelayDeps) -> None:
        self.deps = deps
        self.worker = RelayWorker(deps)

    def start(self) -> Relay:
        self.worker.start()
        return self

    def close(self) -> None:
        self.worker.stop()

    # -- the connector's operations ------------------------------------------------------------------------
    def events(self) -> list[dict[str, Any]]:
        """The platform's events (the ListPlatformEvents dropdown)."""
        out = []
        for e in self.deps.format.events:
            item = {"name": e.name, "label": e.label, "description": e.description}
            if e.filter:
                item["filter"] = e.filter
            out.append(item)
        return out

    def event_schema(self, name: str) -> dict[str, Any]:
        """The JSON schema of what a flow receives for event ``name`` (the trigger's outputs)."""
        etype: EventType = subscriptions.event_type(self.deps, name)
        return outputs_schema(self.deps.platform, etype)

    def subscribe(self, *, scope: str, caller: str | None, event: Any, callback_url: Any, filter_: Any,
                  inbound_base: str) -> tuple[Subscription, bool]:
        return subscriptions.subscribe(self.deps, scope=scope, caller=caller, event=event, callback_url=callback_url,
                                       filter_=filter_, inbound_base=inbound_base)

    def unsubscribe(self, sub_id: str, token: str | None, *, scope: str | None) -> bool:
        """``scope`` None: any scope (the token alone proves the caller holds the subscription's Location)."""
        return subscriptions.unsubscribe(self.deps, sub_id, token, scope=scope)

    def receive(self, route_token: str, headers: Mapping[str, str], raw: bytes) -> inbound.Received:
        received = inbound.receive(self.deps, route_token, headers, raw)
        if received.deliveries:
            self.worker.start().wake()
        return received

    # -- maintenance ---------------------------------------------------------------------------------------
    def reconcile(self) -> dict[str, int]:
        """Check every upstream webhook against the platform now (the command; the worker does it daily)."""
        upstream.mark_reconcile_due(self.deps, everything=True)
        done = failed = 0
        for up_id in upstream.claim_due(self.deps, 10_000):
            try:
                upstream.sync(self.deps, up_id, reconcile=True, wait_seconds=self.deps.settings.sync_lease_seconds)
                done += 1
            except Exception as exc:  # noqa: BLE001 - reported, retried by the worker
                log.warning("reconcile of %s failed: %s", up_id, type(exc).__name__)
                failed += 1
        return {"reconciled": done, "failed": failed}


def outputs_schema(platform: str, etype: EventType) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "eventId": {"type": "string", "x-ms-summary": "Event ID",
                        "description": "Identifies the event; a repeat delivery carries the same id."},
            "event": {"type": "string", "x-ms-summary": "Event", "description": f"The {platform} event name."},
            "platform": {"type": "string", "x-ms-summary": "Platform", "description": "piggy or spoki."},
            "occurredAt": {"type": "string", "format": "date-time", "x-ms-summary": "Occurred at",
                           "description": "When it happened (when it reached the service, if the platform does "
                                          "not say)."},
            "data": {"type": "object", "x-ms-summary": "Data", "description": etype.description,
                     "properties": dict(etype.data)},
        },
    }


def relay_settings(settings: Any) -> RelaySettings:
    """The relay's settings from the service's (service.config.Settings)."""
    hosts = tuple(settings.callback_allowed_hosts)
    if settings.sandbox:
        hosts += tuple(h for h in LOOPBACK_HOSTS if h not in hosts)
    public = settings.webhook_public_url or (f"https://{settings.public_host}" if settings.public_host and
                                            "://" not in settings.public_host else settings.public_host) or None
    return RelaySettings(retry_schedule=tuple(settings.webhook_retry_schedule), allowed_hosts=hosts,
                         callback_timeout=settings.webhook_callback_timeout, public_url=public)


def build_hosted_relay(settings: Any, engine: Engine, platform: str, managers: Any) -> Relay:
    """Hosted mode's relay of ``platform``: every tenant's subscriptions (``scope`` = the tenant), their platform
    accounts from ``managers`` (a ManagerSource over the tenants' stored credentials)."""
    from service.providers.factory import webhook_format

    rs = relay_settings(settings)
    deps = RelayDeps(
        engine=engine, settings=rs, format=webhook_format(settings, platform), managers=managers,
        box=KeyBox(settings.ledger_hash_key.encode()),
        callbacks=CallbackClient(callback_session(), policy(rs), connect_timeout=rs.connect_timeout,
                                 read_timeout=rs.callback_timeout))
    return Relay(deps)


def build_relay(settings: Any, engine: Engine, manager: Callable[[], WebhookManager]) -> Relay:
    """Single mode's relay: the configured platform, its one account (``manager`` builds its management API on
    first use), the ledger's database and key."""
    from service.providers.factory import webhook_format

    rs = relay_settings(settings)
    deps = RelayDeps(
        engine=engine, settings=rs, format=webhook_format(settings),
        managers=SingleAccount(SINGLE_SCOPE, manager), box=KeyBox(settings.ledger_hash_key.encode()),
        callbacks=CallbackClient(callback_session(), policy(rs), connect_timeout=rs.connect_timeout,
                                 read_timeout=rs.callback_timeout))
    return Relay(deps)
