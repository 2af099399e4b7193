"""The five triggers: contacts added, changed (chosen fields), unsubscribed, bounced; mailing interactions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from service.actions import contacts as contact_actions
from service.actions import fanout
from service.actions.coercion import CODE_UNKNOWN, resolve_field
from service.actions.problems import invalid
from service.actions.triggers.base import Candidate, Context, Trigger, epoch_ms, iso
from service.actions.triggers.mailings import mailing_names
from service.actions.triggers.store import UNKNOWN, Version
from service.providers.base import BounceEvent, ContactEvent, InteractionEvent

MAX_WATCHED_FIELDS = 40


def _contact_item(ctx: Context, c: Candidate) -> dict[str, Any]:
    ev: ContactEvent = c.event
    out: dict[str, Any] = {"eventId": c.digest.hex(), "externalId": ev.external_id}
    if ev.email:
        out["email"] = ev.email
    for key, value in (("created", ev.created), ("lastChanged", ev.last_changed)):
        if value is not None:
            out[key] = iso(value)
    props = ctx.provider.contact_properties(ev)
    out["fields"] = {k: v for k, v in props.items() if v is not None}
    out["permissions"] = [{"name": ctx.permission_name(bit, ev), "value": bit, "enabled": on}
                          for bit, on in sorted(ev.permissions.items(), key=lambda x: _bit_order(x[0]))]
    if ev.subscribed is not None:
        out["subscribed"] = ev.subscribed
    return out


def _bit_order(value: str) -> tuple[int, str]:
    return (int(value), value) if value.isdigit() else (1 << 62, value)


class ContactAdded(Trigger):
    operation = "OnContactAdded"

    def filters(self, params):
        value = params.get("permissions")
        return {"permissions": value.strip()} if isinstance(value, str) and value.strip() else {}

    def resolve(self, ctx, filters):
        if "permissions" not in filters:
            return ()
        options = contact_actions.with_fresh_list(
            ctx.deps.platform, lambda: contact_actions._match_permissions(contact_actions.permissions(ctx.deps.platform),
                                                               filters["permissions"]),
            ("UNKNOWN_PERMISSION",))
        return tuple(o.value for o in options)

    def candidate(self, ctx, ev: ContactEvent):
        t = epoch_ms(ev.created)
        if t is None:
            return None
        return Candidate(t, ctx.codec.event_digest("added", ev.external_id, t), ev)

    def accept(self, ctx, c):
        wanted = ctx.state.filters
        return not wanted or any(c.event.permissions.get(v) for v in wanted)

    def render(self, ctx, chosen):
        return [_contact_item(ctx, c) for c, _ in chosen]


class ContactChanged(Trigger):
    operation = "OnContactChanged"

    def filters(self, params):
        value = params.get("fields")
        return {"fields": value.strip()} if isinstance(value, str) and value.strip() else {}

    def uses_store(self, filters):
        return "fields" in filters

    def resolve(self, ctx, filters):
        if "fields" not in filters:
            return ()
        names = contact_actions.parse_names(filters["fields"], "fields", what="contact fields",
                                            max_items=MAX_WATCHED_FIELDS)

        def attempt():
            known = contact_actions.contact_fields(ctx.deps.platform)
            return [resolve_field(known, n).name for n in names]

        return tuple(sorted(set(contact_actions.with_fresh_list(ctx.deps.platform, attempt, (CODE_UNKNOWN,)))))

    def candidate(self, ctx, ev: ContactEvent):
        t = epoch_ms(ev.last_changed)
        if t is None:
            return None
        return Candidate(t, ctx.codec.event_digest("changed", ev.external_id, t), ev)

    def fingerprint(self, ctx, ev):
        return ";".join(ctx.codec.value_hash(ev.properties.get(name)) for name in ctx.state.filters)

    def decide(self, ctx, candidates, batch):
        if not ctx.state.filters:
            return super().decide(ctx, candidates, batch)
        return _decide_with_store(self, ctx, candidates, batch, self._changed)

    def _changed(self, ctx, c: Candidate, before: object, now: str) -> Any:
        if before is UNKNOWN or before is None:  # not in the baseline: created (or first seen) after the start
            return list(ctx.state.filters)
        if before == now:
            return None
        old = str(before).split(";")
        new = now.split(";")
        changed = [n for n, a, b in zip(ctx.state.filters, old, new, strict=False) if a != b]
        return changed or list(ctx.state.filters)

    def render(self, ctx, chosen):
        out = []
        for c, changed in chosen:
            item = _contact_item(ctx, c)
            if changed is not None:
                item["changedFields"] = changed
            out.append(item)
        return out


class ContactUnsubscribed(Trigger):
    operation = "OnContactUnsubscribed"
    accepts_since = False  # only the current state is known: there is no earlier state to compare with

    def filters(self, params):
        value = params.get("permissions")
        return {"permissions": value.strip()} if isinstance(value, str) and value.strip() else {}

    resolve = ContactAdded.resolve

    def uses_store(self, filters):
        return True

    def candidate(self, ctx, ev: ContactEvent):
        t = epoch_ms(ev.last_changed)
        if t is None:
            return None
        return Candidate(t, ctx.codec.event_digest("contact", ev.external_id, t), ev)

    def fingerprint(self, ctx, ev: ContactEvent):
        wanted = set(ctx.state.filters)
        bits = sorted((b for b, on in ev.permissions.items() if on and (not wanted or b in wanted)), key=_bit_order)
        return ",".join(bits)[:480] + ("|off" if ev.subscribed is False else "")

    def decide(self, ctx, candidates, batch):
        return _decide_with_store(self, ctx, candidates, batch, self._transition)

    @staticmethod
    def _transition(ctx, c: Candidate, before: object, now: str) -> Any:
        if before is UNKNOWN or before is None:
            return None
        old_bits, _, old_off = str(before).partition("|")
        new_bits, _, new_off = now.partition("|")
        removed = sorted(set(filter(None, old_bits.split(","))) - set(filter(None, new_bits.split(","))),
                         key=_bit_order)
        opted_out = bool(new_off) and not old_off
        if not removed and not opted_out:
            return None
        return {"removed": removed, "optedOut": opted_out}

    def render(self, ctx, chosen):
        out = []
        for c, change in chosen:
            ev: ContactEvent = c.event
            item: dict[str, Any] = {"eventId": c.digest.hex(), "externalId": ev.external_id}
            if ev.email:
                item["email"] = ev.email
            item["date"] = iso(ev.last_changed)
            item["permissions"] = [{"name": ctx.permission_name(b, ev), "value": b} for b in change["removed"]]
            item["optedOut"] = change["optedOut"]
            out.append(item)
        return out


class ContactBounced(Trigger):
    operation = "OnContactBounced"
    feed = "bounces"

    def filters(self, params):
        value = (params.get("bounceType") or "both").strip().lower()
        if value not in ("hard", "soft", "both"):
            raise invalid("bounceType", "bounceType must be hard, soft or both.", code="INVALID_BOUNCE_TYPE")
        return {} if value == "both" else {"bounceType": value}

    def candidate(self, ctx, ev: BounceEvent):
        t = epoch_ms(ev.date)
        if t is None:
            return None
        return Candidate(t, ctx.codec.event_digest("bounce", ev.contact.external_id, t, ev.kind, ev.mailing_id), ev)

    def accept(self, ctx, c):
        wanted = ctx.state.filters
        return not wanted or c.event.kind in wanted

    def resolve(self, ctx, filters):
        return (filters["bounceType"],) if "bounceType" in filters else ()

    def render(self, ctx, chosen):
        names = mailing_names(ctx, [c.event.mailing_id for c, _ in chosen])
        out = []
        for c, _ in chosen:
            ev: BounceEvent = c.event
            item: dict[str, Any] = {"eventId": c.digest.hex(), "externalId": ev.contact.external_id}
            if ev.contact.email:
                item["email"] = ev.contact.email
            item.update(bounceType=ev.kind, date=iso(ev.date))
            if ev.mailing_id:
                item["mailingId"] = ev.mailing_id
                if names.get(ev.mailing_id):
                    item["mailingName"] = names[ev.mailing_id]
            out.append(item)
        return out


class MailingInteraction(Trigger):
    operation = "OnMailingInteraction"
    feed = "interactions"

    def filters(self, params):
        value = (params.get("interaction") or "both").strip().lower()
        if value not in ("opened", "clicked", "both"):
            raise invalid("interaction", "interaction must be opened, clicked or both.", code="INVALID_INTERACTION")
        out = {} if value == "both" else {"interaction": value}
        mailing = params.get("mailingId")
        if isinstance(mailing, str) and mailing.strip():
            out["mailingId"] = mailing.strip()
        return out

    def resolve(self, ctx, filters):
        return ()

    def kinds(self, filters: dict[str, str]) -> list[str]:
        return [filters["interaction"]] if "interaction" in filters else ["opened", "clicked"]

    def windows(self, ctx):
        filters = ctx.filters
        p = ctx.provider
        return [lambda since, until, *, after, page_size, k=k: p.interaction_feed(
            k, since, until, after=after, page_size=page_size) for k in self.kinds(filters)]

    def feed_names(self, ctx):
        return [f"interactions:{k}" for k in self.kinds(ctx.filters)]

    def candidate(self, ctx, ev: InteractionEvent):
        t = epoch_ms(ev.change_date or ev.date)
        if t is None:
            return None
        return Candidate(t, ctx.codec.event_digest(ev.kind, ev.id), ev,
                         order=int(ev.id) if ev.id.isdigit() and len(ev.id) < 19 else 0)

    def accept(self, ctx, c):
        mailing = ctx.filters.get("mailingId")
        return mailing is None or c.event.mailing_id == mailing

    def render(self, ctx, chosen):
        events: list[InteractionEvent] = [c.event for c, _ in chosen]
        names_later = fanout.submit(mailing_names, ctx, [e.mailing_id for e in events])  # while the lookups run
        emails = ctx.provider.lookup_emails([e.external_id for e in events])
        names = names_later.result()
        out = []
        for c, _ in chosen:
            ev: InteractionEvent = c.event
            item: dict[str, Any] = {"eventId": c.digest.hex(), "interaction": ev.kind, "externalId": ev.external_id}
            if emails.get(ev.external_id):
                item["email"] = emails[ev.external_id]
            if ev.mailing_id:
                item["mailingId"] = ev.mailing_id
                if names.get(ev.mailing_id):
                    item["mailingName"] = names[ev.mailing_id]
            item["date"] = iso(ev.date or ev.change_date)
            out.append(item)
        return out


TRIGGERS: dict[str, Trigger] = {t.operation: t for t in (ContactAdded(), ContactChanged(), ContactUnsubscribed(),
                                                         ContactBounced(), MailingInteraction())}


def _decide_with_store(trigger: Trigger, ctx: Context, candidates: list[Candidate], batch: int,
                       judge: Callable[[Context, Candidate, object, str], Any]) -> tuple[int, list]:
    """Per-contact comparison with the recorded fingerprint; records what this poll consumes."""
    versions = [Version(ctx.codec.contact_hash(c.event.external_id), c.t_ms, trigger.fingerprint(ctx, c.event))
                for c in candidates]
    before = ctx.store.previous(ctx.state.instance, versions)
    chosen: list[tuple[Candidate, Any]] = []
    consumed = len(candidates)
    for n, (c, v, b) in enumerate(zip(candidates, versions, before, strict=True)):
        if len(chosen) == batch:
            consumed = n
            break
        verdict = judge(ctx, c, b, v.fingerprint)
        if verdict is not None:
            chosen.append((c, verdict))
    ctx.store.record(ctx.state.instance, versions[:consumed])
    return consumed, chosen

