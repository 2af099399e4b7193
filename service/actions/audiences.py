"""Audience actions: list, create, add and remove members. Independent of the platform.

Membership changes take up to :data:`MAX_CONTACTS` contacts, each by email or externalId. Each distinct
contact is resolved once (the provider's bulk lookup ``find_contacts(refs)`` when it has one, else the shared
:func:`~service.actions.resolution.resolve_contact` on a small bounded thread pool); contacts that do not exist
are reported ``not_found`` without failing the call, and an e-mail address that several contacts share is
reported ``ambiguous`` with its candidates (masked e-mail, externalId) and left out. Chunking to the platform's limit is the provider's job.
The answer has one result per input entry, in input order; an entry that repeats an earlier contact (same
reference, or another reference to the same contact) is marked ``duplicate`` and counted once.
"""

from __future__ import annotations

import contextlib
import re
import unicodedata
from typing import Any, Iterator

from service.actions import fanout
from service.actions.deps import Platform
from service.actions.contacts import with_fresh_list
from service.actions.idempotency import ActionResult, JobContext
from service.actions.problems import ActionError, invalid
from service.actions.resolution import contact_ref, parse_identifier, resolve_contact
from service.providers.base import Audience, Contact, ContactRef, Provider
from service.providers.errors import AmbiguousContact, Forbidden, NotSupported

MAX_CONTACTS = 10_000
#: parallel look-ups when the provider has no bulk lookup (bounded: the platform's rate limit is shared)
LOOKUP_THREADS = 8
MAX_ID_LENGTH = 100
#: contacts looked up per step of a long list (progress is reported between steps)
LOOKUP_STEP = 500

_NOT_IN_PRODUCT = {
    "spotler": ("Audiences are part of Spotler Mail+ Automation and Spotler Mail+ eCommerce; this Spotler account's "
                "product (for example Mail+ Professional) does not include them. Ask Spotler to upgrade the "
                "account, or use tags or contact fields to build the segment instead."),
}


@contextlib.contextmanager
def audience_tier(platform: Platform) -> Iterator[None]:
    """The platform refuses audiences for this account's product tier -> 403 that says which products allow them."""
    try:
        yield
    except Forbidden as exc:
        name = platform.provider.name
        detail = _NOT_IN_PRODUCT.get(name) or (f"The {name} account may not use audiences: {exc.message}")
        raise ActionError(403, "AUDIENCES_NOT_IN_PRODUCT", detail, upstreamErrorType=exc.error_type) from exc


def _info(a: Audience) -> dict:
    out = {"id": a.id, "name": a.name}
    if a.description:
        out["description"] = a.description
    return out


def audiences(platform: Platform) -> list[Audience]:
    with audience_tier(platform):
        return platform.cache.get(("audiences",), platform.provider.list_audiences)


def list_audiences(platform: Platform) -> dict:
    return {"value": [_info(a) for a in audiences(platform)]}


def check_audience(platform: Platform, audience_id: str) -> None:
    """404 before any contact is looked up when the audience does not exist (list refreshed once first).
    Nothing is checked when the platform cannot list audiences."""
    def attempt() -> None:
        if not any(a.id == audience_id for a in audiences(platform)):
            raise ActionError(404, "AUDIENCE_NOT_FOUND",
                              f"There is no audience '{audience_id}' on {platform.provider.display_name}. Choose one from the "
                              "list or create it first (Create an audience).")
    try:
        with_fresh_list(platform, attempt, ("AUDIENCE_NOT_FOUND",))
    except NotSupported:
        return


# -- create -----------------------------------------------------------------------------------------------

