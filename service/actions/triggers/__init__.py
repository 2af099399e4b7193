"""Polling triggers: each platform event fires a flow exactly once. Provider-independent.

The protocol (Power Automate / Logic Apps polling triggers, reference power-platform-connector §4.2a): the first
call answers 202 with a state that starts *now* (or at ``since``); each later call brings that state back
(the ``Location`` URL) and answers 200 with the new events, oldest first, at most ``batch`` of them, or 202 when
there is nothing new; both with the next state. The HTTP details live in :mod:`service.api.triggers`.

How every event fires once
--------------------------
A feed answers the events whose time lies in a window; times are in the platform's clock, which may run ahead
of or behind ours. Each poll reads the whole window ``[cursor - overlap, now + overlap]`` (every page) and
compares it with the *seen set* of the state: keyed hashes of the events already consumed whose time is at or
after ``cursor - overlap``. What is not in the set is new. New events are sorted by (time, id); the first
``batch`` deliverable ones are consumed (events a filter rejects are consumed silently), the cursor moves to
the latest consumed time (never beyond an event not yet consumed), the set gains what was consumed and drops
what the next window no longer reaches. So:

* overlapping windows, a clock difference up to the overlap, late events, equal times at a page boundary,
  offset paging with ``after`` and pages read in any order: an event is in the set or it is new;
* a restart, another instance, a retried poll: the state is the URL, the database only holds immutable sets
  and versioned per-contact data, so the same URL gives the same answer;
* an upstream failure raises before anything is decided: the caller gets 503 and the same URL stays valid.

The first call takes a *baseline*: the events already in its window are marked seen (no flood of history).
Triggers that must compare a contact with its earlier state (unsubscribes; changes of chosen fields) keep a
fingerprint per contact in the database (:mod:`.store`) and record every contact's fingerprint first,
a few pages per poll, before they watch for changes.

The modules
-----------
:mod:`.engine` ``poll`` (the first call, a window against the seen set, the baseline, the next state);
:mod:`.kinds` the five triggers (``TRIGGERS``); :mod:`.base` the ``Trigger`` interface, ``Candidate``,
``Context`` and the time helpers; :mod:`.feeds` the window read and the shared feed cache; :mod:`.mailings`
mailing names and the recent-mailings dropdown; :mod:`.state` the signed state and the seen set (inline or
spilled to the store); :mod:`.store` the database part. The HTTP side is :mod:`service.api.triggers`.
"""
