"""Reading the feeds of a trigger: every page of a window, a window halved when it holds more than the page
budget, several feeds in parallel, and the shared feed cache (a quiet poll makes no upstream call)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from service.actions import fanout
from service.actions.deps import TriggerDeps
from service.actions.triggers.base import Context, Trigger, from_ms
from service.cache import MISSING
from service.providers.base import FeedPage

#: a window is halved at most this often when it holds more than the page budget
MAX_SPLITS = 8


def read_window(deps: TriggerDeps, trigger: Trigger, ctx: Context, lo: int, hi: int,
                 share: bool = True) -> tuple[list[Any], int, bool]:
    """Every event of every feed of the trigger in ``[lo, hi]`` (several feeds are read in parallel). When a
    feed holds more than the page budget, its window is halved (at most MAX_SPLITS times) so that no event below
    the new end is missed; the window of the poll then ends there for every feed. ``complete`` is False when
    the window was cut (more is waiting) or could not be read whole."""
    settings = deps.settings

    def read(feed: Callable[..., FeedPage]) -> tuple[list[Any], int, bool, int]:
        end, calls = hi, 0
        for split in range(MAX_SPLITS + 1):
            got, whole, n = _read_pages(feed, lo, end, settings.page_size, settings.max_pages)
            calls += n
            if whole or end - lo <= 2000 or split == MAX_SPLITS:
                return got, end, whole, calls
            end = lo + (end - lo) // 2
        raise AssertionError("unreachable")  # pragma: no cover

    def shared(name: str, feed: Callable[..., FeedPage]) -> tuple[list[Any], int, bool, int]:
        """A whole read of this feed from ``lo`` made by a poll of the last TRIGGER_FEED_CACHE_SECONDS serves
        this poll too (no upstream call). Exactly-once is untouched: the seen set still filters what was
        delivered, and the cursor only moves to events handed over, so an event that arrived after that read
        is found by the next poll whose read is fresh (a delay of at most the cache time)."""
        if not share:
            return read(feed)
        fresh: list = []

        def load():
            fresh.append(read(feed))
            got, end, whole, _calls = fresh[0]
            if not (whole and end == hi):  # only a whole, uncut read is shared
                raise _NotShared
            return got

        try:
            got = deps.feeds.get(_feed_key(deps, ctx, name, lo), load)
        except _NotShared:
            return fresh[0]
        return (got, hi, True, fresh[0][3]) if fresh else (got, hi, True, 0)

    feeds = list(zip(trigger.feed_names(ctx), trigger.windows(ctx), strict=True))
    cached = [deps.feeds.peek(_feed_key(deps, ctx, name, lo)) for name, _ in feeds] if share else []
    if cached and all(c is not MISSING for c in cached):  # every feed shared: no thread, no upstream call
        results = [(got, hi, True, 0) for got in cached]
    elif len(feeds) == 1:
        results = [shared(*feeds[0])]
    else:
        results = fanout.map_bounded(lambda nf: shared(*nf), feeds, len(feeds))
    end = min(r[1] for r in results)
    ctx.calls += sum(r[3] for r in results)
    complete = end == hi and all(r[2] for r in results)
    events = [e for got, *_ in results for e in got if end == hi or _event_ms(trigger, ctx, e) <= end]
    return events, end, complete


def _feed_key(deps: TriggerDeps, ctx: Context, name: str, lo: int) -> tuple:
    return (deps.settings.provider_name, name, lo, tuple(sorted(ctx.filters.items())))


class _NotShared(Exception):
    """A feed read that was cut (page budget) or not whole: used by its poll only, never shared."""


def _event_ms(trigger: Trigger, ctx: Context, ev: Any) -> int:
    c = trigger.candidate(ctx, ev)
    return c.t_ms if c is not None else -1


def _read_pages(feed: Callable[..., FeedPage], lo: int, hi: int, page_size: int,
                max_pages: int) -> tuple[list[Any], bool, int]:
    """Pages of one feed until its end or the budget: ``(items, read whole, upstream calls)``."""
    out: list[Any] = []
    after = 0
    for n in range(1, max_pages + 1):
        page = feed(from_ms(lo), from_ms(hi), after=after, page_size=page_size)
        out.extend(page.items)
        if page.next_after is None or page.next_after <= after:
            return out, True, n
        after = page.next_after
    return out, False, max_pages

