"""Keys derived from the server secret, and the AES-GCM seals of what the ledger keeps (stored answers, the
requests of running jobs). One place for every key the ledger and the trigger state use.

* :meth:`Keyring.subkey` - HKDF-SHA256 (``cryptography``; RFC 5869) of the secret, ``info`` naming the purpose:
  the key of every new seal (token version ``v2.``).
* :meth:`Keyring.identifier_key` - the keys of the keyed hashes that are *stored and compared*: the ledger's
  e-mail hashes (search by e-mail), the trigger state's event digests (seen sets inside running flows'
  Locations), contact and value hashes (stored baselines) and bindings. They stay on the derivation they were
  made with, ``HMAC-SHA256(secret, label)``: HMAC is a PRF, so a key from it is as sound as one from HKDF, and a
  new derivation would make every stored hash unfindable (running triggers would fire old events again, jobs
  could no longer be found by e-mail) with nothing to migrate them from (a hash cannot be recomputed without
  its input). Frozen on purpose; do not "fix" it.
* Seals: ``v2.`` tokens are written with the HKDF key; ``v1.`` tokens, written before (key
  ``HMAC-SHA256(secret, label)``), are still opened, so every answer kept before the change replays as before.
  ``v1.`` tokens stop existing by themselves once ``LEDGER_RETENTION_DAYS`` have passed (purged with their
  rows; a running job's request is dropped when it ends); the v1 reader can go after that. During a rolling
  upgrade an instance of the old version cannot open a ``v2.`` token a new one wrote (a replay it serves
  answers 409 ``STORED_ANSWER_UNAVAILABLE``, a job it resumes is not resumable): upgrade all instances together.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

PREFIX = b"marketing-actions/"
V1, V2 = "v1.", "v2."


class Keyring:
    """The keys of one server secret (``LEDGER_HASH_KEY``)."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def subkey(self, purpose: str, length: int = 32) -> bytes:
        """HKDF-SHA256(secret, info = ``marketing-actions/<purpose>``): the standard derivation, for new keys."""
        return HKDF(algorithm=hashes.SHA256(), length=length, salt=None,
                    info=PREFIX + purpose.encode()).derive(self._secret)

    def identifier_key(self, purpose: str) -> bytes:
        """The key of stored keyed hashes (module doc: frozen), ``HMAC-SHA256(secret, marketing-actions/<purpose>)``."""
        return hmac.new(self._secret, PREFIX + purpose.encode(), hashlib.sha256).digest()


class Sealer:
    """AES-GCM seals of JSON documents, bound to ``aad`` (e.g. the job id): written ``v2.``, ``v1.`` still read."""

    def __init__(self, keyring: Keyring, purpose: str) -> None:
        self._current = AESGCM(keyring.subkey(purpose))
        self._legacy = AESGCM(keyring.identifier_key(purpose))  # the v1 key: same derivation as the identifiers

    def seal(self, doc: Any, aad: bytes) -> str:
        nonce = os.urandom(12)
        plain = json.dumps(doc, separators=(",", ":"), ensure_ascii=False, default=str).encode("utf-8",
                                                                                                "surrogatepass")
        return V2 + base64.urlsafe_b64encode(nonce + self._current.encrypt(nonce, plain, aad)).decode("ascii")

    def open(self, token: str, aad: bytes) -> Any:
        """The document; ValueError when the token is not ours, was changed or its key is gone."""
        if token.startswith(V2):
            aead = self._current
        elif token.startswith(V1):
            aead = self._legacy
        else:
            raise ValueError("unknown stored answer format")
        try:
            raw = base64.urlsafe_b64decode(token[3:].encode("ascii"))
            plain = aead.decrypt(raw[:12], raw[12:], aad)
        except (InvalidTag, binascii.Error, ValueError) as exc:
            raise ValueError("stored answer cannot be decrypted") from exc
        return json.loads(plain.decode("utf-8", "surrogatepass"))
