"""The per-process TTL cache: answers within its time, never past it, and stays bounded whatever the keys."""

from service.cache import MISSING, TTLCache


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_values_live_for_their_time_only():
    clock = Clock()
    cache = TTLCache(10, clock=clock)
    loads = []
    assert cache.get("k", lambda: loads.append(1) or "v1") == "v1"
    clock.now = 9.9
    assert cache.get("k", lambda: loads.append(1) or "v2") == "v1" and cache.peek("k") == "v1"
    clock.now = 10.0
    assert cache.peek("k") is MISSING
    assert cache.get("k", lambda: loads.append(1) or "v3") == "v3" and len(loads) == 2


def test_no_caching_with_ttl_zero():
    cache = TTLCache(0)
    cache.put("k", 1)
    assert cache.peek("k") is MISSING


def test_the_number_of_keys_is_bounded():
    clock = Clock()
    cache = TTLCache(10, clock=clock, max_entries=100)
    for i in range(100):
        cache.put(i, i)
    clock.now = 5
    cache.put("fresh", 1)  # full, nothing expired: the least recently used goes, the new key stays
    assert len(cache._data) == 100 and cache.peek("fresh") == 1 and cache.peek(0) is MISSING
    for i in range(1000):
        cache.put(("more", i), i)
    assert len(cache._data) == 100 and cache.peek(("more", 999)) == 999
    clock.now = 16  # every entry expired: the next puts find room without evicting a live one
    for i in range(50):
        cache.put(("c", i), i)
    cache.put("y", 1)
    assert cache.peek("y") == 1 and cache.peek(("c", 0)) == 0 and len(cache._data) == 51
