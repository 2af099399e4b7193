"""Keys and seals (service.actions.sealing): new seals under HKDF keys, seals written before still readable,
the stored hashes' keys unchanged."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from service.actions.sealing import Keyring, Sealer

SECRET = b"ledger-hash-key-for-tests"


def test_an_answer_sealed_before_the_hkdf_keys_still_opens_and_new_seals_use_them():
    legacy = hmac.new(SECRET, b"marketing-actions/ledger/response", hashlib.sha256).digest()  # the v1 key
    nonce, aad = os.urandom(12), b"job_01ABC"
    v1 = "v1." + base64.urlsafe_b64encode(nonce + AESGCM(legacy).encrypt(nonce, b'{"status":200}', aad)).decode()
    sealer = Sealer(Keyring(SECRET), "ledger/response")
    assert sealer.open(v1, aad) == {"status": 200}
    v2 = sealer.seal({"status": 200}, aad)
    assert v2.startswith("v2.") and sealer.open(v2, aad) == {"status": 200}
    with pytest.raises(InvalidTag):  # not under the old key
        AESGCM(legacy).decrypt(base64.urlsafe_b64decode(v2[3:])[:12], base64.urlsafe_b64decode(v2[3:])[12:], aad)
    with pytest.raises(ValueError):
        sealer.open(v2, b"job_other")  # bound to its job
    with pytest.raises(ValueError):
        Sealer(Keyring(b"another secret"), "ledger/response").open(v2, aad)


def test_the_keys_of_stored_hashes_are_the_ones_they_were_made_with():
    keys = Keyring(SECRET)
    for purpose in ("ledger/email-hash", "triggers/event", "triggers/contact", "triggers/binding"):
        label = b"marketing-actions/" + purpose.encode()
        assert keys.identifier_key(purpose) == hmac.new(SECRET, label, hashlib.sha256).digest()
    assert keys.subkey("ledger/response") != keys.identifier_key("ledger/response")
