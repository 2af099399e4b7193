"""What the relay keeps secret, and how: sealed values (AES-GCM, the row id as associated data) and derived tokens.

:class:`SecretBox` is the one interface the relay uses. :class:`KeyBox` backs it with the keys of
``LEDGER_HASH_KEY`` (``service.actions.sealing``: a Sealer for the seals, the frozen identifier derivation for
the tokens, which flows' Locations and the platforms' webhooks hold); hosted mode can back it with several keys
(the first seals, all open) without changing the relay.

Derived tokens (never stored; only their sha256 is, where a lookup needs it):

* ``route`` - the path token of an upstream webhook's inbound URL (``/hooks/inbound/<token>``);
* ``delete`` - the ``t`` of a subscription's ``Location`` (Power Automate's DELETE may come without the
  connection's API key, so the Location carries its own secret).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any, Protocol

from service.actions.sealing import Keyring, Sealer


class SecretBox(Protocol):
    def seal(self, row_id: str, purpose: str, value: Any) -> str: ...

    def open(self, row_id: str, purpose: str, token: str) -> Any:
        """The sealed value; ValueError when it cannot be opened (another key, another row)."""

    def token(self, purpose: str, row_id: str) -> str:
        """A URL-safe secret derived for the row (stable while the key is)."""

    def digest(self, purpose: str, value: str) -> str:
        """A keyed hash (hex), for looking up a secret value without storing it."""


class KeyBox:
    def __init__(self, secret: bytes) -> None:
        if not secret:
            raise ValueError("KeyBox needs a non-empty secret (settings: LEDGER_HASH_KEY)")
        keys = Keyring(secret)
        self._sealer = Sealer(keys, "webhooks/seal")
        # tokens are held outside (Locations, the platforms' webhooks): the frozen derivation of stored identifiers
        self._tokens = keys.identifier_key("webhooks/tokens")

    def seal(self, row_id: str, purpose: str, value: Any) -> str:
        return self._sealer.seal(value, f"{purpose}:{row_id}".encode())

    def open(self, row_id: str, purpose: str, token: str) -> Any:
        return self._sealer.open(token, f"{purpose}:{row_id}".encode())

    def token(self, purpose: str, row_id: str) -> str:
        mac = hmac.new(self._tokens, f"{purpose}:{row_id}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).decode("ascii").rstrip("=")

    def digest(self, purpose: str, value: str) -> str:
        return hmac.new(self._tokens, f"{purpose}:".encode() + value.encode("utf-8", "surrogatepass"),
                        hashlib.sha256).hexdigest()


def lookup_hash(token: str) -> str:
    """sha256 hex of a token presented to us (the stored form of a route token)."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()
