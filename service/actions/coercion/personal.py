"""email, mobNr, postcode and gender: a person's addresses and the gender codes, normalised."""

from __future__ import annotations

import re
from typing import Any

from service.actions.coercion.common import BadValue

_LOCAL_RE = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")


def to_email(value: Any) -> str:
    if not isinstance(value, str):
        raise BadValue("not text")
    text = value.strip()
    if text.lower().startswith("mailto:"):
        text = text[7:].strip()
    if len(text) > 254 or text.count("@") != 1:
        raise BadValue("")
    local, domain = text.split("@")
    if not local or len(local) > 64 or not _LOCAL_RE.fullmatch(local):
        raise BadValue("the part before @ is not valid")
    domain = domain.lower()
    labels = domain.split(".")
    if len(labels) < 2:
        raise BadValue("the domain has no dot")
    for label in labels:
        if not label or len(label) > 63 or label[0] == "-" or label[-1] == "-":
            raise BadValue("the domain is not valid")
        if not all(c.isalnum() or c == "-" for c in label):
            raise BadValue("the domain is not valid")
    tld = labels[-1]
    if len(tld) < 2 or tld.isdigit():
        raise BadValue("the domain is not valid")
    return f"{local}@{domain}"


_PHONE_NOISE = re.compile(r"[\s\-./]|[()]")


def to_mobnr(value: Any) -> str:
    if isinstance(value, bool):
        raise BadValue("not a phone number")
    if isinstance(value, int):
        text = str(value) if 0 <= value < 10**20 else ""
    elif isinstance(value, str):
        text = value.strip()
    else:
        raise BadValue("not a phone number")
    if len(text) > 40:
        raise BadValue("too long for a phone number")
    text = text.replace("(0)", "") if text.startswith("+") else text  # +31 (0)6 ...: the 0 is not dialled
    text = _PHONE_NOISE.sub("", text)
    plus = text.startswith("+")
    digits = text[1:] if plus else text
    if not digits.isascii() or not digits.isdigit():
        raise BadValue("only digits, with an optional leading +")
    if not 6 <= len(digits) <= 15:
        raise BadValue("a phone number has 6 to 15 digits")
    return ("+" if plus else "") + digits


_POSTCODE_RE = re.compile(r"[A-Z0-9](?:[A-Z0-9 -]*[A-Z0-9])?")


def to_postcode(value: Any) -> str:
    if isinstance(value, bool):
        raise BadValue("not a postcode")
    if isinstance(value, int) and value >= 0:
        value = str(value)
    if not isinstance(value, str):
        raise BadValue("not a postcode")
    text = " ".join(value.strip().upper().split())
    if not 2 <= len(text) <= 10 or not text.isascii() or not _POSTCODE_RE.fullmatch(text):
        raise BadValue("")
    return text


_GENDER = {
    "M": ("m", "male", "man", "men", "mr", "mr.", "mister", "heer", "dhr", "dhr.", "de heer", "mannelijk"),
    "F": ("f", "female", "woman", "women", "v", "vrouw", "vrouwelijk", "w", "mrs", "mrs.", "ms", "ms.", "miss",
          "mevrouw", "mevr", "mevr.", "mw", "mw.", "fem", "mevrouw."),
    None: ("u", "unknown", "onbekend", "x", "o", "other", "anders", "none", "n/a", "na", "-", "?", "unspecified",
           "neutral", "neutraal", "divers"),
}
_GENDER_LOOKUP = {word: code for code, words in _GENDER.items() for word in words}


def to_gender(value: Any) -> str | None:
    if not isinstance(value, str):
        raise BadValue("not text")
    key = " ".join(value.strip().lower().split())
    if key not in _GENDER_LOOKUP:
        raise BadValue("")
    return _GENDER_LOOKUP[key]
