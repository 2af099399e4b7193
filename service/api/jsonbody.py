"""One JSON style for every answer: compact, UTF-8 (no ``\\u`` escapes), ending with a newline.

Handler answers (through Connexion's jsonifier), problem documents (error handlers, the request middleware)
and the ledger's replayed answers all use :func:`dumps`, so a client (or ``curl``) sees the same bytes
whatever produced them.
"""

from __future__ import annotations

import json
from typing import Any

from connexion.jsonifier import JSONEncoder, Jsonifier


def dumps(data: Any) -> str:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False, cls=JSONEncoder) + "\n"


class ServiceJsonifier(Jsonifier):
    """Connexion's jsonifier with :func:`dumps` as its serialiser (parsing is Connexion's)."""

    def __init__(self) -> None:
        super().__init__(json)

    def dumps(self, data: Any, **kwargs: Any) -> str:
        return dumps(data)
