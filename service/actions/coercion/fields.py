"""Which contact field a maker means: internal name (exact, then case-insensitive), then display name."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from service.actions.coercion.common import CODE_AMBIGUOUS, CODE_UNKNOWN
from service.actions.problems import invalid
from service.providers.base import ContactField


def _norm_label(text: str) -> str:
    return " ".join(text.strip().lower().split())


def resolve_field(fields: Iterable[ContactField], name: str) -> ContactField:
    """The field ``name`` refers to: internal name (exact, then case-insensitive), then display name.

    Several display-name (or case-insensitive internal-name) matches -> 400 AMBIGUOUS_FIELD with ext
    ``candidates`` [{name, displayName}]; no match -> 400 UNKNOWN_FIELD with ext ``suggestions`` (close names).
    The ``field`` member of the problem is the name as given.
    """
    fields = list(fields)
    given = name.strip() if isinstance(name, str) else ""
    if not given:
        raise invalid("field", "Give the contact field's internal name or display name.", code=CODE_UNKNOWN)
    for f in fields:
        if f.name == given:
            return f
    key = _norm_label(given)
    for attr in ("name", "display_name"):
        matches = [f for f in fields if _norm_label(getattr(f, attr) or "") == key]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            candidates = [{"name": f.name, "displayName": f.display_name} for f in matches]
            listed = ", ".join(f"{c['name']} ({c['displayName']})" for c in candidates)
            raise invalid(
                given,
                f"Field '{given}' matches several contact fields: {listed}. Use the exact internal name.",
                code=CODE_AMBIGUOUS,
                candidates=candidates,
            )
    labels: dict[str, str] = {}
    for f in fields:
        labels.setdefault(f.name.lower(), f.name)
        if f.display_name:
            labels.setdefault(_norm_label(f.display_name), f.name)
    close = difflib.get_close_matches(key, list(labels), n=5, cutoff=0.6)
    suggestions = list(dict.fromkeys(labels[c] for c in close))
    hint = f" Did you mean: {', '.join(suggestions)}?" if suggestions else ""
    raise invalid(
        given,
        f"Contact field '{given[:80]}' does not exist.{hint} ListContactFields shows every field.",
        code=CODE_UNKNOWN,
        suggestions=suggestions,
    )