def audience_id_from_name(name: str) -> str:
    """``"Spring Sale 2025!"`` -> ``"spring-sale-2025"`` (ASCII letters, digits, dashes)."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    return re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")[:MAX_ID_LENGTH].strip("-")


def create_audience(platform: Platform, body: dict, job: JobContext) -> ActionResult:
    name = body.get("name")
    if not isinstance(name, str) or not name.strip():
        raise invalid("name", "Give the audience's name.", code="NAME_REQUIRED")
    name = name.strip()
    given_id = body.get("id")
    if given_id is not None and not isinstance(given_id, str):
        raise invalid("id", "'id' must be text.")
    audience_id = (given_id or "").strip() or audience_id_from_name(name)
    if not audience_id:
        raise invalid("id", f"An id cannot be made from the name '{name[:60]}'; give an id (letters and digits).",
                      code="ID_REQUIRED")
    audience_id = parse_identifier(audience_id, "id", max_length=MAX_ID_LENGTH)
    description = body.get("description")
    description = description.strip() or None if isinstance(description, str) else None
    with audience_tier(platform):
        audience = platform.provider.create_audience(audience_id, name, description)
    platform.cache.clear()  # the dropdown and the existence check must see it at once
    job.add_upstream_ids("audienceIds", [audience.id])
    return ActionResult(body={"jobId": job.job_id, "resultCode": "OK",
                              "message": f"The audience '{audience.name}' exists (id '{audience.id}').",
                              "audience": _info(audience)},
                        upstream_ids={"audienceIds": [audience.id]}, message="Audience created.")


# -- members ----------------------------------------------------------------------------------------------

class _Entry:
    __slots__ = ("index", "given", "ref")

    def __init__(self, index: int, given: dict, ref: ContactRef) -> None:
        self.index = index
        self.given = given
        self.ref = ref


def parse_members(body: dict) -> list[_Entry]:
    contacts = body.get("contacts")
    single = body.get("contact")
    if contacts is None and single is None:
        raise invalid("contacts", "Give the contacts (each with an email or externalId) in 'contacts', or one "
                      "contact in 'contact'.", code="CONTACTS_REQUIRED")
    if contacts is not None and not isinstance(contacts, list):
        raise invalid("contacts", "'contacts' must be an array of {email or externalId}.", code="CONTACTS_REQUIRED")
    contacts = contacts or []
    total = len(contacts) + (1 if single is not None else 0)
    if total > MAX_CONTACTS:
        raise invalid("contacts", f"At most {MAX_CONTACTS:,} contacts per call; this call has {total:,}. Split the "
                      "list into several calls.", code="TOO_MANY_CONTACTS", count=total, limit=MAX_CONTACTS)
    entries: list[_Entry] = []
    problems: list[dict] = []
    items = [(i, c, f"contacts[{i}]") for i, c in enumerate(contacts)]
    if single is not None:
        items.append((-1, single, "contact"))
    for index, given, field in items:
        try:
            entries.append(_Entry(index, given, contact_ref(given, field=field)))
        except ActionError as exc:
            problems.append({"field": exc.problem.ext.get("field") or field, "detail": exc.problem.detail})
    if problems:
        listed = "; ".join(f"{p['field']}: {p['detail']}" for p in problems[:5])
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        raise invalid(problems[0]["field"], f"{len(problems)} contact(s) in the input are not valid - {listed}{more}",
                      code="INVALID_CONTACTS", invalid=problems[:100])
    if not entries:
        raise invalid("contacts", "Give at least one contact.", code="CONTACTS_REQUIRED")
    return entries


#: what the lookup of one member gives: the contact, None (not found), or the ambiguity to report for that entry
Found = Contact | AmbiguousContact | None


def _lookup_one(provider: Provider, ref: ContactRef) -> Found:
    try:
        return resolve_contact(provider, ref)[0]
    except AmbiguousContact as exc:
        return exc
    except ActionError as exc:
        if exc.problem.status == 404:
            return None
        raise


def resolve_many(provider: Provider, refs: list[ContactRef], job: JobContext | None = None,
                 threads: int = LOOKUP_THREADS) -> list[Found]:
    """The contact (None when unknown, the AmbiguousContact when several share its e-mail) for every ref, in order. Uses the provider's bulk ``find_contacts`` when it has one.
    Long lists are looked up in steps of :data:`LOOKUP_STEP`, reporting progress to ``job``."""
    out: list[Found] = []
    for start in range(0, len(refs), LOOKUP_STEP):
        out.extend(_resolve_step(provider, refs[start:start + LOOKUP_STEP], threads))
        if job is not None and len(refs) > LOOKUP_STEP:
            job.set_progress(len(out), len(refs))
    return out


def _resolve_step(provider: Provider, refs: list[ContactRef], threads: int) -> list[Found]:
    bulk = getattr(provider, "find_contacts", None)
    if callable(bulk):
        found = list(bulk(refs))
        if len(found) != len(refs):
            raise RuntimeError("find_contacts returned a list of the wrong length")
        return found
    if len(refs) <= 1 or threads <= 1:
        return [_lookup_one(provider, r) for r in refs]
    return fanout.map_bounded(lambda r: _lookup_one(provider, r), refs, threads)


def change_members(platform: Platform, audience_id: str, body: dict, job: JobContext, *, add: bool) -> ActionResult:
    provider = platform.provider
    entries = parse_members(body)
    check_audience(platform, audience_id)

    unique_refs = list(dict.fromkeys(e.ref for e in entries))
    found = dict(zip(unique_refs, resolve_many(provider, unique_refs, job), strict=True))
    contacts: dict[str, Contact] = {}
    for c in found.values():
        if isinstance(c, Contact):
            contacts.setdefault(c.external_id, c)
    outcome: dict[str, str] = {}
    if contacts:
        call = provider.add_to_audience if add else provider.remove_from_audience
        with audience_tier(platform):
            outcome = {r.external_id: r.result for r in call(audience_id, list(contacts.values()))}

    done, same = ("added", "already_member") if add else ("removed", "not_member")
    counts = {done: 0, same: 0, "not_found": 0, "ambiguous": 0, "duplicates": 0}
    seen: set[Any] = set()
    results = []
    for e in entries:
        contact = found[e.ref]
        ambiguity = contact if isinstance(contact, AmbiguousContact) else None
        contact = contact if isinstance(contact, Contact) else None
        key = contact.external_id if contact is not None else e.ref
        result = "ambiguous" if ambiguity else (
            outcome.get(contact.external_id, "not_found") if contact is not None else "not_found")
        item: dict[str, Any] = {"index": e.index, "result": result}
        if ambiguity is not None:
            item["candidates"] = ambiguity.details["candidates"]
        for wire in ("email", "externalId"):
            if e.given.get(wire) not in (None, ""):
                item[wire] = str(e.given[wire]).strip()
        if contact is not None and "externalId" not in item:
            item["externalId"] = contact.external_id
        if key in seen:
            item["duplicate"] = True
            counts["duplicates"] += 1
        else:
            seen.add(key)
            counts[result if result in counts else same] += 1
        results.append(item)

    missing, ambiguous = counts["not_found"], counts["ambiguous"]
    unique = len(entries) - counts["duplicates"]
    left_out = missing + ambiguous
    code = "OK" if left_out == 0 else ("NONE_FOUND" if left_out == unique else "PARTIAL")
    label_done = "added" if add else "removed"
    label_same = ("already a member", "already members") if add else ("not a member", "not members")
    message = (f"{counts[done]} {label_done}, {counts[same]} {label_same[counts[same] != 1]}, {missing} not found"
               + (f", {ambiguous} ambiguous (an e-mail address several contacts share: give the externalId)"
                  if ambiguous else "")
               + (f", {counts['duplicates']} duplicate {'entry' if counts['duplicates'] == 1 else 'entries'}"
                  if counts["duplicates"] else "") + ".")
    out: dict[str, Any] = {"jobId": job.job_id, "resultCode": code, "message": message, "total": len(entries),
                           "notFound": missing, "duplicates": counts["duplicates"], "results": results}
    if ambiguous:
        out["ambiguous"] = ambiguous
    if add:
        out.update(added=counts["added"], alreadyMember=counts["already_member"])
    else:
        out.update(removed=counts["removed"], notMember=counts["not_member"])
    return ActionResult(body=out, result_code=code, message=message)


def add_to_audience(platform: Platform, audience_id: str, body: dict, job: JobContext) -> ActionResult:
    return change_members(platform, audience_id, body, job, add=True)


def remove_from_audience(platform: Platform, audience_id: str, body: dict, job: JobContext) -> ActionResult:
    return change_members(platform, audience_id, body, job, add=False)
