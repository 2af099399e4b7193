"""The relay's background thread: one per process, started after the gunicorn fork (on first use).

Every ``poll_seconds`` - at once when this process stored an event (:meth:`RelayWorker.wake`) - it claims due
deliveries up to its free slots and sends them on a small thread pool, and runs the upstream syncs that are
due (changes, retries after a platform error, the daily reconcile). Once a minute: orphaned and deleted
subscriptions past their retention are removed, finished events past theirs are purged, and upstream webhooks
whose last reconcile is older than the interval are made due. Any process of any instance may do any of it:
the claims and leases in the database keep two from doing the same thing at once.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from service.actions.webhooks import delivery, subscriptions, upstream
from service.actions.webhooks.deps import RelayDeps

log = logging.getLogger(__name__)

MAINTENANCE_SECONDS = 60.0
SYNCS_PER_TICK = 4


class RelayWorker:
    def __init__(self, deps: RelayDeps) -> None:
        self.deps = deps
        self._slots = max(1, deps.settings.delivery_threads)
        self._pool = ThreadPoolExecutor(max_workers=self._slots + SYNCS_PER_TICK, thread_name_prefix="webhook")
        self._lock = threading.Lock()
        self._busy = 0
        self._syncing: set[str] = set()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._next_maintenance = 0.0

    def start(self) -> RelayWorker:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._stop.clear()
                self._thread = threading.Thread(target=self._loop, name="webhook-relay", daemon=True)
                self._thread.start()
        return self

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            wait = self.deps.settings.poll_seconds
            try:
                self.tick()
                soonest = delivery.seconds_to_next(self.deps)
                with self._lock:
                    full = self._busy >= self._slots
                if soonest is not None and not full:  # (when full, a finished delivery wakes the loop)
                    wait = min(wait, max(0.02, soonest))
            except Exception:  # noqa: BLE001 - the database away for a moment: try again next tick
                log.exception("webhook relay: a tick failed")
            self._wake.wait(wait)

    def tick(self) -> None:
        """One round: deliveries, syncs, and (once a minute) maintenance."""
        with self._lock:
            free = self._slots - self._busy
        for c in delivery.claim(self.deps, free):
            with self._lock:
                self._busy += 1
            self._pool.submit(self._deliver, c)
        for up_id in upstream.claim_due(self.deps, SYNCS_PER_TICK):
            with self._lock:
                if up_id in self._syncing:
                    continue
                self._syncing.add(up_id)
            self._pool.submit(self._sync, up_id)
        if time.monotonic() >= self._next_maintenance:
            self._next_maintenance = time.monotonic() + MAINTENANCE_SECONDS
            self.maintenance()

    def maintenance(self) -> None:
        now = self.deps.now()
        removed = subscriptions.purge_ended(self.deps, now)
        purged = delivery.purge_events(self.deps)
        due = upstream.mark_reconcile_due(self.deps)
        if removed or purged or due:
            log.info("webhook relay maintenance", extra={"subscriptionsRemoved": removed, "eventsPurged": purged,
                                                         "reconcilesDue": due})

    def _deliver(self, c: delivery.Claim) -> None:
        try:
            delivery.deliver(self.deps, c)
        except Exception:  # noqa: BLE001 - the claim expires and another attempt follows
            log.exception("webhook delivery %s failed unexpectedly", c.id)
        finally:
            with self._lock:
                self._busy -= 1
            self._wake.set()

    def _sync(self, up_id: str) -> None:
        try:
            upstream.sync(self.deps, up_id)
        except Exception:  # noqa: BLE001 - logged and rescheduled by the sync itself
            pass
        finally:
            with self._lock:
                self._syncing.discard(up_id)
