"""The state of a polling trigger: what the ``Location`` URL carries between two polls.

The state is opaque to the caller and signed with the server secret (``TRIGGER_STATE_SECRET``, through
itsdangerous: HMAC-SHA256, URL-safe, zlib-compressed when that is shorter). It holds only timestamps, counters,
random ids and keyed hashes, never personal data: the URL ends up in Power Automate's run history.

Fields (short names keep the URL short):

* ``k`` the trigger operation, ``b`` the *binding*: a hash of the operation, the filter inputs and the caller.
  A state minted for another trigger, other filters or another connection is *foreign*.
* ``c`` the cursor (epoch ms, in the platform's clock: the latest event time consumed, or the start),
  ``o`` the origin (when the trigger started; epoch ms, our clock).
* ``s`` the *seen set*: for each event consumed with a time at or after ``c - overlap``, a 6-byte keyed hash of
  its identity and its time (epoch seconds), packed and base64url-encoded. Events older than that window are
  no longer fetched, so they need no entry. When the set would make the URL too long it is stored in the
  database instead (``r``: the id of that row, a hash of its content).
* ``t`` hosted mode: the tenant (the keyed hash of the platform account, also inside the binding's caller).
* ``f`` resolved filter values (permission values, internal field names), ``i`` the trigger instance id (for
  triggers that keep per-contact data in the database), ``a`` the paging offset of a running baseline.

Errors are 400 problems that tell the flow maker what to do: ``TRIGGER_STATE_INVALID`` (tampered, truncated,
signed with another secret), ``TRIGGER_STATE_FOREIGN`` (made for another trigger, other filters or another
connection), ``TRIGGER_STATE_EXPIRED`` (its server-side part was purged).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from itsdangerous import BadData, URLSafeSerializer

from service.actions.problems import ActionError
from service.actions.sealing import Keyring

VERSION = 1
SALT = "marketing-actions/trigger-state"
KEY_BYTES = 6
#: most seen-set entries kept in the URL (10 bytes each; 64 keep the Location well under 2 KB)
INLINE_SEEN_MAX = 64
_ENTRY = struct.Struct(">6sI")  # key hash, event time in epoch seconds

RESTART_HINT = ("Save the flow again after changing the trigger, or remove the trigger and add it again, to start "
                "a new state from now.")


def state_error(code: str, detail: str) -> ActionError:
    return ActionError(400, code, f"{detail} {RESTART_HINT}", field="state")


@dataclass
class TriggerState:
    kind: str
    binding: str
    cursor_ms: int
    origin_ms: int
    #: key hash (6 bytes) -> event time (epoch seconds)
    seen: dict[bytes, int] = field(default_factory=dict)
    spill: str | None = None
    filters: tuple[str, ...] = ()
    instance: str | None = None
    baseline_after: int | None = None
    #: hosted mode: the tenant the state belongs to (a keyed hash; a poll without the connection's headers is
    #: that tenant's, with its stored credentials); None in single mode
    tenant: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"v": VERSION, "k": self.kind, "b": self.binding, "c": self.cursor_ms,
                               "o": self.origin_ms}
        if self.spill:
            out["r"] = self.spill
        elif self.seen:
            out["s"] = pack_seen(self.seen)
        if self.filters:
            out["f"] = list(self.filters)
        if self.instance:
            out["i"] = self.instance
        if self.baseline_after is not None:
            out["a"] = self.baseline_after
        if self.tenant:
            out["t"] = self.tenant
        return out

    @classmethod
    def from_json(cls, data: Any) -> TriggerState:
        try:
            if not isinstance(data, dict) or data.get("v") != VERSION:
                raise ValueError("version")
            filters = data.get("f", [])
            if not isinstance(filters, list) or not all(isinstance(x, str) for x in filters):
                raise ValueError("filters")
            state = cls(kind=_str(data["k"]), binding=_str(data["b"]), cursor_ms=_int(data["c"]),
                        origin_ms=_int(data["o"]), seen=unpack_seen(data["s"]) if "s" in data else {},
                        spill=_str(data["r"]) if "r" in data else None, filters=tuple(filters),
                        instance=_str(data["i"]) if "i" in data else None,
                        baseline_after=_int(data["a"]) if "a" in data else None,
                        tenant=_str(data["t"]) if "t" in data else None)
        except (KeyError, TypeError, ValueError, binascii.Error, struct.error) as exc:
            raise state_error("TRIGGER_STATE_INVALID",
                              "The trigger state in this URL cannot be read (it was changed or cut short).") from exc
        return state


def _str(v: Any) -> str:
    if not isinstance(v, str) or not v or len(v) > 200:
        raise ValueError("string")
    return v


def _int(v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        raise ValueError("int")
    return v


def pack_seen(seen: Mapping[bytes, int]) -> str:
    raw = b"".join(_ENTRY.pack(k, max(0, min(t, 0xFFFFFFFF))) for k, t in sorted(seen.items(), key=lambda x: x[1]))
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def unpack_seen(text: Any) -> dict[bytes, int]:
    if not isinstance(text, str):
        raise ValueError("seen")
    raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if len(raw) % _ENTRY.size:
        raise ValueError("seen length")
    return {k: t for k, t in _ENTRY.iter_unpack(raw)}


class StateCodec:
    """Signs and reads trigger states. ``secrets``: oldest first; the last one signs, every one verifies (so a
    secret can be rotated without breaking running flows: add the new one at the end, drop the old one later).
    ``hash_key`` keys the event and contact hashes (the ledger's key: it does not rotate with the state secret)."""

    def __init__(self, secrets: Sequence[str], hash_key: bytes) -> None:
        if not secrets or not all(secrets):
            raise ValueError("StateCodec needs at least one non-empty secret (TRIGGER_STATE_SECRET)")
        self._serializer = URLSafeSerializer(list(secrets), salt=SALT,
                                             signer_kwargs={"digest_method": hashlib.sha256},
                                             serializer_kwargs={"separators": (",", ":"), "sort_keys": True})
        keys = Keyring(hash_key)  # stored and compared hashes: the frozen derivation (service.actions.sealing)
        self._event_key = keys.identifier_key("triggers/event")
        self._contact_key = keys.identifier_key("triggers/contact")
        self._binding_key = keys.identifier_key("triggers/binding")

    def dumps(self, state: TriggerState) -> str:
        return self._serializer.dumps(state.to_json())

    def loads(self, token: str | None) -> TriggerState:
        if not token or len(token) > 8000:
            raise state_error("TRIGGER_STATE_INVALID", "The trigger state in this URL is missing or too long.")
        try:
            data = self._serializer.loads(token)
        except BadData as exc:
            raise state_error("TRIGGER_STATE_INVALID",
                              "The trigger state in this URL was not issued by this service, was changed, or was "
                              "signed with a secret the service no longer has.") from exc
        return TriggerState.from_json(data)

    # -- keyed hashes ---------------------------------------------------------------------------------------
    def binding(self, operation: str, filters: Mapping[str, Any], caller: str | None) -> str:
        text = json.dumps([operation, sorted(filters.items()), caller or ""], separators=(",", ":"), default=str)
        digest = hmac.new(self._binding_key, text.encode(), hashlib.sha256).digest()[:12]
        return base64.urlsafe_b64encode(digest).decode()

    def event_digest(self, *parts: Any) -> bytes:
        """16 bytes identifying an event (its first :data:`KEY_BYTES` go into the seen set)."""
        text = "\x1f".join("" if p is None else str(p) for p in parts)
        return hmac.new(self._event_key, text.encode(), hashlib.sha256).digest()[:16]

    def contact_hash(self, external_id: str) -> str:
        return hmac.new(self._contact_key, external_id.encode(), hashlib.sha256).hexdigest()[:32]

    def value_hash(self, value: Any) -> str:
        """A short keyed hash of a field value (fingerprints of watched fields; not reversible)."""
        text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
        return hmac.new(self._contact_key, text.encode(), hashlib.sha256).hexdigest()[:10]

    @staticmethod
    def seen_id(binding: str, packed: str) -> str:
        return hashlib.sha256(f"{binding}|{packed}".encode()).hexdigest()[:40]


# -- the seen set: in the state, or in the database when it is large ---------------------------------------

def load_seen(store, st: TriggerState) -> dict[bytes, int]:
    if not st.spill:
        return dict(st.seen)
    packed = store.load_seen(st.spill)
    if packed is None:
        raise state_error("TRIGGER_STATE_EXPIRED", "The list of events this trigger already delivered was removed "
                                                   "after a long pause.")
    try:
        return unpack_seen(packed)
    except ValueError as exc:  # pragma: no cover - the service wrote it
        raise ActionError(500, "TRIGGER_STATE_CORRUPT", "A stored trigger state cannot be read.") from exc


def store_seen(store, st: TriggerState, seen: dict[bytes, int]) -> None:
    if len(seen) <= INLINE_SEEN_MAX:
        st.seen, st.spill = seen, None
        return
    packed = pack_seen(seen)
    set_id = StateCodec.seen_id(st.binding, packed)
    store.save_seen(set_id, packed)
    st.seen, st.spill = {}, set_id

