"""Mailings: their names for the items of a trigger, and the recent-mailings dropdown."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from service.actions.deps import Platform
from service.actions.triggers.base import Context, iso
from service.providers.base import Mailing

RECENT_MAILINGS_DAYS = 180
MAX_MAILINGS = 500


def recent_mailings(platform: Platform) -> list[Mailing]:
    def load() -> list[Mailing]:
        until = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
        found = platform.provider.list_mailings(until - dt.timedelta(days=RECENT_MAILINGS_DAYS + 1), until)
        epoch = dt.datetime.min.replace(tzinfo=dt.UTC)
        return sorted(found, key=lambda m: m.sent_at or epoch, reverse=True)[:MAX_MAILINGS]

    return platform.cache.get(("mailings",), load)


def list_mailings(platform: Platform) -> dict[str, Any]:
    value = []
    for m in recent_mailings(platform):
        item: dict[str, Any] = {"id": m.id, "name": m.name,
                                "title": f"{m.name} ({m.sent_at.date().isoformat()})" if m.sent_at else m.name}
        if m.sent_at:
            item["sentAt"] = iso(m.sent_at)
        value.append(item)
    return {"value": value}


def mailing_names(ctx: Context, ids: Iterable[str | None]) -> dict[str, str]:
    wanted = {i for i in ids if i}
    if not wanted:
        return {}
    names = {m.id: m.name for m in recent_mailings(ctx.deps.platform)}
    for mid in sorted(wanted - set(names)):
        m = ctx.deps.platform.cache.get(("mailing", mid), lambda mid=mid: ctx.provider.get_mailing(mid))
        if m is not None:
            names[mid] = m.name
    return {i: names[i] for i in wanted if i in names}

